/**
 * X-Road global configuration as the security server uses it (pr-gconf, facts §7): our own
 * instance's shared and private parameters and the shared parameters of federated instances, read
 * from the configuration directory, with the lookups the signer and the proxies make (the
 * reference's GlobalConfImpl). Lookups answer for every instance the directory holds; a federated
 * instance whose parameters have expired is left out of them, as the reference leaves it out.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { XrdError } from '../platform/errors.ts';
import { formatClientId, formatSecurityServerId, sameClientId, type ClientId, type SecurityServerId } from '../protocol/identifiers.ts';
import { INSTANCE_IDENTIFIER_FILE, METADATA_SUFFIX, PRIVATE_PARAMETERS_FILE, SHARED_PARAMETERS_FILE, instanceFolder, readConfigurationDirectory } from './directory.ts';
import { DEFAULT_EXTENSIONS, EXTENSION_FILES, readExtensions, type Extensions } from './extensions.ts';
import { VERSION_WITH_COST_TYPE, type CostType, type GlobalGroup, type Member, type OcspResponder, type PrivateParameters, type SecurityServer, type SharedParameters } from './parameters.ts';

export type {
  AcmeServer,
  ApprovedCa,
  ApprovedTsa,
  CaCertificate,
  CostType,
  GlobalGroup,
  ManagementService,
  Member,
  OcspResponder,
  PrivateParameters,
  SecurityServer,
  SharedConfigurationSource,
  SharedParameters,
} from './parameters.ts';

/** How OCSP responders are ordered by their cost type (the reference's ocsp-prioritization-strategy). */
export type OcspPrioritization = 'NONE' | 'ONLY_FREE' | 'ONLY_PAID' | 'FREE_FIRST' | 'PAID_FIRST';

export interface GlobalConfOptions {
  /** Parts of the directory that could not be read (reported, not fatal). */
  readonly skipped?: readonly { readonly file: string; readonly error: XrdError }[];
  /** The clock deciding which federated instances have expired. */
  readonly clock?: () => Date;
  /** Optional parts of our instance (defaults when absent). */
  readonly extensions?: Extensions;
}

const sameClient = sameClientId;

export class GlobalConf {
  readonly skipped: readonly { readonly file: string; readonly error: XrdError }[];
  /** OCSP fetch interval, nextUpdate checking and the monitoring client (extensions.ts). */
  readonly extensions: Extensions;
  private readonly clock: () => Date;

  constructor(
    readonly instanceIdentifier: string,
    /** Every instance's shared parameters by instance identifier, ours included, expired ones too. */
    readonly shared: ReadonlyMap<string, SharedParameters>,
    /** Our own instance's private parameters. */
    readonly privateParams: PrivateParameters | undefined,
    options: GlobalConfOptions = {},
  ) {
    this.skipped = options.skipped ?? [];
    this.extensions = options.extensions ?? DEFAULT_EXTENSIONS;
    this.clock = options.clock ?? (() => new Date());
  }

  /** Our own instance's shared parameters. */
  get own(): SharedParameters {
    return this.shared.get(this.instanceIdentifier)!;
  }

  /** The configuration version of our own shared parameters. */
  get version(): number {
    return this.own.configurationVersion;
  }

  /** When our own parameters expire (the earlier of shared and private), if they say. */
  get expiresAt(): Date | undefined {
    const dates = [this.own.expiresAt, this.privateParams?.expiresAt].filter((d): d is Date => d !== undefined);
    return dates.length ? new Date(Math.min(...dates.map((d) => d.getTime()))) : undefined;
  }

  /** @throws OutdatedGlobalConf when our own parameters have expired at `now` */
  checkUpToDate(now = new Date()): void {
    const expiresAt = this.expiresAt;
    if (expiresAt && expiresAt.getTime() <= now.getTime()) {
      throw new XrdError('OutdatedGlobalConf', { instance: this.instanceIdentifier, expiredAt: expiresAt.toISOString() });
    }
  }

  /** Shared parameters of `instance`: ours always, a federated instance's while they have not expired. */
  sharedOf(instance: string): SharedParameters | undefined {
    const params = this.shared.get(instance);
    if (!params || instance === this.instanceIdentifier) return params;
    return params.expiresAt && params.expiresAt.getTime() <= this.clock().getTime() ? undefined : params;
  }

