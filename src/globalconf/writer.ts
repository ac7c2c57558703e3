/**
 * Writes a configuration directory in the reference's format, for a local instance (tests, the
 * demo, administrators trying the system) and for the management-service stand-in. Reading it back
 * with `loadGlobalConf` gives the same parameters: every field the reader takes (versions 2–6) is
 * written, in the order the schemas give.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatClientId, type ClientId } from '../protocol/identifiers.ts';
import type { ConfigurationAnchor } from './anchor.ts';
import { INSTANCE_IDENTIFIER_FILE, METADATA_SUFFIX, PRIVATE_PARAMETERS_FILE, SHARED_PARAMETERS_FILE, instanceFolder } from './directory.ts';
import type { ApprovedCa, CaCertificate, PrivateParameters, SharedParameters } from './parameters.ts';
import { XrdError } from '../platform/errors.ts';

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const el = (name: string, content: string): string => `<${name}>${content}</${name}>`;
const text = (name: string, value: string | number | boolean): string => el(name, escape(String(value)));
const optional = (name: string, value: string | undefined): string => (value === undefined ? '' : text(name, value));
const b64 = (name: string, value: Buffer): string => text(name, value.toString('base64'));

function identifier(name: string, id: ClientId): string {
  const type = id.subsystem ? 'SUBSYSTEM' : 'MEMBER';
  return `<${name} id:objectType="${type}">${text('id:xRoadInstance', id.instance)}${text('id:memberClass', id.memberClass)}${text('id:memberCode', id.memberCode)}${id.subsystem ? text('id:subsystemCode', id.subsystem) : ''}</${name}>`;
}

function caCert(name: string, ca: CaCertificate): string {
  const ocsp = ca.ocsp.map((o) => el('ocsp', text('url', o.url) + (o.cert ? b64('cert', o.cert) : '') + optional('costType', o.costType))).join('');
  return el(name, b64('cert', ca.cert) + ocsp);
}

function approvedCa(ca: ApprovedCa): string {
  const acme = ca.acmeServer;
  return el(
    'approvedCA',
    text('name', ca.name) +
      text('authenticationOnly', ca.authenticationOnly) +
      caCert('topCA', ca.topCa) +
      ca.intermediateCas.map((i) => caCert('intermediateCA', i)).join('') +
      text('certificateProfileInfo', ca.certificateProfileInfo) +
      optional('defaultCsrFormat', ca.defaultCsrFormat) +
      (acme
        ? el('acmeServer', text('directoryURL', acme.directoryUrl) + optional('ipAddress', acme.ipAddress) + optional('authenticationCertificateProfileId', acme.authenticationCertificateProfileId) + optional('signingCertificateProfileId', acme.signingCertificateProfileId))
        : ''),
  );
}

export function sharedParametersXml(p: SharedParameters): string {
  const xmlIds = new Map<string, string>();
  const members = p.members
    .map((m, i) => {
      xmlIds.set(formatClientId(m.id), `m${i}`);
      const subsystems = m.subsystems
        .map((code, j) => {
          xmlIds.set(formatClientId({ ...m.id, subsystem: code }), `m${i}s${j}`);
          return `<subsystem id="m${i}s${j}">${text('subsystemCode', code)}${optional('subsystemName', m.subsystemNames?.[code])}</subsystem>`;
        })
        .join('');
      const description = p.memberClasses.find((c) => c.code === m.id.memberClass)?.description ?? m.id.memberClass;
      return `<member id="m${i}">${el('memberClass', text('code', m.id.memberClass) + text('description', description))}${text('memberCode', m.id.memberCode)}${text('name', m.name)}${subsystems}</member>`;
    })
    .join('\n');
  const ref = (id: ClientId): string => {
    const xmlId = xmlIds.get(formatClientId(id));
    if (!xmlId) throw new XrdError('InvalidConfiguration', { reason: `${formatClientId(id)} is not a member or subsystem of ${p.instanceIdentifier}` });
    return xmlId;
  };
  const body = [
    text('instanceIdentifier', p.instanceIdentifier),
    ...(p.sources ?? []).map((s) => el('source', text('address', s.address) + s.internalVerificationCerts.map((c) => b64('internalVerificationCert', c)).join('') + s.externalVerificationCerts.map((c) => b64('externalVerificationCert', c)).join(''))),
    ...p.approvedCas.map(approvedCa),
    ...p.approvedTsas.map((t) => el('approvedTSA', text('name', t.name) + text('url', t.url) + b64('cert', t.cert) + optional('costType', t.costType))),
    members,
    ...p.securityServers.map((s) =>
      el(
        'securityServer',
        text('owner', ref(s.owner)) +
          text('serverCode', s.serverCode) +
          text('address', s.address) +
          s.authCertHashes.map((h) => b64('authCertHash', h)).join('') +
          s.clients.map((c) => text('client', ref(c))).join('') +
          (s.maintenanceMode ? el('inMaintenanceMode', optional('message', s.maintenanceMode.message)) : ''),
      ),
    ),
    ...p.globalGroups.map((g) => el('globalGroup', text('groupCode', g.groupCode) + text('description', g.description) + g.members.map((m) => identifier('groupMember', m)).join(''))),
    el('globalSettings', p.memberClasses.map((c) => el('memberClass', text('code', c.code) + text('description', c.description))).join('') + text('ocspFreshnessSeconds', p.ocspFreshnessSeconds)),
  ];
  return `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<tns:conf xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:tns="http://x-road.eu/xsd/xroad.xsd">\n${body.join('\n')}\n</tns:conf>\n`;
}

export function privateParametersXml(p: PrivateParameters): string {
  const m = p.managementService;
  const anchors = (p.configurationAnchors ?? []).map((a) => el('configurationAnchor', anchorContent(a))).join('');
  const management = m
    ? el(
        'managementService',
        text('authCertRegServiceAddress', m.authCertRegServiceAddress) + (m.authCertRegServiceCert ? b64('authCertRegServiceCert', m.authCertRegServiceCert) : '') + (m.managementRequestServiceProviderId ? identifier('managementRequestServiceProviderId', m.managementRequestServiceProviderId) : ''),
      )
    : '';
  return `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<tns:conf xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:tns="http://x-road.eu/xsd/xroad.xsd">\n${text('instanceIdentifier', p.instanceIdentifier)}${anchors}${management}${text('timeStampingIntervalSeconds', p.timeStampingIntervalSeconds)}\n</tns:conf>\n`;
}

/**
 * Writes `<dir>/instance-identifier` and the instance's parameters with their metadata. Each file
 * is written aside and renamed into place, so a reader never sees half a file.
 */
