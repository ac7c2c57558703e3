/**
 * X-Road global configuration as the security server keeps it on disk (pr-gconf, facts §7):
 * `<dir>/instance-identifier`, then per instance `shared-params.xml` (and for our own instance
 * `private-params.xml`), each with a `.metadata` JSON naming its version and expiry. Versions 2 and
 * 3+ are read; they differ in the hash of registered authentication certificates (SHA-1 vs SHA-256).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { XrdError } from '../platform/errors.ts';
import { formatClientId, type ClientId } from '../protocol/identifiers.ts';
import { child, children, optionalText, parseXml, requiredText, type Element } from './xml.ts';

export interface OcspResponder {
  readonly url: string;
  /** DER of the responder certificate, when the configuration names one. */
  readonly cert?: Buffer;
}

export interface CaCertificate {
  readonly cert: Buffer;
  readonly ocsp: readonly OcspResponder[];
}

export interface ApprovedCa {
  readonly name: string;
  readonly authenticationOnly: boolean;
  readonly topCa: CaCertificate;
  readonly intermediateCas: readonly CaCertificate[];
  /** Java class name of the certificate profile (decides how member ids sit in certificate subjects). */
  readonly certificateProfileInfo: string;
}

export interface ApprovedTsa {
  readonly name: string;
  readonly url: string;
  readonly cert: Buffer;
}

export interface Member {
  readonly id: ClientId;
  readonly name: string;
  readonly subsystems: readonly string[];
}

export interface SecurityServer {
  readonly owner: ClientId;
  readonly serverCode: string;
  readonly address: string;
  /** Hashes of the registered authentication certificates (algorithm: `authCertHashAlgorithm`). */
  readonly authCertHashes: readonly Buffer[];
  readonly clients: readonly ClientId[];
}

export interface GlobalGroup {
  readonly groupCode: string;
  readonly description: string;
  readonly members: readonly ClientId[];
}

export interface SharedParameters {
  readonly instanceIdentifier: string;
  readonly configurationVersion: number;
  readonly expiresAt?: Date;
  readonly authCertHashAlgorithm: 'sha1' | 'sha256';
  readonly approvedCas: readonly ApprovedCa[];
  readonly approvedTsas: readonly ApprovedTsa[];
  readonly members: readonly Member[];
  readonly securityServers: readonly SecurityServer[];
  readonly globalGroups: readonly GlobalGroup[];
  readonly memberClasses: readonly { code: string; description: string }[];
  readonly ocspFreshnessSeconds: number;
}

export interface ManagementService {
  readonly authCertRegServiceAddress: string;
  readonly authCertRegServiceCert: Buffer;
  readonly managementRequestServiceProviderId?: ClientId;
}

export interface PrivateParameters {
  readonly instanceIdentifier: string;
  readonly expiresAt?: Date;
  readonly managementService?: ManagementService;
  readonly timeStampingIntervalSeconds: number;
}

/** The reference's default when shared parameters leave it out. */
const DEFAULT_OCSP_FRESHNESS_SECONDS = 3600;
const DEFAULT_TIME_STAMPING_INTERVAL_SECONDS = 60;

export class GlobalConf {
  constructor(
    readonly instanceIdentifier: string,
    readonly shared: ReadonlyMap<string, SharedParameters>,
    readonly privateParams: PrivateParameters | undefined,
  ) {}

  /** Our own instance's shared parameters. */
  get own(): SharedParameters {
    return this.shared.get(this.instanceIdentifier)!;
  }

  /** The earliest expiry of any part, if any part has one. */
  get expiresAt(): Date | undefined {
    const dates = [...[...this.shared.values()].map((s) => s.expiresAt), this.privateParams?.expiresAt].filter((d): d is Date => d !== undefined);
    return dates.length ? new Date(Math.min(...dates.map((d) => d.getTime()))) : undefined;
  }

  /** @throws OutdatedGlobalConf when any part has expired at `now` */
  checkUpToDate(now = new Date()): void {
    const expiresAt = this.expiresAt;
    if (expiresAt && expiresAt.getTime() <= now.getTime()) {
      throw new XrdError('OutdatedGlobalConf', { instance: this.instanceIdentifier, expiredAt: expiresAt.toISOString() });
    }
  }

  member(id: ClientId): Member | undefined {
    return this.shared.get(id.instance)?.members.find((m) => m.id.memberClass === id.memberClass && m.id.memberCode === id.memberCode);
  }

  securityServer(owner: ClientId, serverCode: string): SecurityServer | undefined {
    const key = formatClientId(owner);
    return this.shared.get(owner.instance)?.securityServers.find((s) => s.serverCode === serverCode && formatClientId(s.owner) === key);
  }

  /** Certificates of the timestamping authorities every instance's configuration approves. */
  tsaCertificates(): Buffer[] {
    return [...this.shared.values()].flatMap((p) => p.approvedTsas.map((t) => t.cert));
  }