  /** The instances lookups answer for: ours and the federated ones that have not expired. */
  instanceIdentifiers(): string[] {
    return [...this.shared.keys()].filter((i) => this.sharedOf(i));
  }

  private live(): SharedParameters[] {
    return this.instanceIdentifiers().map((i) => this.shared.get(i)!);
  }

  member(id: ClientId): Member | undefined {
    return this.sharedOf(id.instance)?.members.find((m) => m.id.memberClass === id.memberClass && m.id.memberCode === id.memberCode);
  }

  /** Members and their subsystems, in the order the parameters list them. */
  members(instance: string): ClientId[] {
    return (this.sharedOf(instance)?.members ?? []).flatMap((m) => [m.id, ...m.subsystems.map((subsystem) => ({ ...m.id, subsystem }))]);
  }

  securityServers(instance: string): readonly SecurityServer[] {
    return this.sharedOf(instance)?.securityServers ?? [];
  }

  /** A security server with its address, clients and maintenance mode. */
  securityServer(server: SecurityServerId): SecurityServer | undefined {
    const params = this.sharedOf(server.instance);
    return params && indexOf(params).byId.get(formatSecurityServerId(server));
  }

  /**
   * The security servers `client` is registered at; a server's owner counts as its client (the
   * reference's getClientSecurityServers). A client appears only in its own instance's
   * parameters, so federated clients are found in their instance's.
   */
  securityServersOf(client: ClientId): SecurityServer[] {
    const params = this.sharedOf(client.instance);
    return params ? (indexOf(params).byClient.get(formatClientId(client)) ?? []) : [];
  }

  /** Whether `client` is a client of `server`, its owner included (the reference's isSecurityServerClient). */
  isSecurityServerClient(client: ClientId, server: SecurityServerId): boolean {
    return this.securityServersOf(client).some((s) => s.serverCode === server.serverCode && sameClient(s.owner, { instance: server.instance, memberClass: server.memberClass, memberCode: server.memberCode }));
  }

  /** Addresses of the servers `client` is registered at (the reference's getProviderAddress). */
  providerAddresses(client: ClientId): string[] {
    return [...new Set(this.securityServersOf(client).map((s) => s.address).filter((a) => a !== ''))];
  }

  /** Every security server address of every instance (the reference's getKnownAddresses). */
  knownAddresses(): string[] {
    return [...new Set(this.live().flatMap((p) => p.securityServers.map((s) => s.address).filter((a) => a !== '')))];
  }

  /** The server that registered `certDer` as its authentication certificate, in any instance. */
  serverIdForAuthCert(certDer: Buffer): SecurityServerId | undefined {
    for (const params of this.live()) {
      const server = indexOf(params).byAuthCert.get(createHash(params.authCertHashAlgorithm).update(certDer).digest('base64'));
      if (server) return { ...server.owner, serverCode: server.serverCode };
    }
    return undefined;
  }

  /** Whether `certDer` is registered for a server `member` owns or is a client of (the reference's authCertMatchesMember). */
  authCertMatchesMember(certDer: Buffer, member: ClientId): boolean {
    const params = this.sharedOf(member.instance);
    if (!params) return false;
    const hash = createHash(params.authCertHashAlgorithm).update(certDer).digest();
    return this.securityServersOf(member).some((s) => s.authCertHashes.some((h) => h.equals(hash)));
  }

  /** Whether `certDer` is a registered authentication certificate of the server. */
  isRegisteredAuthCert(owner: ClientId, serverCode: string, certDer: Buffer): boolean {
    const params = this.sharedOf(owner.instance);
    const server = this.securityServer({ instance: owner.instance, memberClass: owner.memberClass, memberCode: owner.memberCode, serverCode });
    if (!params || !server) return false;
    const hash = createHash(params.authCertHashAlgorithm).update(certDer).digest();
    return server.authCertHashes.some((h) => h.equals(hash));
  }

  globalGroup(instance: string, groupCode: string): GlobalGroup | undefined {
    return this.sharedOf(instance)?.globalGroups.find((g) => g.groupCode === groupCode);
  }

