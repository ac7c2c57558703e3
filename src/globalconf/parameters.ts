/**
 * Shared and private parameters (pr-gconf Annex B and C) in every version the reference's client
 * reads, 2 to 6. The versions add to one another, so one reader takes them all:
 *  - 2: the base; `authCertHash` is SHA-1 of the DER;
 *  - 3: configuration sources (`<source>`) in shared parameters, ACME servers of CAs, and
 *    `authCertHash` becomes SHA-256;
 *  - 4: ACME certificate profile ids;
 *  - 5: subsystem names, security servers in maintenance mode;
 *  - 6: OCSP responder and TSA cost types, the CAs' default CSR format.
 * Private parameters are the same in every version; they name federated instances' anchors.
 */
import { XrdError } from '../platform/errors.ts';
import type { ClientId } from '../protocol/identifiers.ts';
import { anchorElement, type ConfigurationAnchor } from './anchor.ts';
import { certificateField, child, children, optionalText, parseXml, requiredText, type Element } from './xml.ts';

/** The configuration versions this reader takes, newest first (the order of version negotiation). */
export const SUPPORTED_VERSIONS = [6, 5, 4, 3, 2] as const;
export const CURRENT_VERSION = SUPPORTED_VERSIONS[0];
export const MINIMUM_VERSION = SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.length - 1]!;
/** The first version whose cost types decide the order of OCSP responders (the reference's constant). */
export const VERSION_WITH_COST_TYPE = 6;

/** What a service costs (v6); responders without one are "unspecified". */
export type CostType = 'FREE' | 'PAID' | 'UNDEFINED';

export interface OcspResponder {
  readonly url: string;
  /** DER of the responder certificate, when the configuration names one. */
  readonly cert?: Buffer;
  readonly costType?: CostType;
}

export interface CaCertificate {
  readonly cert: Buffer;
  readonly ocsp: readonly OcspResponder[];
}

/** An ACME server issuing a CA's certificates (v3; the profile ids from v4). */
export interface AcmeServer {
  readonly directoryUrl: string;
  readonly ipAddress?: string;
  readonly authenticationCertificateProfileId?: string;
  readonly signingCertificateProfileId?: string;
}

export interface ApprovedCa {
  readonly name: string;
  readonly authenticationOnly: boolean;
  readonly topCa: CaCertificate;
  readonly intermediateCas: readonly CaCertificate[];
  /** Java class name of the certificate profile (decides how member ids sit in certificate subjects). */
  readonly certificateProfileInfo: string;
  readonly acmeServer?: AcmeServer;
  readonly defaultCsrFormat?: 'PEM' | 'DER';
}

export interface ApprovedTsa {
  readonly name: string;
  readonly url: string;
  readonly cert: Buffer;
  readonly costType?: CostType;
}

export interface Member {
  readonly id: ClientId;
  readonly name: string;
  readonly subsystems: readonly string[];
  /** Names of subsystems that have one (v5), by subsystem code. */
  readonly subsystemNames?: Readonly<Record<string, string>>;
}

export interface SecurityServer {
  readonly owner: ClientId;
  readonly serverCode: string;
  readonly address: string;
  /** Hashes of the registered authentication certificates (algorithm: `authCertHashAlgorithm`). */
  readonly authCertHashes: readonly Buffer[];
  readonly clients: readonly ClientId[];
  /** Present when the server is in maintenance mode (v5), with the message for its consumers. */
  readonly maintenanceMode?: { readonly message?: string };
}

export interface GlobalGroup {
  readonly groupCode: string;
  readonly description: string;
  readonly members: readonly ClientId[];
}

/** A central server node that serves this instance's configuration (v3 `<source>`). */
export interface SharedConfigurationSource {
  readonly address: string;
  readonly internalVerificationCerts: readonly Buffer[];
  readonly externalVerificationCerts: readonly Buffer[];
}

export interface SharedParameters {
  readonly instanceIdentifier: string;
  readonly configurationVersion: number;
  readonly expiresAt?: Date;
  readonly authCertHashAlgorithm: 'sha1' | 'sha256';
  readonly sources?: readonly SharedConfigurationSource[];
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
  /** The central server's TLS certificate; the reference's own test data leaves it out. */
  readonly authCertRegServiceCert?: Buffer;
  readonly managementRequestServiceProviderId?: ClientId;
}