  /** Whether `certDer` is a registered authentication certificate of the server. */
  isRegisteredAuthCert(owner: ClientId, serverCode: string, certDer: Buffer): boolean {
    const params = this.shared.get(owner.instance);
    const server = this.securityServer(owner, serverCode);
    if (!params || !server) return false;
    const hash = createHash(params.authCertHashAlgorithm).update(certDer).digest();
    return server.authCertHashes.some((h) => h.equals(hash));
  }
}

/**
 * Loads a configuration directory as the reference writes it.
 * @throws MalformedGlobalConf (unreadable or invalid files), OutdatedGlobalConf is not thrown here:
 * callers decide when to check expiry (`checkUpToDate`)
 */
export function loadGlobalConf(dir: string): GlobalConf {
  const idFile = join(dir, 'instance-identifier');
  const instanceIdentifier = readText(idFile).trim();
  if (!instanceIdentifier) throw new XrdError('MalformedGlobalConf', { file: idFile, reason: 'empty' });
  const shared = new Map<string, SharedParameters>();
  for (const name of readdirSync(dir)) {
    const file = join(dir, name, 'shared-params.xml');
    if (!statSync(join(dir, name)).isDirectory() || !existsSync(file)) continue;
    const params = parseSharedParameters(readText(file), readMetadata(file), file);
    shared.set(params.instanceIdentifier, params);
  }
  if (!shared.has(instanceIdentifier)) {
    throw new XrdError('MalformedGlobalConf', { file: join(dir, instanceIdentifier, 'shared-params.xml'), reason: 'missing for our own instance' });
  }
  const privateFile = join(dir, instanceIdentifier, 'private-params.xml');
  const privateParams = existsSync(privateFile) ? parsePrivateParameters(readText(privateFile), readMetadata(privateFile), privateFile) : undefined;
  return new GlobalConf(instanceIdentifier, shared, privateParams);
}

/**
 * `loadGlobalConf(dir)` as a function to call often: the files are parsed again only when one of
 * them changed (a download replaces them by renames, which changes their modification times).
 */
export function globalConfReader(dir: string, options: { recheckMs?: number } = {}): () => GlobalConf {
  let loaded: { stamp: string; conf: GlobalConf; checkedAt: number } | undefined;
  // Callers on every message (the proxies) look at the files at most every `recheckMs`.
  const recheckMs = options.recheckMs ?? 0;
  return () => {
    const now = Date.now();
    if (loaded && now - loaded.checkedAt < recheckMs) return loaded.conf;
    const stamp = configurationStamp(dir);
    if (loaded?.stamp !== stamp) loaded = { stamp, conf: loadGlobalConf(dir), checkedAt: now };
    else loaded.checkedAt = now;
    return loaded.conf;
  };
}

function configurationStamp(dir: string): string {
  const files = [join(dir, 'instance-identifier')];
  if (existsSync(dir)) {
    for (const name of readdirSync(dir)) {
      for (const file of ['shared-params.xml', 'private-params.xml']) files.push(join(dir, name, file), join(dir, name, `${file}.metadata`));
    }
  }
  return files.map((f) => (existsSync(f) ? `${f}@${statSync(f).mtimeMs}` : '')).join('|');
}

interface Metadata {
  configurationVersion?: number;
  expiresAt?: Date;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new XrdError('MalformedGlobalConf', { file, reason: (err as Error).message }, { cause: err });
  }
}

/** `<file>.metadata`: JSON with `configurationVersion` and `expirationDate` (both optional). */
function readMetadata(file: string): Metadata {
  const metaFile = `${file}.metadata`;
  if (!existsSync(metaFile)) return {};
  let json: { configurationVersion?: string | number; expirationDate?: string };
  try {
    json = JSON.parse(readText(metaFile));
  } catch (err) {
    throw new XrdError('MalformedGlobalConf', { file: metaFile, reason: (err as Error).message }, { cause: err });
  }
  const expiresAt = json.expirationDate ? new Date(json.expirationDate) : undefined;
  if (expiresAt && Number.isNaN(expiresAt.getTime())) throw new XrdError('MalformedGlobalConf', { file: metaFile, reason: `expirationDate "${json.expirationDate}" is not a date` });
  return { configurationVersion: json.configurationVersion === undefined ? undefined : Number(json.configurationVersion), expiresAt };
}

