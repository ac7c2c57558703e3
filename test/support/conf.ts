/** A global configuration built in memory, for tests that need only approved CAs and settings. */
import { GlobalConf, type ApprovedCa, type SharedParameters } from '../../src/globalconf/global-conf.ts';

export function confWithCas(cas: { name: string; top: Buffer; intermediates?: Buffer[]; ocsp?: { url: string; cert?: Buffer }[] }[], ocspFreshnessSeconds = 3600): GlobalConf {
  const approvedCas: ApprovedCa[] = cas.map((c) => ({
    name: c.name,
    authenticationOnly: false,
    topCa: { cert: c.top, ocsp: c.ocsp ?? [] },
    intermediateCas: (c.intermediates ?? []).map((cert) => ({ cert, ocsp: [] })),
    certificateProfileInfo: '',
  }));
  const shared: SharedParameters = {
    instanceIdentifier: 'TEST',
    configurationVersion: 3,
    authCertHashAlgorithm: 'sha256',
    approvedCas,
    approvedTsas: [],
    members: [],
    securityServers: [],
    globalGroups: [],
    memberClasses: [],
    ocspFreshnessSeconds,
  };
  return new GlobalConf('TEST', new Map([['TEST', shared]]), undefined);
}
