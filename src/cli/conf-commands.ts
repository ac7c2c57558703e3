/** `xrd conf show|anchor|download`: the global configuration and anchors (no daemon needed). */
import { parseCertificate } from '../certificates/certificate.ts';
import { loadConfigurationAnchor } from '../globalconf/anchor.ts';
import { ConfigurationDownloader } from '../globalconf/download.ts';
import { loadGlobalConf, type CaCertificate, type GlobalConf } from '../globalconf/global-conf.ts';
import { formatClientId } from '../protocol/identifiers.ts';
import { allowedFederations, globalConfDir, type Values } from './options.ts';
import { UsageError } from './usage-error.ts';

export async function confCommand(command: string | undefined, rest: string[], values: Values): Promise<number> {
  const print = (json: unknown, human: string): number => {
    process.stdout.write(values.json ? JSON.stringify(json, null, 2) + '\n' : human + '\n');
    return 0;
  };
  if (command === 'show') {
    const conf = loadGlobalConf(globalConfDir(values, false)!);
    const view = globalConfView(conf);
    const own = view.instances.find((i) => i.instanceIdentifier === conf.instanceIdentifier)!;
    return print(view, [
      `instance ${conf.instanceIdentifier} (configuration version ${own.configurationVersion}${view.expiresAt ? `, expires ${view.expiresAt}` : ''})`,
      ...own.approvedCas.map((ca) => `CA ${ca.name}: ${ca.topCa.subject}; OCSP ${ca.topCa.ocsp.map((o) => o.url).join(', ') || '-'}${ca.authenticationOnly ? ' (authentication only)' : ''}`),
      ...own.approvedTsas.map((t) => `TSA ${t.name}: ${t.url}`),
      ...own.members.map((m) => `member ${m.id} "${m.name}"${m.subsystems.length ? `: ${m.subsystems.join(', ')}` : ''}`),
      ...own.securityServers.map((s) => `server ${s.id} at ${s.address}, ${s.authCertHashes.length} auth cert(s), ${s.clients.length} client(s)${s.maintenanceMode ? `, in maintenance mode${s.maintenanceMode.message ? `: ${s.maintenanceMode.message}` : ''}` : ''}`),
      ...own.globalGroups.map((g) => `group ${g.groupCode}: ${g.members.join(', ')}`),
      `OCSP freshness ${own.ocspFreshnessSeconds} s`,
    ].join('\n'));
  }
  if (command === 'download') {
    const file = rest[0];
    if (!file) throw new UsageError('missing <anchor.xml>');
    const dir = globalConfDir(values, false)!;
    const report = await new ConfigurationDownloader({ allowedFederations: allowedFederations(values) }).download(loadConfigurationAnchor(file), dir);
    const conf = loadGlobalConf(dir);
    const federated = report.federated.map((f) => ({ instance: f.instance, url: f.url, error: f.error && { code: f.error.faultCode, message: f.error.message } }));
    return print(
      { dir, instanceIdentifier: conf.instanceIdentifier, url: report.url, version: report.version, expiresAt: conf.expiresAt?.toISOString(), parts: report.parts, federated },
      [`configuration of ${conf.instanceIdentifier} (version ${report.version ?? '2'}, from ${report.url}) installed in ${dir}, valid until ${conf.expiresAt?.toISOString() ?? '-'}`, ...federated.map((f) => `federated ${f.instance}: ${f.error ? `failed, ${f.error.code}: ${f.error.message}` : `from ${f.url}`}`)].join('\n'),
    );
  }
  if (command === 'anchor') {
    const file = rest[0];
    if (!file) throw new UsageError('missing <anchor.xml>');
    const anchor = loadConfigurationAnchor(file);
    const view = { instanceIdentifier: anchor.instanceIdentifier, generatedAt: anchor.generatedAt?.toISOString(), sources: anchor.sources.map((s) => ({ downloadUrl: s.downloadUrl, verificationCerts: s.verificationCerts.map(certificateView) })) };
    return print(view, [`instance ${view.instanceIdentifier}`, ...view.sources.map((s) => `source ${s.downloadUrl}: ${s.verificationCerts.map((c) => c.subject).join('; ')}`)].join('\n'));
  }
  throw new UsageError(`unknown command "conf ${command ?? ''}"`);
}

/** A certificate as the listings show it (also `xrd testpki issue`). */
export function certificateView(der: Buffer): { subject: string; issuer: string; notAfter: string; sha256: string } {
  const cert = parseCertificate(der);
  return { subject: cert.subject, issuer: cert.issuer, notAfter: cert.notAfter.toISOString(), sha256: cert.hash };
}

function globalConfView(conf: GlobalConf) {
  const ca = (c: CaCertificate) => ({ ...certificateView(c.cert), ocsp: c.ocsp.map((o) => ({ url: o.url, cert: o.cert && certificateView(o.cert) })) });
  return {
    instanceIdentifier: conf.instanceIdentifier,
    expiresAt: conf.expiresAt?.toISOString(),
    instances: [...conf.shared.values()].map((p) => ({
      instanceIdentifier: p.instanceIdentifier,
      configurationVersion: p.configurationVersion,
      approvedCas: p.approvedCas.map((c) => ({ name: c.name, authenticationOnly: c.authenticationOnly, certificateProfileInfo: c.certificateProfileInfo, topCa: ca(c.topCa), intermediateCas: c.intermediateCas.map(ca) })),
      approvedTsas: p.approvedTsas.map((t) => ({ name: t.name, url: t.url, cert: certificateView(t.cert) })),
      members: p.members.map((m) => ({ id: formatClientId(m.id), name: m.name, subsystems: m.subsystems })),
      securityServers: p.securityServers.map((s) => ({
        id: `${formatClientId(s.owner)}/${s.serverCode}`,
        address: s.address,
        authCertHashes: s.authCertHashes.map((h) => `${p.authCertHashAlgorithm}:${h.toString('hex')}`),
        clients: s.clients.map(formatClientId),
        maintenanceMode: s.maintenanceMode,
      })),
      globalGroups: p.globalGroups.map((g) => ({ groupCode: g.groupCode, description: g.description, members: g.members.map(formatClientId) })),
      memberClasses: p.memberClasses,
      ocspFreshnessSeconds: p.ocspFreshnessSeconds,
    })),
    timeStampingIntervalSeconds: conf.privateParams?.timeStampingIntervalSeconds,
    managementService: conf.privateParams?.managementService && {
      authCertRegServiceAddress: conf.privateParams.managementService.authCertRegServiceAddress,
      managementRequestServiceProviderId: conf.privateParams.managementService.managementRequestServiceProviderId && formatClientId(conf.privateParams.managementService.managementRequestServiceProviderId),
    },
  };
}