export interface PrivateParameters {
  readonly instanceIdentifier: string;
  readonly expiresAt?: Date;
  /** Anchors of the federated instances whose shared parameters are downloaded beside ours. */
  readonly configurationAnchors?: readonly ConfigurationAnchor[];
  readonly managementService?: ManagementService;
  readonly timeStampingIntervalSeconds: number;
}

/** What a part's `.metadata` (or the directory it came in) says about it. */
export interface PartMetadata {
  /** Absent means version 2, as the reference reads it. */
  readonly configurationVersion?: number;
  readonly expiresAt?: Date;
}

/** The reference's defaults when the parameters leave them out. */
const DEFAULT_OCSP_FRESHNESS_SECONDS = 3600;
const DEFAULT_TIME_STAMPING_INTERVAL_SECONDS = 60;

/** @throws MalformedGlobalConf (bad XML, a missing required element, an unknown id, an unsupported version) */
export function parseSharedParameters(xml: string, meta: PartMetadata, file: string): SharedParameters {
  const version = versionOf(meta, file);
  const root = parseXml(xml, file);
  const instanceIdentifier = requiredText(root, 'instanceIdentifier', file);
  const membersByXmlId = new Map<string, ClientId>();
  const members: Member[] = children(root, 'member').map((m) => {
    const memberClass = requiredText(child(m, 'memberClass') ?? m, 'code', file);
    const memberCode = requiredText(m, 'memberCode', file);
    const id: ClientId = { instance: instanceIdentifier, memberClass, memberCode };
    const xmlId = m.getAttribute('id');
    if (xmlId) membersByXmlId.set(xmlId, id);
    const names: Record<string, string> = {};
    const subsystems = children(m, 'subsystem').map((s) => {
      const code = requiredText(s, 'subsystemCode', file);
      const subId = s.getAttribute('id');
      if (subId) membersByXmlId.set(subId, { ...id, subsystem: code });
      const name = optionalText(s, 'subsystemName');
      if (name !== undefined) names[code] = name;
      return code;
    });
    return { id, name: optionalText(m, 'name') ?? '', subsystems, ...(Object.keys(names).length ? { subsystemNames: names } : {}) };
  });
  const ref = (el: Element, what: string): ClientId => {
    const xmlId = el.textContent?.trim() ?? '';
    const id = membersByXmlId.get(xmlId);
    if (!id) throw new XrdError('MalformedGlobalConf', { file, reason: `${what} refers to unknown id "${xmlId}"` });
    return id;
  };
  const settings = child(root, 'globalSettings');
  const sources = children(root, 'source').map((s) => ({
    address: requiredText(s, 'address', file),
    internalVerificationCerts: children(s, 'internalVerificationCert').map((c) => certificateField(c.textContent ?? '', file)),
    externalVerificationCerts: children(s, 'externalVerificationCert').map((c) => certificateField(c.textContent ?? '', file)),
  }));
  return {
    instanceIdentifier,
    configurationVersion: version,
    expiresAt: meta.expiresAt,
    authCertHashAlgorithm: version <= 2 ? 'sha1' : 'sha256',
    ...(sources.length ? { sources } : {}),
    approvedCas: children(root, 'approvedCA').map((ca) => approvedCa(ca, file)),
    approvedTsas: children(root, 'approvedTSA').map((tsa) => ({
      name: requiredText(tsa, 'name', file),
      url: requiredText(tsa, 'url', file),
      cert: certificateField(requiredText(tsa, 'cert', file), file),
      ...costType(tsa, file),
    })),
    members,
    securityServers: children(root, 'securityServer').map((s): SecurityServer => {
      const maintenance = child(s, 'inMaintenanceMode');
      return {
        owner: ref(child(s, 'owner') ?? s, 'securityServer owner'),
        serverCode: requiredText(s, 'serverCode', file),
        address: optionalText(s, 'address') ?? '',
        authCertHashes: children(s, 'authCertHash').map((h) => Buffer.from(h.textContent?.trim() ?? '', 'base64')),
        clients: children(s, 'client').map((c) => ref(c, 'securityServer client')),
        ...(maintenance ? { maintenanceMode: { message: optionalText(maintenance, 'message') } } : {}),
      };
    }),
    globalGroups: children(root, 'globalGroup').map((g) => ({
      groupCode: requiredText(g, 'groupCode', file),
      description: optionalText(g, 'description') ?? '',
      members: children(g, 'groupMember').map((m) => identifierElement(m, file)),
    })),
    memberClasses: settings ? children(settings, 'memberClass').map((c) => ({ code: requiredText(c, 'code', file), description: optionalText(c, 'description') ?? '' })) : [],
    ocspFreshnessSeconds: Number(settings && optionalText(settings, 'ocspFreshnessSeconds')) || DEFAULT_OCSP_FRESHNESS_SECONDS,
  };
}