  /** Whether `subject` (exactly: a member is not its subsystems) belongs to the global group. */
  isSubjectInGlobalGroup(subject: ClientId, instance: string, groupCode: string): boolean {
    return this.globalGroup(instance, groupCode)?.members.some((m) => sameClient(m, subject)) ?? false;
  }

  /** Certificates of the timestamping authorities every instance's configuration approves. */
  tsaCertificates(): Buffer[] {
    return this.live().flatMap((p) => p.approvedTsas.map((t) => t.cert));
  }

  /** Top and intermediate certificates of the CAs approved for signing (not authentication-only). */
  verificationCaCerts(): Buffer[] {
    return this.live().flatMap((p) => p.approvedCas.filter((ca) => !ca.authenticationOnly).flatMap((ca) => [ca.topCa, ...ca.intermediateCas].map((c) => c.cert)));
  }

  /** The approved CA certificate (top or intermediate) that issued `certDer`, in `instance` or any. */
  caCertFor(certDer: Buffer, instance?: string): Buffer | undefined {
    const cert = new X509Certificate(certDer);
    const params = instance === undefined ? this.live() : [this.sharedOf(instance)].filter((p) => p !== undefined);
    for (const p of params) {
      const ca = indexOf(p).caCerts.find((c) => cert.checkIssued(c.x509));
      if (ca) return ca.der;
    }
    return undefined;
  }

  /**
   * `certDer` and its issuers up to a self-signed one, among `instance`'s approved CA certificates
   * (the reference's getCertChain); undefined when no approved CA issued it.
   */
  certChain(instance: string, certDer: Buffer): Buffer[] | undefined {
    const chain = [certDer];
    for (let ca = this.caCertFor(certDer, instance); ca && !chain.some((c) => c.equals(ca!)); ca = this.caCertFor(ca, instance)) chain.push(ca);
    return chain.length < 2 ? undefined : chain;
  }

  /** The OCSP responders the configuration lists for the CA certificate `caCert`, of one instance or all. */
  ocspResponders(caCert: Buffer, instance?: string): OcspResponder[] {
    const params = instance === undefined ? this.live() : [this.sharedOf(instance)].filter((p) => p !== undefined);
    return params.flatMap((p) => p.approvedCas.flatMap((ca) => [ca.topCa, ...ca.intermediateCas]).filter((c) => c.cert.equals(caCert)).flatMap((c) => c.ocsp)).filter((o) => o.url.trim() !== '');
  }

  /**
   * Responder URLs for certificates `caCert` issued, ordered by `strategy` once our configuration
   * is version 6 (before it, cost types do not exist and the listed order stands).
   */
  ocspResponderUrls(caCert: Buffer, strategy: OcspPrioritization = 'NONE'): string[] {
    const responders = this.ocspResponders(caCert);
    if (this.version < VERSION_WITH_COST_TYPE) return responders.map((o) => o.url.trim());
    return prioritize(responders, strategy).map((o) => o.url.trim());
  }

  /** Whether `certDer` is an OCSP responder certificate the configuration lists for `caCert`. */
  isOcspResponderCert(caCert: Buffer, certDer: Buffer): boolean {
    return this.ocspResponders(caCert).some((o) => o.cert?.equals(certDer));
  }

  /** Every OCSP responder certificate of every instance. */
  ocspResponderCertificates(): Buffer[] {
    return this.live().flatMap((p) => p.approvedCas.flatMap((ca) => [ca.topCa, ...ca.intermediateCas]).flatMap((c) => c.ocsp.flatMap((o) => (o.cert ? [o.cert] : []))));
  }
}

const COST_ORDER: Record<'FREE_FIRST' | 'PAID_FIRST', Record<CostType, number>> = {
  FREE_FIRST: { FREE: 0, PAID: 1, UNDEFINED: 2 },
  PAID_FIRST: { PAID: 0, FREE: 1, UNDEFINED: 2 },
};