export function writeGlobalConf(dir: string, shared: SharedParameters, privateParams?: PrivateParameters, expiresAt?: Date): void {
  const instanceDir = join(dir, instanceFolder(shared.instanceIdentifier));
  mkdirSync(instanceDir, { recursive: true });
  const metadata = JSON.stringify({ configurationVersion: String(shared.configurationVersion), ...(expiresAt ? { expirationDate: expiresAt.toISOString() } : {}) });
  const put = (file: string, content: string): void => {
    writeFileSync(`${file}.tmp`, content);
    renameSync(`${file}.tmp`, file);
  };
  put(join(instanceDir, SHARED_PARAMETERS_FILE + METADATA_SUFFIX), metadata);
  put(join(instanceDir, SHARED_PARAMETERS_FILE), sharedParametersXml(shared));
  if (privateParams) {
    put(join(instanceDir, PRIVATE_PARAMETERS_FILE + METADATA_SUFFIX), metadata);
    put(join(instanceDir, PRIVATE_PARAMETERS_FILE), privateParametersXml(privateParams));
  }
  put(join(dir, INSTANCE_IDENTIFIER_FILE), shared.instanceIdentifier);
}

function anchorContent(anchor: ConfigurationAnchor): string {
  return text('instanceIdentifier', anchor.instanceIdentifier) + anchor.sources.map((s) => el('source', text('downloadURL', s.downloadUrl) + s.verificationCerts.map((c) => b64('verificationCert', c)).join(''))).join('');
}

/** A configuration anchor file, as `loadConfigurationAnchor` reads it. */
export function configurationAnchorXml(anchor: ConfigurationAnchor): string {
  return `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<tns:configurationAnchor xmlns:tns="http://x-road.eu/xsd/xroad.xsd">${text('generatedAt', (anchor.generatedAt ?? new Date()).toISOString())}${anchorContent(anchor)}</tns:configurationAnchor>\n`;
}
