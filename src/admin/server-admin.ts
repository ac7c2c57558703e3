/**
 * What a security server's administrator does (MEMBER_01 and the UC SS use cases behind it):
 * initialise the server, choose timestamping services, manage tokens, keys, CSRs and certificates
 * (through the signer, which alone touches the HSM), register the authentication certificate with the
 * central server, and set how clients' information systems connect. The CLI and the admin REST API
 * both call this class, so they cannot drift apart.
 *
 * State lives where the running parts read it: keys and certificates in the signer, everything else
 * in the server configuration's store (the proxy sees a change within a second). Every change is
 * recorded there with who made it: `as(actor)` gives the API a view acting for one API key or one
 * logged-in user; the CLI acts as the operating-system user that runs it.
 */
import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { toXrdError, XrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import { MANAGEMENT_REQUESTS, buildAuthCertRegRequest, buildManagementRequest, sendManagementRequest, type ManagementRequestBody, type ManagementRequestSigner, type MemberSigning } from '../protocol/management-request.ts';
import { addClient as addClientTo, addTlsCertificate as addTlsCertificateTo, checkOwnerChange, deleteTlsCertificate as deleteTlsCertificateFrom, ownerOf, setConnectionType as changeConnectionType, tlsCertificateHash, deleteClient as deleteClientFrom, disableClient as disableClientIn, enableClient as enableClientIn, registerClient as registerClientIn, unregisterClient as unregisterClientIn, updateClientStatuses } from '../serverconf/changes.ts';
import { formatClientId, formatSecurityServerId, identifierPartProblem, sameClientId, type ClientId } from '../protocol/identifiers.ts';
import { type ClientStatus, type ConfiguredTsa, type ConnectionType, type LocalClient, type ServerConf } from '../serverconf/model.ts';
import { openServerConfStore, type Actor, type ServerConfStore } from '../serverconf/store.ts';
import { ServicesAdmin, documentReader, parseApiClientId, type DescriptionReader } from './services-admin.ts';
import { SystemAdmin, internalTls } from './system-admin.ts';
import { BackupsAdmin } from './backups-admin.ts';
import { ApiKeysAdmin } from './api-keys-admin.ts';
import { SignerConnection, waitForOcspResponses } from '../signerapi/signer-client.ts';
import type { CertView, KeyView, Operations, TokenView } from '../signerapi/operations.ts';
import { certSha1 } from '../trust/ocsp-cache.ts';
import { parseOcspResponse } from '../trust/ocsp.ts';

export type { FileDownload } from './system-admin.ts';

export interface ServerAdminOptions {
  /** The proxy's data directory: the server configuration's store lives there (serverconf.db), unless `databaseUrl` says PostgreSQL. */
  readonly proxyDataDir: string;
  /**
   * The PostgreSQL database (postgres://…) the server configuration is kept in — the proxy's
   * `XRD_DATABASE_URL`, which the CLI and the admin API read from their environment too; SQLite in
   * `proxyDataDir` when left out.
   */
  readonly databaseUrl?: string;
  readonly signerSocket: string;
  readonly globalConf: () => GlobalConf;
  readonly logger: Logger;
  /** The signer's data directory and devices.ini, for backups (keyconf.sqlite is copied from there). */
  readonly signerDataDir?: string;
  readonly devicesIni?: string;
  /**
   * This server's own client proxy, which management requests other than authCertReg go through
   * (the reference's proxy-ui-api.security-server-url); default https://127.0.0.1:8443, reached
   * with the internal TLS key, which the client proxy accepts for any client (a local connection).
   */
  readonly clientProxyUrl?: string;
  /**
   * The configuration anchor the signer downloads global configuration from (`xrd daemon start
   * --anchor`): shown, downloaded and replaced here; the signer reads it again at its next download.
   */
  readonly anchorFile?: string;
  /** The folder the signer downloads global configuration into: its download status is there (diagnostics). */
  readonly globalConfDir?: string;
  /** Fetches and reads WSDL and OpenAPI documents for service descriptions. */
  readonly descriptionReader?: DescriptionReader;
}

/** The reference's initialisation status (GET /initialization/status). */
export interface InitializationStatus {
  readonly anchorImported: boolean;
  readonly serverCodeInitialized: boolean;
  readonly serverOwnerInitialized: boolean;
  readonly softwareTokenInitStatus: 'INITIALIZED' | 'NOT_INITIALIZED' | 'UNKNOWN';
  readonly serverId?: string;
}

export interface InitializeRequest {
  readonly ownerMemberClass: string;
  readonly ownerMemberCode: string;
  readonly serverCode: string;
  /** Initialises the one uninitialised token with this PIN and logs it in (the reference's software token PIN). */
  readonly softwareTokenPin?: string;
  /** Initialise even though the owner is not (yet) a member in global configuration. */
  readonly ignoreWarnings?: boolean;
}

export interface ClientView {
  readonly id: string;
  readonly connectionType: ConnectionType;
  /** Whether global configuration lists this client at this server (or it is the owner of a registered server). */
  readonly registered: boolean;
  /** The reference's client state: SAVED, REGISTRATION_IN_PROGRESS, REGISTERED, … */
  readonly status: ClientStatus;
  readonly tlsCertificates: TlsCertificateView[];
  /** Whether the client is this server's owner member (the reference's `owner`). */
  readonly owner: boolean;
  /** The member's name in global configuration (the reference's `member_name`), when it lists the member. */
  readonly memberName?: string;
}

export interface TlsCertificateView {
  /** SHA-256 of the DER, upper-case hex, as the reference shows it. */
  readonly hash: string;
  readonly subject: string;
  readonly issuer: string;
  readonly notAfter: string;
}

/**
 * The reference's certificate OCSP status (TokenCertificate.ocsp_status): DISABLED for an inactive
 * certificate, EXPIRED past its validity, for a registered one the cached OCSP response's status
 * (OCSP_RESPONSE_UNKNOWN when there is none yet), otherwise none.
 */
export type OcspStatus = 'DISABLED' | 'EXPIRED' | 'OCSP_RESPONSE_GOOD' | 'OCSP_RESPONSE_REVOKED' | 'OCSP_RESPONSE_UNKNOWN';
/** The signer's certificate view with its OCSP status, as the API shows it. */
export type CertificateView = CertView & { readonly ocspStatus: OcspStatus | null };
export type KeyWithCertsView = Omit<KeyView, 'certs'> & { readonly certs: CertificateView[] };
export type TokenWithKeysView = Omit<TokenView, 'keys'> & { readonly keys?: KeyWithCertsView[] };

/** A stored CSR as a file to download (GET /keys/{id}/csrs/{csr_id}). */
export interface CsrFile {
  readonly data: Buffer;
  readonly format: 'PEM' | 'DER';
  /** The reference's name: `sign_csr_<yyyyMMdd>_member_<INSTANCE>_<CLASS>_<CODE>.pem`, `auth_csr_…_securityserver_…`. */
  readonly fileName: string;
}

export interface CsrRequest {
  readonly usage: 'SIGNING' | 'AUTHENTICATION';
  /** Signing CSRs: the member (the owner when absent). */
  readonly memberId?: string;
  /** Extra or replacing DN fields, `C=FI, O=Org`. */
  readonly subject?: string;
  readonly format?: 'PEM' | 'DER';
}

/** The operating-system user running this process: who the CLI's changes are recorded as. */
export function osUserActor(): Actor {
  let name: string;
  try {
    name = userInfo().username;
  } catch {
    name = `uid ${process.getuid?.() ?? '?'}`;
  }
  return { kind: 'os-user', name };
}

/** The reference's default proxy-ui-api.security-server-url: the client proxy's HTTPS port. */
const DEFAULT_CLIENT_PROXY_URL = 'https://127.0.0.1:8443';

export class ServerAdmin {
  readonly signer: SignerConnection;
  /** Opened on first use: `xrd` commands that never touch the configuration need no proxy directory. */
  private readonly shared: { store?: Promise<ServerConfStore> };

  constructor(
    private readonly options: ServerAdminOptions,
    private readonly actor: Actor = osUserActor(),
    shared?: { signer: SignerConnection; store: { store?: Promise<ServerConfStore> } },
  ) {
    this.signer = shared?.signer ?? new SignerConnection(options.signerSocket, { timeoutMs: 120_000 });
    this.shared = shared?.store ?? {};
  }

  /** Service descriptions, services, endpoints, access rights and local groups (services-admin.ts). */
  get services(): ServicesAdmin {
    return new ServicesAdmin(
      { read: () => this.serverConf(), change: (action, detail, change) => this.changeInitialized(action, detail, change), globalConf: () => this.globalConfOrUndefined() },
      this.options.descriptionReader ?? documentReader(() => internalTls(this.options.proxyDataDir)),
    );
  }

  /** The configuration anchor, the internal TLS certificate and diagnostics (system-admin.ts). */
  get system(): SystemAdmin {
    const { proxyDataDir, anchorFile, globalConfDir } = this.options;
    return new SystemAdmin({ proxyDataDir, anchorFile, globalConfDir, signer: this.signer, serverConf: () => this.serverConfOrUndefined(), requireGlobalConf: () => this.requireGlobalConf(), audit: this.audit });
  }

  /** Backups: list, take, download, upload, delete, restore (backups-admin.ts). */
  get backups(): BackupsAdmin {
    const { proxyDataDir, databaseUrl, signerDataDir, devicesIni, signerSocket, logger } = this.options;
    return new BackupsAdmin({ proxyDataDir, databaseUrl, signerDataDir, devicesIni, signerSocket, logger, actor: this.actor, audit: this.audit });
  }

  /** The admin API's keys (api-keys-admin.ts). */
  get apiKeys(): ApiKeysAdmin {
    return new ApiKeysAdmin({ proxyDataDir: this.options.proxyDataDir, audit: this.audit });
  }

  /** The same administration acting for `actor` (an API key, a logged-in user): its changes are audited under that name. */
  as(actor: Actor): ServerAdmin {
    return new ServerAdmin(this.options, actor, { signer: this.signer, store: this.shared });
  }

  async close(): Promise<void> {
    this.signer.close();
    const store = this.shared.store;
    this.shared.store = undefined;
    await store?.then((s) => s.close(), () => undefined);
  }

  // --- Initialisation (UC SS_01–03) -------------------------------------------------------------

  async initializationStatus(): Promise<InitializationStatus> {
    const conf = await this.serverConfOrUndefined();
    const tokens = await this.signer.call('listTokens', {}).catch(() => undefined);
    const blank = tokens?.filter((t) => t.available && t.status === 'NOT_INITIALIZED') ?? [];
    return {
      anchorImported: this.globalConfOrUndefined() !== undefined,
      serverCodeInitialized: conf !== undefined,
      serverOwnerInitialized: conf !== undefined,
      softwareTokenInitStatus: !tokens ? 'UNKNOWN' : tokens.some((t) => t.available && t.status !== 'NOT_INITIALIZED') || blank.length === 0 ? 'INITIALIZED' : 'NOT_INITIALIZED',
      serverId: conf && formatSecurityServerId(conf.serverId),
    };
  }

  /**
   * Makes this server `INSTANCE/CLASS/CODE/SERVERCODE`, with its owner as its first client, and
   * initialises and logs in the token when a PIN is given and one token is blank.
   * @throws ServerAlreadyInitialized, GlobalConfNotAvailable, InvalidIdentifier, WarningsDetected, PinInvalid
   */
  async initialize(r: InitializeRequest): Promise<InitializationStatus> {
    await this.refuseIfInitialized();
    const global = this.requireGlobalConf();
    for (const [name, value] of Object.entries({ owner_member_class: r.ownerMemberClass, owner_member_code: r.ownerMemberCode, security_server_code: r.serverCode })) {
      const problem = typeof value === 'string' ? identifierPartProblem(value) : 'is missing';
      if (problem) throw new XrdError('InvalidIdentifier', { value: String(value), reason: `${name} ${problem}` });
    }
    const owner: ClientId = { instance: global.instanceIdentifier, memberClass: r.ownerMemberClass, memberCode: r.ownerMemberCode };
    // The reference's warnings (InitializationService): an owner global configuration does not
    // know, a server id it lists already. The administrator may go on anyway (ignore_warnings).
    const serverId = { ...owner, serverCode: r.serverCode };
    const warnings = [
      ...(global.member(owner) ? [] : [{ code: 'init_unregistered_member', metadata: [formatClientId(owner)] }]),
      ...(global.securityServer(serverId) ? [{ code: 'init_server_id_exists', metadata: [formatSecurityServerId(serverId)] }] : []),
    ];
    if (warnings.length && !r.ignoreWarnings) {
      throw new XrdError('WarningsDetected', { warnings: warnings.map((w) => `${w.code}: ${w.metadata[0]}`).join(', '), warningsJson: JSON.stringify(warnings), referenceCode: 'warnings_detected' });
    }
    if (r.softwareTokenPin !== undefined) await this.initializeBlankToken(r.softwareTokenPin, r.serverCode);
    await this.changeServerConf('INIT_SERVER_CONFIGURATION', { ownerMemberClass: r.ownerMemberClass, ownerMemberCode: r.ownerMemberCode, serverCode: r.serverCode }, (current) => {
      // Checked again in the store's transaction: another initialisation may have finished meanwhile.
      if (current) throw new XrdError('ServerAlreadyInitialized', { serverId: formatSecurityServerId(current.serverId) });
      return {
        serverId: { instance: owner.instance, memberClass: owner.memberClass, memberCode: owner.memberCode, serverCode: r.serverCode },
        clients: [{ id: owner, status: 'SAVED', connectionType: 'HTTPS', isCerts: [], serviceDescriptions: [], endpoints: [], accessRights: [], localGroups: [] }],
        timestampingServices: [],
      };
    });
    this.options.logger.info({ serverId: `${formatClientId(owner)}/${r.serverCode}` }, 'security server initialised');
    return this.initializationStatus();
  }

  private async refuseIfInitialized(): Promise<void> {
    const conf = await this.serverConfOrUndefined();
    if (conf) throw new XrdError('ServerAlreadyInitialized', { serverId: formatSecurityServerId(conf.serverId) });
  }

  private async initializeBlankToken(pin: string, label: string): Promise<void> {
    const tokens = await this.signer.call('listTokens', {});
    // A token already initialised (xrd token init) is the server's: the PIN is not needed. SoftHSM
    // always offers one more blank slot, which must not become a second token.
    if (tokens.some((t) => t.available && t.status !== 'NOT_INITIALIZED')) return;
    const blank = tokens.filter((t) => t.available && t.status === 'NOT_INITIALIZED');
    if (blank.length === 0) return;
    // The SO role has no use in X-Road; its PIN is random and not kept (xrd token init lets one choose it).
    const token = await this.signer.call('initToken', { label, soPin: randomBytes(16).toString('hex'), userPin: pin });
    await this.signer.call('activateToken', { token: token.tokenId, pin });
  }

  // --- Timestamping services (UC SS_07, SS_08) --------------------------------------------------

  approvedTimestampingServices(): ConfiguredTsa[] {
    return this.requireGlobalConf().own.approvedTsas.map(({ name, url }) => ({ name, url }));
  }

  async timestampingServices(): Promise<readonly ConfiguredTsa[]> {
    return (await this.serverConf()).timestampingServices;
  }

  /** @throws TimestampingServiceNotApproved, TimestampingServiceExists, ServerNotInitialized */
  async addTimestampingService(tsa: ConfiguredTsa): Promise<ConfiguredTsa> {
    const approved = this.approvedTimestampingServices().find((a) => a.url === tsa.url && a.name === tsa.name);
    if (!approved) throw new XrdError('TimestampingServiceNotApproved', { name: String(tsa.name), url: String(tsa.url) });
    await this.changeInitialized('ADD_TSP', { name: tsa.name, url: tsa.url }, (conf) => {
      if (conf.timestampingServices.some((t) => t.url === tsa.url)) throw new XrdError('TimestampingServiceExists', { url: tsa.url });
      return { ...conf, timestampingServices: [...conf.timestampingServices, approved] };
    });
    return approved;
  }

  /** @throws TimestampingServiceNotFound, ServerNotInitialized */
  async deleteTimestampingService(tsa: ConfiguredTsa): Promise<void> {
    await this.changeInitialized('DELETE_TSP', { url: tsa.url }, (conf) => {
      if (!conf.timestampingServices.some((t) => t.url === tsa.url)) throw new XrdError('TimestampingServiceNotFound', { url: String(tsa.url) });
      return { ...conf, timestampingServices: conf.timestampingServices.filter((t) => t.url !== tsa.url) };
    });
  }

  // --- Tokens, keys, CSRs, certificates (UC SS_13–SS_33): the signer does the work -----------------

  /** The tokens with their keys (the signer lists them apart), as the reference's GET /tokens. */
  async tokens(): Promise<TokenWithKeysView[]> {
    const [tokens, keys] = await Promise.all([this.signer.call('listTokens', {}), this.signer.call('listKeys', {})]);
    const withStatus = await this.ocspStatuses(keys);
    return tokens.map((t) => ({ ...t, keys: keys.filter((k) => k.tokenId === t.tokenId).map(withStatus) }));
  }

  async token(id: string): Promise<TokenWithKeysView> {
    const token = await this.signer.call('getToken', { token: id });
    const withStatus = await this.ocspStatuses(token.keys ?? []);
    return { ...token, keys: token.keys?.map(withStatus) };
  }

  /** For `keys`, a function that gives a key its certificates' OCSP statuses (one signer call for all). */
  private async ocspStatuses(keys: readonly KeyView[]): Promise<(key: KeyView) => KeyWithCertsView> {
    const registered = keys.flatMap((k) => k.certs).filter((c) => c.active && c.status === 'registered');
    const hashes = registered.map((c) => certSha1(Buffer.from(c.cert, 'base64')));
    const { responses } = hashes.length ? await this.signer.call('getOcspResponses', { certHashes: hashes }) : { responses: [] };
    const cached = new Map(registered.map((c, i) => [c.hash, responses[i] ?? null]));
    const now = Date.now();
    const statusOf = (c: CertView): OcspStatus | null => {
      if (!c.active) return 'DISABLED';
      if (Date.parse(c.notAfter) < now) return 'EXPIRED';
      if (c.status !== 'registered') return null;
      const der = cached.get(c.hash);
      if (!der) return 'OCSP_RESPONSE_UNKNOWN';
      try {
        const status = parseOcspResponse(Buffer.from(der, 'base64')).responses[0]?.certStatus.status;
        return status === 'good' ? 'OCSP_RESPONSE_GOOD' : status === 'revoked' ? 'OCSP_RESPONSE_REVOKED' : 'OCSP_RESPONSE_UNKNOWN';
      } catch {
        // A response the signer keeps but that no longer parses says nothing about the certificate.
        return 'OCSP_RESPONSE_UNKNOWN';
      }
    };
    return (key) => ({ ...key, certs: key.certs.map((c) => ({ ...c, ocspStatus: statusOf(c) })) });
  }

  renameToken(id: string, name: string): Promise<TokenView> {
    return this.signerChange('RENAME_TOKEN', { tokenId: id, name }, () => this.signer.call('setTokenFriendlyName', { token: id, friendlyName: name }));
  }

  /** The PIN goes to the signer and nowhere else (the audit row names the token, never the PIN). */
  login(id: string, pin: string): Promise<TokenView> {
    return this.signerChange('LOGIN_TOKEN', { tokenId: id }, () => this.signer.call('activateToken', { token: id, pin }));
  }

  logout(id: string): Promise<TokenView> {
    return this.signerChange('LOGOUT_TOKEN', { tokenId: id }, () => this.signer.call('deactivateToken', { token: id }));
  }

  changePin(id: string, oldPin: string, newPin: string): Promise<TokenView> {
    return this.signerChange('CHANGE_PIN', { tokenId: id }, () => this.signer.call('changePin', { token: id, oldPin, newPin }));
  }

  generateKey(tokenId: string, r: { name?: string; algorithm?: 'RSA' | 'EC'; usage?: 'SIGNING' | 'AUTHENTICATION' }): Promise<KeyView> {
    const algorithm = r.algorithm ?? 'RSA';
    return this.signerChange('GENERATE_KEY', { tokenId, name: r.name, algorithm, usage: r.usage }, () => this.signer.call('generateKey', { token: tokenId, algorithm, usage: r.usage, friendlyName: r.name }));
  }

  /** A key and its CSR in one step; a key whose CSR cannot be made is deleted again, not left orphaned on the token. */
  async generateKeyWithCsr(tokenId: string, name: string | undefined, csr: CsrRequest): Promise<{ key: KeyView; csr: Operations['generateCsr']['res'] }> {
    const key = await this.generateKey(tokenId, { name, usage: csr.usage });
    try {
      const made = await this.generateCsr(key.keyId, csr);
      return { key: await this.key(key.keyId), csr: made };
    } catch (err) {
      await this.deleteKey(key.keyId).catch((cleanup: unknown) => this.options.logger.error({ err: cleanup, keyId: key.keyId }, 'key left on the token after its CSR failed'));
      throw err;
    }
  }

  /** @throws KeyNotFound */
  async key(id: string): Promise<KeyWithCertsView> {
    const key = await this.signerKey(id);
    return (await this.ocspStatuses([key]))(key);
  }

  /** @throws KeyNotFound */
  private async signerKey(id: string): Promise<KeyView> {
    const keys = await this.signer.call('listKeys', {});
    const key = keys.find((k) => k.keyId === id.toUpperCase());
    if (!key) throw new XrdError('KeyNotFound', { keyId: id });
    return key;
  }

  deleteKey(id: string): Promise<{ keyId: string }> {
    return this.signerChange('DELETE_KEY', { keyId: id }, () => this.signer.call('deleteKey', { keyId: id }));
  }

  /**
   * A CSR for the key: signing CSRs name a member (the owner by default), authentication CSRs this
   * server. `subject` adds or replaces DN fields (`C=FI, O=Org`).
   */
  async generateCsr(keyId: string, r: CsrRequest): Promise<Operations['generateCsr']['res']> {
    const conf = await this.serverConf();
    const memberId = r.usage === 'SIGNING' ? (r.memberId ?? formatClientId(ownerOf(conf))) : undefined;
    return this.signerChange('GENERATE_CSR', { keyId, usage: r.usage, memberId }, () =>
      this.signer.call('generateCsr', { keyId, usage: r.usage, memberId, serverId: r.usage === 'AUTHENTICATION' ? formatSecurityServerId(conf.serverId) : undefined, subject: r.subject, format: r.format ?? 'PEM' }),
    );
  }

  /**
   * A CSR made earlier for the key, again, as a file (the reference's downloadCsr).
   * @throws KeyNotFound, CsrNotFound
   */
  async csrFile(keyId: string, csrId: string, format: 'PEM' | 'DER'): Promise<CsrFile> {
    const key = await this.signerKey(keyId);
    if (!key.csrs.some((c) => c.csrId === csrId)) throw new XrdError('CsrNotFound', { csrId });
    const csr = await this.signer.call('getCsr', { csrId, format });
    const date = new Date().toISOString().slice(0, 10).replaceAll('-', '');
    const subject = csr.usage === 'AUTHENTICATION' ? `securityserver_${formatSecurityServerId((await this.serverConf()).serverId).replaceAll('/', '_')}` : `member_${(csr.memberId ?? '').replaceAll('/', '_')}`;
    return {
      data: format === 'PEM' ? Buffer.from(csr.csr, 'latin1') : Buffer.from(csr.csr, 'base64'),
      format,
      fileName: `${csr.usage === 'AUTHENTICATION' ? 'auth' : 'sign'}_csr_${date}_${subject}.${format.toLowerCase()}`,
    };
  }

  deleteCsr(csrId: string): Promise<{ csrId: string }> {
    return this.signerChange('DELETE_CSR', { csrId }, () => this.signer.call('deleteCsr', { csrId }));
  }

  /** A certificate from the approved CA (PEM or DER), matched to its key on a token. */
  importCert(cert: Buffer): Promise<CertView> {
    const text = cert.toString('latin1');
    return this.signerChange('IMPORT_CERTIFICATE', {}, () => this.signer.call('importCert', { cert: text.includes('-----BEGIN CERTIFICATE-----') ? text : cert.toString('base64') }), (c) => ({ hash: c.hash }));
  }

  /** @throws CertNotFound */
  async cert(hash: string): Promise<CertificateView> {
    const cert = await this.signerCert(hash);
    return (await this.key(cert.keyId)).certs.find((c) => c.hash === cert.hash)!;
  }

  /** @throws CertNotFound */
  private async signerCert(hash: string): Promise<CertView> {
    const cert = (await this.signer.call('listCerts', {})).find((c) => c.hash.toLowerCase() === hash.toLowerCase());
    if (!cert) throw new XrdError('CertNotFound', { hash });
    return cert;
  }

  deleteCert(hash: string): Promise<{ hash: string }> {
    return this.signerChange('DELETE_CERTIFICATE', { hash }, () => this.signer.call('deleteCert', { hash }));
  }

  activateCert(hash: string): Promise<CertView> {
    return this.signerChange('ACTIVATE_CERTIFICATE', { hash }, () => this.signer.call('activateCert', { hash }));
  }

  disableCert(hash: string): Promise<CertView> {
    return this.signerChange('DISABLE_CERTIFICATE', { hash }, () => this.signer.call('disableCert', { hash }));
  }

  /**
   * UC SS_34: sends the authentication certificate registration request to the central server's
   * management service, signed with the authentication key and the owner's signing key, and moves
   * the certificate to 'registration in progress'. The signer moves it on to 'registered' when
   * global configuration lists it.
   * @throws CertNotFound, CertStateInvalid, ServerNotInitialized, GlobalConfNotAvailable, UnknownMember, ManagementRequestFailed
   */
  async registerAuthCert(hash: string, address: string): Promise<{ requestId: string; cert: CertView }> {
    const conf = await this.serverConf();
    const global = this.requireGlobalConf();
    const cert = await this.signerCert(hash);
    const key = await this.signerKey(cert.keyId);
    if (key.usage !== 'AUTHENTICATION') throw new XrdError('CertStateInvalid', { hash: cert.hash, reason: 'only an authentication certificate is registered this way' });
    if (cert.status !== 'saved' && cert.status !== 'global error') throw new XrdError('CertStateInvalid', { hash: cert.hash, reason: `its state is '${cert.status}'` });
    if (typeof address !== 'string' || !/^[A-Za-z0-9.:[\]-]+$/.test(address)) throw new XrdError('InvalidIdentifier', { value: String(address), reason: 'address must be a host name or IP address' });
    const management = global.privateParams?.managementService;
    if (!management?.managementRequestServiceProviderId) throw new XrdError('GlobalConfNotAvailable', { reason: 'global configuration names no management service' });

    const owner = ownerOf(conf);
    const ownerSigning = await this.signer.call('memberSigningInfo', { memberId: formatClientId(owner) });
    const ownerCert = Buffer.from(ownerSigning.cert, 'base64');
    // A signing certificate imported a moment ago gets its response within seconds (the signer fetches on import).
    const [ownerOcsp] = await waitForOcspResponses(this.signer, [certSha1(ownerCert)], "the owner's signing certificate", 15_000);
    const signerFor = (keyId: string, algorithmId: string): ManagementRequestSigner => ({
      algorithmId,
      sign: async (digest) => Buffer.from((await this.signer.call('sign', { keyId, algorithm: algorithmId, digest: digest.toString('base64') })).signature, 'base64'),
    });
    const request = await buildAuthCertRegRequest(
      { serverId: conf.serverId, address, authCert: Buffer.from(cert.cert, 'base64'), ownerCert, ownerCertOcsp: ownerOcsp!, managementService: management.managementRequestServiceProviderId },
      { auth: signerFor(cert.keyId, authAlgorithm(key)), owner: signerFor(ownerSigning.keyId, ownerSigning.algorithm) },
    );
    // Over HTTPS the management service must present the certificate global configuration names (pr-mserv).
    const { requestId } = await sendManagementRequest(management.authCertRegServiceAddress, request, { serverCert: management.authCertRegServiceCert });
    const updated = await this.signer.call('setCertStatus', { hash: cert.hash, status: 'registration in progress' });
    await this.auditDone('REGISTER_AUTH_CERT', { hash: cert.hash, address, requestId });
    this.options.logger.info({ certHash: cert.hash, requestId, address }, 'authentication certificate registration request sent');
    return { requestId, cert: updated };
  }

  // --- Clients and their registration (the reference's ClientService; management requests, pr-mserv) ---

  /**
   * Adds a member or subsystem of this instance to the server: SAVED, or REGISTERED when global
   * configuration lists it here already. A member unknown to global configuration is refused as a
   * warning unless `ignoreWarnings`.
   * @throws InvalidMemberClass, WarningsDetected, ClientAlreadyExists, AdditionalMemberAlreadyExists, InvalidIdentifier
   */
  async addClient(r: { memberClass: string; memberCode: string; subsystemCode?: string; connectionType?: ConnectionType; ignoreWarnings?: boolean }): Promise<ClientView> {
    const global = this.requireGlobalConf();
    const id: ClientId = { instance: global.instanceIdentifier, memberClass: r.memberClass, memberCode: r.memberCode, ...(r.subsystemCode !== undefined ? { subsystem: r.subsystemCode } : {}) };
    for (const [name, value] of Object.entries({ member_class: r.memberClass, member_code: r.memberCode, subsystem_code: r.subsystemCode })) {
      const problem = value === undefined ? undefined : identifierPartProblem(value);
      if (problem) throw new XrdError('InvalidIdentifier', { value: String(value), reason: `${name} ${problem}` });
    }
    if (!global.shared.get(global.instanceIdentifier)?.memberClasses.some((c) => c.code === r.memberClass)) throw new XrdError('InvalidMemberClass', { memberClass: r.memberClass, referenceCode: 'invalid_member_class' });
    if (!global.member(id) && !r.ignoreWarnings) {
      const warnings = [{ code: 'unregistered_member', metadata: [formatClientId({ instance: id.instance, memberClass: id.memberClass, memberCode: id.memberCode })] }];
      throw new XrdError('WarningsDetected', { warnings: `unregistered_member: ${warnings[0]!.metadata[0]}`, warningsJson: JSON.stringify(warnings), referenceCode: 'warnings_detected' });
    }
    const conf = await this.changeInitialized('ADD_CLIENT', { clientId: formatClientId(id), connectionType: r.connectionType }, (c) =>
      addClientTo(c, id, { ...(r.connectionType ? { connectionType: r.connectionType } : {}), registered: global.isSecurityServerClient(id, c.serverId) }),
    );
    return this.clientView(conf, this.localClient(conf, formatClientId(id)));
  }

  /**
   * Removes a client (SAVED, DELETION_IN_PROGRESS or GLOBAL_ERROR); unless global configuration
   * lists it at another server, the rights given to it and its memberships of local groups go too.
   * @throws ClientNotFound, CannotDeleteOwner, ActionNotPossible
   */
  async deleteClient(id: string): Promise<void> {
    const global = this.globalConfOrUndefined();
    const clientId = this.localClient(await this.serverConf(), id).id;
    await this.changeInitialized('DELETE_CLIENT', { clientId: formatClientId(clientId) }, (c) =>
      deleteClientFrom(c, clientId, { registeredOnOtherServers: (global?.securityServersOf(clientId) ?? []).some((s) => s.serverCode !== c.serverId.serverCode || formatClientId(s.owner) !== formatClientId(ownerOf(c))) }),
    );
  }

  /** Sends clientReg, signed by the client's member; REGISTRATION_IN_PROGRESS until global configuration lists it. */
  registerClient(id: string): Promise<{ requestId: string }> {
    return this.clientRequest(id, 'clientReg', 'REGISTER_CLIENT', registerClientIn);
  }

  /** Sends clientDeletion; DELETION_IN_PROGRESS until the administrator deletes the client. */
  unregisterClient(id: string): Promise<{ requestId: string }> {
    return this.clientRequest(id, 'clientDeletion', 'UNREGISTER_CLIENT', unregisterClientIn);
  }

  /** Sends clientDisable (REGISTERED only); DISABLING_IN_PROGRESS until global configuration shows it disabled. */
  disableClient(id: string): Promise<{ requestId: string }> {
    return this.clientRequest(id, 'clientDisable', 'DISABLE_CLIENT', (conf, clientId) => disableClientIn(conf, clientId, this.globalConfOrUndefined()?.privateParams?.managementService?.managementRequestServiceProviderId));
  }

  /** Sends clientEnable (DISABLED only); ENABLING_IN_PROGRESS until global configuration lists it again. */
  enableClient(id: string): Promise<{ requestId: string }> {
    return this.clientRequest(id, 'clientEnable', 'ENABLE_CLIENT', enableClientIn);
  }

  /** Sends ownerChange, signed by the new owner (a REGISTERED member); the change shows when global configuration names the new owner. */
  async makeOwner(id: string): Promise<{ requestId: string }> {
    const conf = await this.serverConf();
    const client = this.localClient(conf, id);
    checkOwnerChange(conf, client.id);
    const sent = await this.sendClientProxyRequest({ type: 'ownerChange', server: conf.serverId, client: client.id }, client.id);
    await this.auditDone('OWNER_CHANGE_REQUEST', { clientId: formatClientId(client.id), requestId: sent.requestId });
    return sent;
  }

  /**
   * Sends authCertDeletion for a registered (or pending) authentication certificate, unsigned as the
   * reference sends it; the certificate goes to 'deletion in progress'.
   * @throws CertStateInvalid, ManagementRequestFailed
   */
  async unregisterAuthCert(hash: string): Promise<{ requestId: string; cert: CertView }> {
    const conf = await this.serverConf();
    const cert = await this.signerCert(hash);
    const key = await this.signerKey(cert.keyId);
    if (key.usage !== 'AUTHENTICATION') throw new XrdError('CertStateInvalid', { hash: cert.hash, reason: 'only an authentication certificate is unregistered this way' });
    if (cert.status !== 'registered' && cert.status !== 'registration in progress') throw new XrdError('CertStateInvalid', { hash: cert.hash, reason: `its state is '${cert.status}'` });
    const sent = await this.sendClientProxyRequest({ type: 'authCertDeletion', server: conf.serverId, authCert: Buffer.from(cert.cert, 'base64') }, ownerOf(conf));
    const updated = await this.signer.call('setCertStatus', { hash: cert.hash, status: 'deletion in progress' });
    await this.auditDone('UNREGISTER_AUTH_CERT', { hash: cert.hash, requestId: sent.requestId });
    return { requestId: sent.requestId, cert: updated };
  }

  /** This server's address in global configuration, and one requested and not yet shown there. */
  async serverAddress(): Promise<{ current_address: { address: string | null }; requested_change?: { address: string } }> {
    const conf = await this.serverConf();
    const current = this.requireGlobalConf().securityServer(conf.serverId)?.address ?? null;
    const [requested] = await (await this.store()).auditLog({ limit: 1, action: 'ADDRESS_CHANGE_REQUEST' });
    const pending = typeof requested?.detail.address === 'string' && requested.detail.address !== current ? requested.detail.address : undefined;
    return { current_address: { address: current }, ...(pending ? { requested_change: { address: pending } } : {}) };
  }

  /** Sends addressChange, signed by the owner. @throws SameAddressChangeRequest, ManagementRequestFailed */
  async changeServerAddress(address: string): Promise<{ requestId: string }> {
    if (typeof address !== 'string' || !/^[A-Za-z0-9.:[\]-]{1,255}$/.test(address)) throw new XrdError('InvalidIdentifier', { value: String(address), reason: 'address must be a host name or IP address' });
    const conf = await this.serverConf();
    if (this.requireGlobalConf().securityServer(conf.serverId)?.address === address) throw new XrdError('SameAddressChangeRequest', { address, referenceCode: 'same_address_change_request' });
    const sent = await this.sendClientProxyRequest({ type: 'addressChange', server: conf.serverId, address }, ownerOf(conf));
    await this.auditDone('ADDRESS_CHANGE_REQUEST', { address, requestId: sent.requestId });
    return sent;
  }

  /** Whether global configuration shows this server in maintenance mode (v5), with its message. */
  async maintenanceMode(): Promise<{ status: 'ENABLED_MAINTENANCE_MODE' | 'DISABLED_MAINTENANCE_MODE'; message?: string }> {
    const mode = this.requireGlobalConf().securityServer((await this.serverConf()).serverId)?.maintenanceMode;
    return mode ? { status: 'ENABLED_MAINTENANCE_MODE', ...(mode.message ? { message: mode.message } : {}) } : { status: 'DISABLED_MAINTENANCE_MODE' };
  }

  /** Sends maintenanceModeEnable or maintenanceModeDisable, signed by the owner. */
  async setMaintenanceMode(enable: boolean, message?: string): Promise<{ requestId: string }> {
    const conf = await this.serverConf();
    const body = enable ? { type: 'maintenanceModeEnable' as const, server: conf.serverId, ...(message ? { message } : {}) } : { type: 'maintenanceModeDisable' as const, server: conf.serverId };
    const sent = await this.sendClientProxyRequest(body, ownerOf(conf));
    await this.auditDone(enable ? 'ENABLE_MAINTENANCE_MODE' : 'DISABLE_MAINTENANCE_MODE', { message, requestId: sent.requestId });
    return sent;
  }

  /**
   * The client's state checked and moved on, the request sent, then the new state stored: a
   * request the management service refuses leaves the state as it was.
   */
  private async clientRequest(id: string, type: 'clientReg' | 'clientDeletion' | 'clientDisable' | 'clientEnable', action: string, transition: (conf: ServerConf, id: ClientId) => ServerConf): Promise<{ requestId: string }> {
    const conf = await this.serverConf();
    const client = this.localClient(conf, id);
    transition(conf, client.id);
    const sent = await this.sendClientProxyRequest({ type, server: conf.serverId, client: client.id }, client.id);
    // Checked again: the state may have moved while the request was on its way.
    await this.changeInitialized(action, { clientId: formatClientId(client.id), requestId: sent.requestId }, (c) => transition(c, client.id));
    return sent;
  }

  /**
   * A management request sent as the reference's ManagementRequestSender does: an X-Road message
   * from the owner to the management service provider, through this server's client proxy, signed
   * by the member the request type names (`MANAGEMENT_REQUESTS`).
   * @throws GlobalConfNotAvailable, ManagementRequestFailed, KeyNotFound (no signing key for the member)
   */
  private async sendClientProxyRequest(body: Exclude<ManagementRequestBody, { type: 'authCertReg' }>, client: ClientId): Promise<{ requestId: string }> {
    const global = this.requireGlobalConf();
    const managementService = global.privateParams?.managementService?.managementRequestServiceProviderId;
    if (!managementService) throw new XrdError('GlobalConfNotAvailable', { reason: 'global configuration names no management service provider' });
    const signedBy = MANAGEMENT_REQUESTS[body.type].signedBy;
    const member = signedBy === 'client' ? { instance: client.instance, memberClass: client.memberClass, memberCode: client.memberCode } : ownerOf(await this.serverConf());
    const signing = signedBy === 'none' ? undefined : await this.memberSigning(member);
    const request = await buildManagementRequest(body, { managementService }, signing);
    const internal = internalTls(this.options.proxyDataDir);
    const tls = { serverCert: Buffer.from(new X509Certificate(internal.cert).raw), clientTls: internal };
    const { requestId } = await sendManagementRequest(this.options.clientProxyUrl ?? DEFAULT_CLIENT_PROXY_URL, request, tls);
    this.options.logger.info({ type: body.type, requestId, clientId: formatClientId(client) }, 'management request sent');
    return { requestId };
  }

  /** A member's signing key with its certificate and a good OCSP response, from the signer. */
  private async memberSigning(member: ClientId): Promise<MemberSigning> {
    const info = await this.signer.call('memberSigningInfo', { memberId: formatClientId(member) });
    const cert = Buffer.from(info.cert, 'base64');
    const [ocsp] = await waitForOcspResponses(this.signer, [certSha1(cert)], `the signing certificate of ${formatClientId(member)}`, 15_000);
    return {
      cert,
      ocsp: ocsp!,
      signer: { algorithmId: info.algorithm, sign: async (digest) => Buffer.from((await this.signer.call('sign', { keyId: info.keyId, algorithm: info.algorithm, digest: digest.toString('base64') })).signature, 'base64') },
    };
  }

  /**
   * What global configuration decides, brought into this server's configuration (the reference's
   * GlobalConfChecker): client states, and a new owner after an approved ownerChange.
   */
  async syncWithGlobalConf(): Promise<void> {
    await this.syncOwner();
    await this.syncClientStatuses();
  }

  /**
   * When global configuration no longer lists this server under its owner, the member client of
   * this server under which it now lists our authentication certificate (same server code) becomes
   * the owner (GlobalConfChecker.updateOwner).
   */
  private async syncOwner(): Promise<void> {
    const global = this.globalConfOrUndefined();
    const conf = await this.serverConfOrUndefined();
    if (!global || !conf || global.securityServer(conf.serverId)) return;
    const authKeys = new Set((await this.signer.call('listKeys', {})).filter((k) => k.usage === 'AUTHENTICATION').map((k) => k.keyId));
    const authCerts = (await this.signer.call('listCerts', {})).filter((c) => authKeys.has(c.keyId));
    for (const cert of authCerts) {
      const listed = global.serverIdForAuthCert(Buffer.from(cert.cert, 'base64'));
      if (!listed || listed.serverCode !== conf.serverId.serverCode || listed.instance !== conf.serverId.instance) continue;
      const owner: ClientId = { instance: listed.instance, memberClass: listed.memberClass, memberCode: listed.memberCode };
      if (!conf.clients.some((c) => c.id.subsystem === undefined && sameClientId(c.id, owner))) continue;
      await (await this.store()).change({ kind: 'system', name: 'global configuration' }, 'UPDATE_OWNER', { from: formatSecurityServerId(conf.serverId), to: formatSecurityServerId(listed) }, (c) => ({ ...c!, serverId: listed }));
      this.options.logger.info({ serverId: formatSecurityServerId(listed) }, 'security server owner changed as global configuration shows');
      return;
    }
  }

  /**
   * Client states follow global configuration: listed here → REGISTERED, no longer listed →
   * GLOBAL_ERROR, disabling → DISABLED. Changes are stored (audited as the server's) only when a
   * state moves.
   */
  private async syncClientStatuses(): Promise<void> {
    const global = this.globalConfOrUndefined();
    const conf = await this.serverConfOrUndefined();
    if (!global || !conf) return;
    const next = updateClientStatuses(conf, (id) => global.isSecurityServerClient(id, conf.serverId));
    const moved = next.clients.filter((c, i) => c.status !== conf.clients[i]?.status);
    if (moved.length === 0) return;
    await (await this.store()).change({ kind: 'system', name: 'global configuration' }, 'UPDATE_CLIENT_STATUSES', { clients: moved.map((c) => `${formatClientId(c.id)} ${c.status}`).join(', ') }, (c) => updateClientStatuses(c!, (id) => global.isSecurityServerClient(id, c!.serverId)));
  }

  // --- Clients: connection types and information systems' TLS certificates (seed 003) -------------

  /** Member class codes of this instance, or of every instance global configuration holds (the reference's GET /member-classes). */
  memberClasses(currentInstance: boolean): string[] {
    const global = this.requireGlobalConf();
    const shared = currentInstance ? [global.shared.get(global.instanceIdentifier)] : [...global.shared.values()];
    return [...new Set(shared.flatMap((s) => s?.memberClasses.map((c) => c.code) ?? []))].sort();
  }

  async clients(): Promise<ClientView[]> {
    const conf = await this.serverConf();
    return conf.clients.map((c) => this.clientView(conf, c));
  }

  async client(id: string): Promise<ClientView> {
    const conf = await this.serverConf();
    return this.clientView(conf, this.localClient(conf, id));
  }

  /** @throws ClientNotFound, InvalidConnectionType */
  setConnectionType(id: string, connectionType: string): Promise<ClientView> {
    return this.updateClient(id, 'SET_CONNECTION_TYPE', { connectionType }, (conf, clientId) => changeConnectionType(conf, clientId, connectionType));
  }

  async tlsCertificates(id: string): Promise<TlsCertificateView[]> {
    return (await this.client(id)).tlsCertificates;
  }

  /** @throws ClientNotFound, IncorrectCertificate, TlsCertificateExists */
  async addTlsCertificate(id: string, cert: Buffer): Promise<TlsCertificateView> {
    let der: Buffer;
    try {
      der = Buffer.from(new X509Certificate(cert).raw);
    } catch (err) {
      throw new XrdError('IncorrectCertificate', { reason: `not a PEM or DER certificate: ${(err as Error).message}` }, { cause: err });
    }
    await this.updateClient(id, 'ADD_CLIENT_INTERNAL_CERT', { hash: tlsCertificateHash(der) }, (conf, clientId) => addTlsCertificateTo(conf, clientId, der));
    return tlsView(der);
  }

  /** @throws ClientNotFound, TlsCertificateNotFound */
  async deleteTlsCertificate(id: string, hash: string): Promise<void> {
    await this.updateClient(id, 'DELETE_CLIENT_INTERNAL_CERT', { hash }, (conf, clientId) => deleteTlsCertificateFrom(conf, clientId, hash));
  }

  private clientView(conf: ServerConf, c: LocalClient): ClientView {
    const global = this.globalConfOrUndefined();
    const id = formatClientId(c.id);
    const registered = global?.isSecurityServerClient(c.id, conf.serverId) ?? false;
    const owner = sameClientId(c.id, ownerOf(conf));
    const memberName = global?.member(c.id)?.name;
    return { id, connectionType: c.connectionType, registered, status: c.status, tlsCertificates: c.isCerts.map(tlsView), owner, ...(memberName !== undefined ? { memberName } : {}) };
  }

  private async updateClient(id: string, action: string, detail: Record<string, unknown>, change: (conf: ServerConf, clientId: ClientId) => ServerConf): Promise<ClientView> {
    const clientId = parseApiClientId(id);
    const conf = await this.changeInitialized(action, { clientId: formatClientId(clientId), ...detail }, (c) => change(c, clientId));
    return this.clientView(conf, this.localClient(conf, id));
  }

  /** Client ids in URLs use the reference's `INSTANCE:CLASS:CODE[:SUBSYSTEM]`; slashes work too. */
  private localClient(conf: ServerConf, id: string): LocalClient {
    const wanted = parseApiClientId(id);
    const found = conf.clients.find((c) => sameClientId(c.id, wanted));
    if (!found) throw new XrdError('ClientNotFound', { clientId: formatClientId(wanted) });
    return found;
  }

  // --- The server configuration's store and global configuration ------------------------------

  /** @throws ServerNotInitialized */
  async serverConf(): Promise<ServerConf> {
    const conf = await this.serverConfOrUndefined();
    if (!conf) throw new XrdError('ServerNotInitialized', {});
    return conf;
  }

  /** Records a change under this administration's actor (what the parts above are given). */
  // What the API keys, system and backup parts record after their change is made: never the change's outcome.
  private readonly audit = (action: string, detail: Record<string, unknown>): Promise<void> => this.auditDone(action, detail);

  private store(): Promise<ServerConfStore> {
    if (!this.shared.store) {
      mkdirSync(this.options.proxyDataDir, { recursive: true, mode: 0o700 });
      const opening = openServerConfStore(this.options.proxyDataDir, this.options.databaseUrl, { logger: this.options.logger });
      this.shared.store = opening;
      // A store that could not be opened (the database down) is opened again on the next call.
      opening.catch(() => {
        if (this.shared.store === opening) this.shared.store = undefined;
      });
    }
    return this.shared.store;
  }

  private async serverConfOrUndefined(): Promise<ServerConf | undefined> {
    return (await this.store()).read();
  }

  /**
   * A change the signer makes (tokens, keys, CSRs, certificates), written to the audit log under
   * this administration's actor as the reference audits each: done, or refused with the refusal's
   * code. The signer's own audit.log records it too, but knows only the socket it came through.
   */
  private async signerChange<T>(action: string, detail: Record<string, unknown>, work: () => Promise<T>, resultDetail?: (result: T) => Record<string, unknown>): Promise<T> {
    let result: T;
    try {
      result = await work();
    } catch (err) {
      await this.auditDone(action, { ...detail, failed: toXrdError(err).fullCode });
      throw err;
    }
    await this.auditDone(action, { ...detail, ...resultDetail?.(result) });
    return result;
  }

  /**
   * The change is made (or refused) by now — a key written, a request sent to the central server, a
   * file replaced: an audit row that cannot be written (the database gone) is logged, not the
   * change's outcome, so a caller is never told a done change failed and tempted to repeat it.
   */
  private async auditDone(action: string, detail: Record<string, unknown>): Promise<void> {
    try {
      await (await this.store()).audit(this.actor, action, detail);
    } catch (err) {
      this.options.logger.error({ err, action, detail, actor: this.actor }, 'audit row not written');
    }
  }

  /** One atomic, audited change (the CLI and the API may change the configuration at the same moment). */
  private async changeServerConf(action: string, detail: Record<string, unknown>, change: (current: ServerConf | undefined) => ServerConf): Promise<ServerConf> {
    return (await this.store()).change(this.actor, action, detail, change);
  }

  /** @throws ServerNotInitialized */
  private changeInitialized(action: string, detail: Record<string, unknown>, change: (current: ServerConf) => ServerConf): Promise<ServerConf> {
    return this.changeServerConf(action, detail, (current) => {
      if (!current) throw new XrdError('ServerNotInitialized', {});
      return change(current);
    });
  }

  private globalConfOrUndefined(): GlobalConf | undefined {
    try {
      return this.options.globalConf();
    } catch {
      return undefined;
    }
  }

  /** @throws GlobalConfNotAvailable */
  private requireGlobalConf(): GlobalConf {
    try {
      return this.options.globalConf();
    } catch (err) {
      throw new XrdError('GlobalConfNotAvailable', { reason: (err as Error).message }, { cause: err });
    }
  }
}

function tlsView(der: Buffer): TlsCertificateView {
  const x509 = new X509Certificate(der);
  return { hash: tlsCertificateHash(der), subject: x509.subject.replaceAll('\n', ', '), issuer: x509.issuer.replaceAll('\n', ', '), notAfter: new Date(x509.validTo).toISOString() };
}

/** The authentication key signs the request as it signs TLS handshakes: SHA-512 with its key type. */
function authAlgorithm(key: KeyView): string {
  return key.algorithm === 'EC' ? 'SHA512withECDSA' : 'SHA512withRSA';
}