/** The reference's CostTypePrioritizer: filter or stable-sort by cost type; no cost type sorts last. */
function prioritize(responders: readonly OcspResponder[], strategy: OcspPrioritization): OcspResponder[] {
  switch (strategy) {
    case 'ONLY_FREE':
      return responders.filter((o) => o.costType === 'FREE');
    case 'ONLY_PAID':
      return responders.filter((o) => o.costType === 'PAID');
    case 'FREE_FIRST':
    case 'PAID_FIRST': {
      const order = COST_ORDER[strategy];
      return [...responders].sort((a, b) => order[a.costType ?? 'UNDEFINED'] - order[b.costType ?? 'UNDEFINED']);
    }
    default:
      return [...responders];
  }
}

/** Maps over one instance's parameters, built on first use (the reference's SharedParametersCache). */
interface ParametersIndex {
  readonly byId: ReadonlyMap<string, SecurityServer>;
  /** A server's owner and its clients, each to the servers they are registered at. */
  readonly byClient: ReadonlyMap<string, SecurityServer[]>;
  readonly byAuthCert: ReadonlyMap<string, SecurityServer>;
  readonly caCerts: readonly { readonly der: Buffer; readonly x509: X509Certificate }[];
}

const indexes = new WeakMap<SharedParameters, ParametersIndex>();

function indexOf(params: SharedParameters): ParametersIndex {
  let index = indexes.get(params);
  if (index) return index;
  const byId = new Map<string, SecurityServer>();
  const byClient = new Map<string, SecurityServer[]>();
  const byAuthCert = new Map<string, SecurityServer>();
  for (const server of params.securityServers) {
    byId.set(formatSecurityServerId({ ...server.owner, serverCode: server.serverCode }), server);
    for (const client of [server.owner, ...server.clients]) {
      const list = byClient.get(formatClientId(client)) ?? [];
      if (!list.includes(server)) list.push(server);
      byClient.set(formatClientId(client), list);
    }
    for (const hash of server.authCertHashes) byAuthCert.set(hash.toString('base64'), server);
  }
  // Parsed only when a lookup needs them: most callers never ask for a CA by issuer.
  let caCerts: ParametersIndex['caCerts'] | undefined;
  index = {
    byId,
    byClient,
    byAuthCert,
    get caCerts() {
      return (caCerts ??= params.approvedCas.flatMap((ca) => [ca.topCa, ...ca.intermediateCas]).map((c) => ({ der: c.cert, x509: new X509Certificate(c.cert) })));
    },
  };
  indexes.set(params, index);
  return index;
}

/**
 * Loads a configuration directory as the reference writes it. Parts of other instances that cannot
 * be read are left out and listed in `skipped`; our own parts must be readable.
 * @throws MalformedGlobalConf (no instance identifier, our own shared parameters missing, or one of
 *   our own parts unreadable). OutdatedGlobalConf is not thrown here: callers decide when to check
 *   expiry (`checkUpToDate`)
 */
export function loadGlobalConf(dir: string, options: { clock?: () => Date } = {}): GlobalConf {
  const read = readConfigurationDirectory(dir);
  const own = read.instanceIdentifier;
  const ownFolder = join(dir, instanceFolder(own));
  const ownFailure = read.skipped.find((s) => s.file === join(ownFolder, SHARED_PARAMETERS_FILE) || s.file === join(ownFolder, PRIVATE_PARAMETERS_FILE));
  if (ownFailure) throw ownFailure.error;
  if (!read.shared.has(own)) throw new XrdError('MalformedGlobalConf', { file: join(ownFolder, SHARED_PARAMETERS_FILE), reason: 'missing for our own instance' });
  const { extensions, skipped } = readExtensions(ownFolder);
  return new GlobalConf(own, read.shared, read.private.get(own), { skipped: [...read.skipped, ...skipped], clock: options.clock, extensions });
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
  const files = [join(dir, INSTANCE_IDENTIFIER_FILE)];
  if (existsSync(dir)) {
    for (const name of readdirSync(dir)) {
      for (const file of [SHARED_PARAMETERS_FILE, PRIVATE_PARAMETERS_FILE]) files.push(join(dir, name, file), join(dir, name, `${file}${METADATA_SUFFIX}`));
      for (const file of Object.values(EXTENSION_FILES)) files.push(join(dir, name, file));
    }
  }
  return files.map((f) => (existsSync(f) ? `${f}@${statSync(f).mtimeMs}` : '')).join('|');
}