export function parseSharedParameters(xml: string, meta: Metadata, file: string): SharedParameters {
  const root = parseXml(xml, file);
  const instanceIdentifier = requiredText(root, 'instanceIdentifier', file);
  const version = meta.configurationVersion ?? 3;
  const membersByXmlId = new Map<string, ClientId>();
  const members: Member[] = children(root, 'member').map((m) => {
    const memberClass = requiredText(child(m, 'memberClass') ?? m, 'code', file);
    const memberCode = requiredText(m, 'memberCode', file);
    const id: ClientId = { instance: instanceIdentifier, memberClass, memberCode };
    const xmlId = m.getAttribute('id');
    if (xmlId) membersByXmlId.set(xmlId, id);
    const subsystems = children(m, 'subsystem').map((s) => {
      const code = requiredText(s, 'subsystemCode', file);
      const subId = s.getAttribute('id');
      if (subId) membersByXmlId.set(subId, { ...id, subsystem: code });
      return code;
    });
    return { id, name: optionalText(m, 'name') ?? '', subsystems };
  });
  const ref = (el: Element, what: string): ClientId => {
    const xmlId = el.textContent?.trim() ?? '';
    const id = membersByXmlId.get(xmlId);
    if (!id) throw new XrdError('MalformedGlobalConf', { file, reason: `${what} refers to unknown id "${xmlId}"` });
    return id;
  };
  const settings = child(root, 'globalSettings');
  return {
    instanceIdentifier,
    configurationVersion: version,
    expiresAt: meta.expiresAt,
    authCertHashAlgorithm: version <= 2 ? 'sha1' : 'sha256',
    approvedCas: children(root, 'approvedCA').map((ca) => ({
      name: requiredText(ca, 'name', file),
      authenticationOnly: optionalText(ca, 'authenticationOnly') === 'true',
      topCa: caCertificate(child(ca, 'topCA'), file),
      intermediateCas: children(ca, 'intermediateCA').map((i) => caCertificate(i, file)),
      certificateProfileInfo: optionalText(ca, 'certificateProfileInfo') ?? '',
    })),
    approvedTsas: children(root, 'approvedTSA').map((tsa) => ({
      name: requiredText(tsa, 'name', file),
      url: requiredText(tsa, 'url', file),
      cert: certificateField(requiredText(tsa, 'cert', file), file),
    })),
    members,
    securityServers: children(root, 'securityServer').map((s) => ({
      owner: ref(child(s, 'owner') ?? s, 'securityServer owner'),
      serverCode: requiredText(s, 'serverCode', file),
      address: optionalText(s, 'address') ?? '',
      authCertHashes: children(s, 'authCertHash').map((h) => Buffer.from(h.textContent?.trim() ?? '', 'base64')),
      clients: children(s, 'client').map((c) => ref(c, 'securityServer client')),
    })),
    globalGroups: children(root, 'globalGroup').map((g) => ({
      groupCode: requiredText(g, 'groupCode', file),
      description: optionalText(g, 'description') ?? '',
      members: children(g, 'groupMember').map((m) => identifierElement(m, file)),
    })),
    memberClasses: settings ? children(settings, 'memberClass').map((c) => ({ code: requiredText(c, 'code', file), description: optionalText(c, 'description') ?? '' })) : [],
    ocspFreshnessSeconds: Number(settings && optionalText(settings, 'ocspFreshnessSeconds')) || DEFAULT_OCSP_FRESHNESS_SECONDS,
  };
}

export function parsePrivateParameters(xml: string, meta: Metadata, file: string): PrivateParameters {
  const root = parseXml(xml, file);
  const management = child(root, 'managementService');
  const provider = management && child(management, 'managementRequestServiceProviderId');
  return {
    instanceIdentifier: requiredText(root, 'instanceIdentifier', file),
    expiresAt: meta.expiresAt,
    managementService: management && {
      authCertRegServiceAddress: requiredText(management, 'authCertRegServiceAddress', file),
      authCertRegServiceCert: certificateField(requiredText(management, 'authCertRegServiceCert', file), file),
      managementRequestServiceProviderId: provider && identifierElement(provider, file),
    },
    timeStampingIntervalSeconds: Number(optionalText(root, 'timeStampingIntervalSeconds')) || DEFAULT_TIME_STAMPING_INTERVAL_SECONDS,
  };
}

function caCertificate(el: Element | undefined, file: string): CaCertificate {
  if (!el) throw new XrdError('MalformedGlobalConf', { file, reason: '<approvedCA> lacks <topCA>' });
  return {
    cert: certificateField(requiredText(el, 'cert', file), file),
    ocsp: children(el, 'ocsp').map((o) => {
      const cert = optionalText(o, 'cert');
      return { url: requiredText(o, 'url', file), cert: cert ? certificateField(cert, file) : undefined };
    }),
  };
}

/**
 * A certificate field: base64 of DER — or, in some configurations the reference produces, base64
 * of PEM text (facts §7). Either way the DER comes back.
 */
export function certificateField(base64: string, file: string): Buffer {
  const bytes = Buffer.from(base64.replace(/\s+/g, ''), 'base64');
  if (bytes.subarray(0, 11).toString('latin1') !== '-----BEGIN ') return bytes;
  const pem = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(bytes.toString('latin1'));
  if (!pem) throw new XrdError('MalformedGlobalConf', { file, reason: 'certificate field holds PEM text without a certificate' });
  return Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64');
}

/** An `id:`-namespaced identifier element (xRoadInstance, memberClass, memberCode, subsystemCode). */
function identifierElement(el: Element, file: string): ClientId {
  return {
    instance: requiredText(el, 'xRoadInstance', file),
    memberClass: requiredText(el, 'memberClass', file),
    memberCode: requiredText(el, 'memberCode', file),
    subsystem: optionalText(el, 'subsystemCode'),
  };
}