/** @throws MalformedGlobalConf */
export function parsePrivateParameters(xml: string, meta: PartMetadata, file: string): PrivateParameters {
  versionOf(meta, file);
  const root = parseXml(xml, file);
  const management = child(root, 'managementService');
  const provider = management && child(management, 'managementRequestServiceProviderId');
  const regCert = management && optionalText(management, 'authCertRegServiceCert');
  return {
    instanceIdentifier: requiredText(root, 'instanceIdentifier', file),
    expiresAt: meta.expiresAt,
    configurationAnchors: children(root, 'configurationAnchor').map((a) => anchorElement(a, file)),
    managementService: management && {
      authCertRegServiceAddress: requiredText(management, 'authCertRegServiceAddress', file),
      ...(regCert ? { authCertRegServiceCert: certificateField(regCert, file) } : {}),
      managementRequestServiceProviderId: provider && identifierElement(provider, file),
    },
    timeStampingIntervalSeconds: Number(optionalText(root, 'timeStampingIntervalSeconds')) || DEFAULT_TIME_STAMPING_INTERVAL_SECONDS,
  };
}

function versionOf(meta: PartMetadata, file: string): number {
  const version = meta.configurationVersion ?? MINIMUM_VERSION;
  if (!(SUPPORTED_VERSIONS as readonly number[]).includes(version)) {
    throw new XrdError('MalformedGlobalConf', { file, reason: `configuration version ${version} is not one of ${SUPPORTED_VERSIONS.join(', ')}` });
  }
  return version;
}

function approvedCa(ca: Element, file: string): ApprovedCa {
  const acme = child(ca, 'acmeServer');
  const csrFormat = optionalText(ca, 'defaultCsrFormat');
  if (csrFormat !== undefined && csrFormat !== 'PEM' && csrFormat !== 'DER') throw new XrdError('MalformedGlobalConf', { file, reason: `defaultCsrFormat "${csrFormat}" is neither PEM nor DER` });
  return {
    name: requiredText(ca, 'name', file),
    authenticationOnly: optionalText(ca, 'authenticationOnly') === 'true',
    topCa: caCertificate(child(ca, 'topCA'), file),
    intermediateCas: children(ca, 'intermediateCA').map((i) => caCertificate(i, file)),
    certificateProfileInfo: optionalText(ca, 'certificateProfileInfo') ?? '',
    ...(csrFormat ? { defaultCsrFormat: csrFormat } : {}),
    ...(acme
      ? {
          acmeServer: {
            directoryUrl: requiredText(acme, 'directoryURL', file),
            ...present('ipAddress', optionalText(acme, 'ipAddress')),
            ...present('authenticationCertificateProfileId', optionalText(acme, 'authenticationCertificateProfileId')),
            ...present('signingCertificateProfileId', optionalText(acme, 'signingCertificateProfileId')),
          },
        }
      : {}),
  };
}

function caCertificate(el: Element | undefined, file: string): CaCertificate {
  if (!el) throw new XrdError('MalformedGlobalConf', { file, reason: '<approvedCA> lacks <topCA>' });
  return {
    cert: certificateField(requiredText(el, 'cert', file), file),
    ocsp: children(el, 'ocsp').map((o) => {
      const cert = optionalText(o, 'cert');
      return { url: requiredText(o, 'url', file), ...(cert ? { cert: certificateField(cert, file) } : {}), ...costType(o, file) };
    }),
  };
}

function costType(el: Element, file: string): { costType?: CostType } {
  const value = optionalText(el, 'costType');
  if (value === undefined) return {};
  if (value !== 'FREE' && value !== 'PAID' && value !== 'UNDEFINED') throw new XrdError('MalformedGlobalConf', { file, reason: `costType "${value}" is not FREE, PAID or UNDEFINED` });
  return { costType: value };
}

/** `{ [key]: value }` when there is a value: optional fields stay absent rather than undefined. */
function present<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
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
