/**
 * A local X-Road instance's PKI and global configuration in one folder, for tests, the demo and
 * administrators trying the system (`xrd testpki …`):
 *
 *   <dir>/pki/*.key.pem, *.cert.pem   root CA, issuing CA, OCSP responder, TSA (keys 0600)
 *   <dir>/pki/state.json              ports, issued certificates and revocations
 *   <dir>/globalconf/                 the instance's configuration (approved CA, TSA, members,
 *                                     security servers with their addresses and auth cert hashes)
 *   <dir>/anchor.xml                  the configuration anchor security servers start from
 *
 * `serve` runs the OCSP responder, the TSA, the configuration source and a stand-in for the central
 * server's management service (management-service.ts) on 127.0.0.1 at the ports the configuration
 * and the anchor name. Management requests it accepts are handled as the reference's central server
 * handles requests from security servers: authCertReg, clientReg and ownerChange wait in state.json
 * as SUBMITTED until `approveManagementRequest` (`xrd testpki approve`) applies them to the
 * configuration, as a central server administrator would; the others are applied at once and kept
 * as APPROVED.
 */
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { toPem } from '../../certificates/csr.ts';
import { loadGlobalConf, type PrivateParameters, type SharedParameters } from '../../globalconf/global-conf.ts';
import { startConfigurationSource } from '../../globalconf/source.ts';
import { configurationAnchorXml, writeGlobalConf } from '../../globalconf/writer.ts';
import { XrdError } from '../../platform/errors.ts';
import { withFileLock, writeFileAtomic } from '../../platform/files.ts';
import { formatClientId, formatSecurityServerId, memberOf, parseClientId, parseSecurityServerId, sameClientId, type ClientId, type SecurityServerId } from '../../protocol/identifiers.ts';
import type { ManagementRequestBody, ManagementRequestType } from '../../protocol/management-request.ts';
import { checkAgainstRegistry } from '../../trust/management-request-verifier.ts';
import { DEFAULT_LAYOUT, layoutClient, type LocalLayout } from './local-layout.ts';
import { EKU, createAuthority, createRootCa, issueCertificate, readCsr, type Authority } from './certificate-authority.ts';
import { MANAGEMENT_SERVICE_PATH, startManagementService } from './management-service.ts';
import { startOcspResponder } from './ocsp-responder.ts';
import { startTimestampAuthority } from './timestamp-authority.ts';

export interface LocalPkiOptions {
  readonly instance?: string;
  /** Members and security servers of the configuration; the demo's by default. */
  readonly layout?: LocalLayout;
  readonly ocspPort?: number;
  readonly tsaPort?: number;
  readonly confPort?: number;
  /**
   * Where `serve` runs the management service stand-in (the reference central server's is 4001, the
   * CLI's default); without it there is none and the private parameters name no management service.
   */
  readonly managementPort?: number;
}

/** A management request the stand-in accepted, as `managementRequests()` lists it; fields as its type has them. */
export interface ManagementRequestView {
  /** Decimal, increasing, as the reference's central server numbers requests. */
  readonly id: string;
  readonly type: ManagementRequestType;
  /** INSTANCE/CLASS/CODE/SERVERCODE */
  readonly serverId: string;
  /** INSTANCE/CLASS/CODE[/SUBSYSTEM]: the client (clientReg, clientDeletion, …) or the new owner (ownerChange). */
  readonly client?: string;
  readonly address?: string;
  /** Upper-case hex SHA-256 of the certificate's DER: its id in the signer (`xrd cert list`). */
  readonly authCertHash?: string;
  readonly subsystemName?: string;
  /** maintenanceModeEnable's message for the server's consumers. */
  readonly message?: string;
  readonly receivedAt: string;
  /** SUBMITTED until approved; REVOKED when a deletion withdrew the registration before approval. */
  readonly status: 'SUBMITTED' | 'APPROVED' | 'REVOKED';
}

interface StoredManagementRequest extends ManagementRequestView {
  /** Base64 DER of the authentication certificate (authCertReg, authCertDeletion). */
  readonly authCert?: string;
  approvedAt?: string;
}

/** The reference's central server waits for an administrator only for these; it applies the others as they arrive. */
const NEEDS_APPROVAL: readonly ManagementRequestType[] = ['authCertReg', 'clientReg', 'ownerChange'];

interface State {
  instance: string;
  ocspPort: number;
  tsaPort: number;
  confPort: number;
  /** Absent: no management service (a PKI made without one, or before the stand-in existed). */
  managementPort?: number;
  issued: { serial: string; subject: string; usage: 'sign' | 'auth' | 'ca'; revokedAt?: string }[];
  managementRequests?: StoredManagementRequest[];
  /**
   * Disabled clients by security server (INSTANCE/CLASS/CODE/SERVERCODE → client ids): still
   * registered, but left out of the configuration, as the reference's central server publishes them.
   */
  disabledClients?: Record<string, string[]>;
  /** Absent in a PKI made before layouts existed: the default one. */
  layout?: LocalLayout;
}

const ROLES = ['root', 'ca', 'ocsp', 'tsa', 'conf'] as const;
type Role = (typeof ROLES)[number];

export class LocalPki {
  private constructor(
    readonly dir: string,
    private state: State,
    private readonly authorities: Record<Role, Authority>,
  ) {}

  get globalConfDir(): string {
    return join(this.dir, 'globalconf');
  }

  /** The anchor security servers of the local instance start from. */
  get anchorFile(): string {
    return join(this.dir, 'anchor.xml');
  }

  get instance(): string {
    return this.state.instance;
  }

  get layout(): LocalLayout {
    return this.state.layout ?? DEFAULT_LAYOUT;
  }

  /** Where security servers send authentication certificate registrations (private parameters name it too). */
  get managementServiceUrl(): string | undefined {
    return this.state.managementPort === undefined ? undefined : `http://127.0.0.1:${this.state.managementPort}${MANAGEMENT_SERVICE_PATH}`;
  }

  /** The management service provider the requests' SOAP header names (private parameters). */
  get managementServiceId(): ClientId {
    return { instance: this.state.instance, memberClass: 'COM', memberCode: '0000', subsystem: 'MANAGEMENT' };
  }

  /** Creates the CAs, responder and TSA certificates and the instance's configuration. */
  static init(dir: string, options: LocalPkiOptions = {}): LocalPki {
    const pkiDir = join(dir, 'pki');
    if (existsSync(join(pkiDir, 'state.json'))) throw new XrdError('InvalidConfiguration', { reason: `${dir} already holds a test PKI` });
    mkdirSync(pkiDir, { recursive: true, mode: 0o700 });
    const instance = options.instance ?? 'LOCAL';
    const root = createRootCa([['O', instance], ['CN', `${instance} Test Root CA`]]);
    const ca = createAuthority(root, [['O', instance], ['CN', `${instance} Test CA`]], { ca: true, pathLen: 0 });
    const ocsp = createAuthority(ca, [['O', instance], ['CN', `${instance} Test OCSP`]], { keyUsage: ['digitalSignature'], extendedKeyUsage: [EKU.ocspSigning] });
    const tsa = createAuthority(root, [['O', instance], ['CN', `${instance} Test TSA`]], { keyUsage: ['digitalSignature'], extendedKeyUsage: [EKU.timeStamping], criticalExtendedKeyUsage: true });
    // The anchor's certificate is only a container for the configuration signing key (pr-gconf §2.2).
    const conf = createRootCa([['O', instance], ['CN', `${instance} configuration signing`]]);
    const authorities = { root, ca, ocsp, tsa, conf };
    for (const role of ROLES) {
      writeFileSync(join(pkiDir, `${role}.cert.pem`), toPem(authorities[role].cert, 'CERTIFICATE'));
      writeFileSync(join(pkiDir, `${role}.key.pem`), authorities[role].privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    }
    const issuingCa = new X509Certificate(ca.cert);
    const state: State = {
      instance,
      ocspPort: options.ocspPort ?? 8888,
      tsaPort: options.tsaPort ?? 8899,
      confPort: options.confPort ?? 8090,
      managementPort: options.managementPort,
      ...(options.layout ? { layout: options.layout } : {}),
      issued: [{ serial: normaliseSerial(issuingCa.serialNumber), subject: issuingCa.subject.replaceAll('\n', ', '), usage: 'ca' }],
    };
    const pki = new LocalPki(dir, state, authorities);
    pki.save();
    writeGlobalConf(pki.globalConfDir, pki.initialParameters(), pki.privateParameters());
    writeFileSync(pki.anchorFile, configurationAnchorXml({ instanceIdentifier: instance, sources: [{ downloadUrl: `http://127.0.0.1:${state.confPort}/internalconf`, verificationCerts: [conf.cert] }] }));
    return pki;
  }

  static open(dir: string): LocalPki {
    const pkiDir = join(dir, 'pki');
    if (!existsSync(join(pkiDir, 'state.json'))) throw new XrdError('InvalidConfiguration', { reason: `${dir} holds no test PKI (xrd testpki init)` });
    const state = JSON.parse(readFileSync(join(pkiDir, 'state.json'), 'utf8')) as State; // no lock: written whole by rename
    const load = (role: Role): Authority => ({
      cert: Buffer.from(new X509Certificate(readFileSync(join(pkiDir, `${role}.cert.pem`))).raw),
      privateKey: createPrivateKey(readFileSync(join(pkiDir, `${role}.key.pem`))),
    });
    return new LocalPki(dir, state, { root: load('root'), ca: load('ca'), ocsp: load('ocsp'), tsa: load('tsa'), conf: load('conf') });
  }

  /**
   * Issues a sign or auth certificate for a CSR (DER). An auth certificate for `server` is also
   * registered in the configuration (its hash listed for that security server).
   * @throws IncorrectCertificate (bad CSR), InvalidIdentifier (server not in the configuration)
   */
  issue(csr: Buffer, usage: 'sign' | 'auth', server?: string): Buffer {
    const request = readCsr(csr);
    const cert =
      usage === 'sign'
        ? issueCertificate(this.authorities.ca, request.subjectName, request.spki, { keyUsage: ['nonRepudiation'] })
        : issueCertificate(this.authorities.ca, request.subjectName, request.spki, { keyUsage: ['digitalSignature', 'keyEncipherment'], extendedKeyUsage: [EKU.clientAuth, EKU.serverAuth] });
    const x509 = new X509Certificate(cert);
    this.update((state) => {
      // Under the state's lock: an approval in another process rewrites the configuration too.
      if (usage === 'auth' && server) this.registerAuthCert(parseSecurityServerId(server), cert);
      state.issued.push({ serial: normaliseSerial(x509.serialNumber), subject: x509.subject.replaceAll('\n', ', '), usage });
    });
    return cert;
  }

  revoke(cert: Buffer): void {
    const serial = normaliseSerial(new X509Certificate(cert).serialNumber);
    this.update((state) => {
      const entry = state.issued.find((i) => i.serial === serial);
      if (!entry) throw new XrdError('CertNotFound', { hash: createHash('sha256').update(cert).digest('hex') });
      entry.revokedAt = new Date().toISOString();
    });
  }

  /**
   * Changes the instance's shared parameters, as a central server administrator would (a server's
   * address, maintenance mode, another server for a member): the next download, and every process
   * reading the folder, sees the change.
   */
  changeSharedParameters(change: (shared: SharedParameters) => SharedParameters): void {
    this.update(() => {
      const conf = loadGlobalConf(this.globalConfDir);
      writeGlobalConf(this.globalConfDir, change(conf.own), conf.privateParams);
    });
  }

  /** The OCSP responder, the TSA, the configuration source and the management service (when it has a port) on 127.0.0.1, until `close`. */
  async serve(): Promise<{ ocspUrl: string; tsaUrl: string; confUrl: string; managementUrl?: string; close(): Promise<void> }> {
    const states = (serial: string) => {
      // Re-read: certificates issued or revoked by another `xrd testpki` command count at once.
      const entry = this.readState().issued.find((i) => i.serial === serial);
      if (!entry) return undefined;
      return entry.revokedAt ? { status: 'revoked' as const, revokedAt: new Date(entry.revokedAt) } : { status: 'good' as const };
    };
    const servers: Server[] = [];
    const started = async (server: Promise<Server>) => {
      try {
        servers.push(await server);
      } catch (err) {
        // One port taken: release the ones already bound, so the caller can retry or report.
        await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
        throw err;
      }
    };
    await started(
      startOcspResponder(
        {
          // The issuing CA's certificates through its delegated responder; the issuing CA itself, signed by the root.
          authorities: [
            { ca: this.authorities.ca.cert, signer: this.authorities.ocsp },
            { ca: this.authorities.root.cert, signer: this.authorities.root },
          ],
          states,
          validitySeconds: 3600,
        },
        '127.0.0.1',
        this.state.ocspPort,
      ),
    );
    await started(startTimestampAuthority({ tsa: this.authorities.tsa }, '127.0.0.1', this.state.tsaPort));
    await started(startConfigurationSource({ dir: this.globalConfDir, signingKey: this.authorities.conf.privateKey, signingCert: this.authorities.conf.cert }, '127.0.0.1', this.state.confPort));
    if (this.state.managementPort !== undefined) {
      await started(startManagementService({ globalConfDir: this.globalConfDir, accept: (request) => this.acceptManagementRequest(request) }, '127.0.0.1', this.state.managementPort));
    }
    return {
      ocspUrl: `http://127.0.0.1:${this.state.ocspPort}/`,
      tsaUrl: `http://127.0.0.1:${this.state.tsaPort}/`,
      confUrl: `http://127.0.0.1:${this.state.confPort}/internalconf`,
      managementUrl: this.managementServiceUrl,
      close: () => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined),
    };
  }

  /** Management requests the stand-in accepted, oldest first (read from disk: another process may serve them). */
  managementRequests(): ManagementRequestView[] {
    return (this.readState().managementRequests ?? []).map(view);
  }

  /**
   * Approves a SUBMITTED request (authCertReg, clientReg, ownerChange) as the reference's central
   * server does, and rewrites the configuration (security servers reading it see the change at
   * their next look): authCertReg adds the server (owner, code, address, the certificate's hash) or
   * the hash and address to it, and makes the owner a `security-server-owners` member; clientReg
   * adds the client to the server (and a new subsystem, with its name, to its member); ownerChange
   * makes the client the owner and the old owner a client.
   * @throws ManagementRequestNotFound, ManagementRequestNotPending (approved or revoked already),
   *   UnknownMember, SecurityServerNotFound (the member or server was removed meanwhile)
   */
  approveManagementRequest(id: string): ManagementRequestView {
    let approved: StoredManagementRequest | undefined;
    this.update((state) => {
      const request = state.managementRequests?.find((r) => r.id === id);
      if (!request) throw new XrdError('ManagementRequestNotFound', { id });
      if (request.status !== 'SUBMITTED') throw new XrdError('ManagementRequestNotPending', { id, status: request.status });
      this.apply(bodyOf(request), state);
      (request as { status: ManagementRequestView['status'] }).status = 'APPROVED';
      request.approvedAt = new Date().toISOString();
      approved = request;
    });
    return view(approved!);
  }

  /**
   * Keeps a verified request as SUBMITTED, or applies it at once and keeps it as APPROVED
   * (`NEEDS_APPROVAL`), after the central server handlers' checks.
   * @throws ManagementRequestExists (the same change is pending), and checkAgainstRegistry's codes
   */
  private acceptManagementRequest(body: ManagementRequestBody): string {
    let id = '';
    this.update((state) => {
      const requests = (state.managementRequests ??= []);
      const serverId = formatSecurityServerId(body.server);
      const stored = storedOf(body);
      const pending = requests.filter((r) => r.status === 'SUBMITTED' && r.serverId === serverId);
      const same = pending.find((r) =>
        body.type === 'authCertReg' ? r.type === 'authCertReg' && r.authCertHash === stored.authCertHash
        : body.type === 'clientReg' ? r.type === 'clientReg' && r.client === stored.client
        : body.type === 'ownerChange' && r.type === 'ownerChange',
      );
      if (same) throw new XrdError('ManagementRequestExists', { id: same.id });
      // A deletion of what is still waiting for registration revokes that registration (the reference's handlers).
      const registration = pending.find((r) =>
        body.type === 'clientDeletion' ? r.type === 'clientReg' && r.client === stored.client : body.type === 'authCertDeletion' && r.type === 'authCertReg' && r.authCertHash === stored.authCertHash,
      );
      const conf = loadGlobalConf(this.globalConfDir);
      checkAgainstRegistry(body, conf, { disabledClients: (state.disabledClients?.[serverId] ?? []).map(parseClientId), pendingRegistration: registration !== undefined });
      id = String(requests.reduce((max, r) => Math.max(max, Number(r.id)), 0) + 1);
      const now = new Date().toISOString();
      if (NEEDS_APPROVAL.includes(body.type)) {
        requests.push({ id, ...stored, receivedAt: now, status: 'SUBMITTED' });
        return;
      }
      if (registration) (registration as { status: ManagementRequestView['status'] }).status = 'REVOKED';
      this.apply(body, state);
      requests.push({ id, ...stored, receivedAt: now, status: 'APPROVED', approvedAt: now });
    });
    return id;
  }

  /** Changes the configuration (and the disabled clients in `state`) as the request says. */
  private apply(body: ManagementRequestBody, state: State): void {
    const conf = loadGlobalConf(this.globalConfDir);
    const own = conf.own;
    const serverKey = formatSecurityServerId(body.server);
    const server = conf.securityServer(body.server);
    const withServer = (change: (s: NonNullable<typeof server>) => NonNullable<typeof server>): SharedParameters => {
      if (!server) throw new XrdError('SecurityServerNotFound', { server: serverKey });
      return { ...own, securityServers: own.securityServers.map((s) => (s === server ? change(s) : s)) };
    };
    const disabled = (state.disabledClients ??= {});
    const setDisabled = (clients: string[]) => {
      if (clients.length) disabled[serverKey] = clients;
      else delete disabled[serverKey];
    };
    const without = (clients: readonly ClientId[], client: ClientId) => clients.filter((c) => !sameClientId(c, client));
    let shared: SharedParameters;
    switch (body.type) {
      case 'authCertReg':
        shared = this.authCertRegistered(conf, body.server, body.address ?? server?.address ?? '', body.authCert);
        break;
      case 'authCertDeletion': {
        const hash = createHash(own.authCertHashAlgorithm).update(body.authCert).digest();
        // Nothing to change when the deletion revoked a pending registration.
        shared = server ? withServer((s) => ({ ...s, authCertHashes: s.authCertHashes.filter((h) => !h.equals(hash)) })) : own;
        break;
      }
      case 'clientReg': {
        const member = conf.member(memberOf(body.client));
        if (!member) throw new XrdError('UnknownMember', { reason: `${formatClientId(memberOf(body.client))} is not a member of ${own.instanceIdentifier}` });
        const code = body.client.subsystem;
        const members =
          code === undefined ? own.members
          : own.members.map((m) =>
              m !== member ? m : {
                ...m,
                subsystems: m.subsystems.includes(code) ? m.subsystems : [...m.subsystems, code],
                ...(body.subsystemName ? { subsystemNames: { ...m.subsystemNames, [code]: body.subsystemName } } : {}),
              },
            );
        shared = { ...withServer((s) => ({ ...s, clients: [...without(s.clients, body.client), body.client] })), members };
        break;
      }
      case 'clientDeletion':
        setDisabled((disabled[serverKey] ?? []).filter((c) => c !== formatClientId(body.client)));
        shared = server ? withServer((s) => ({ ...s, clients: without(s.clients, body.client) })) : own;
        break;
      case 'clientDisable':
        setDisabled([...new Set([...(disabled[serverKey] ?? []), formatClientId(body.client)])]);
        shared = withServer((s) => ({ ...s, clients: without(s.clients, body.client) }));
        break;
      case 'clientEnable':
        setDisabled((disabled[serverKey] ?? []).filter((c) => c !== formatClientId(body.client)));
        shared = withServer((s) => ({ ...s, clients: [...without(s.clients, body.client), body.client] }));
        break;
      case 'clientRename': {
        const code = body.client.subsystem!;
        shared = { ...own, members: own.members.map((m) => (sameClientId(m.id, memberOf(body.client)) ? { ...m, subsystemNames: { ...m.subsystemNames, [code]: body.subsystemName } } : m)) };
        break;
      }
      case 'ownerChange': {
        if (!conf.member(body.client)) throw new XrdError('UnknownMember', { reason: `${formatClientId(body.client)} is not a member of ${own.instanceIdentifier}` });
        const oldOwner = memberOf(body.server);
        const changed = withServer((s) => ({ ...s, owner: body.client, clients: [...without(without(s.clients, body.client), oldOwner), oldOwner] }));
        const stillOwns = changed.securityServers.some((s) => sameClientId(s.owner, oldOwner));
        shared = { ...changed, globalGroups: withOwnerGroup(changed.globalGroups, body.client, stillOwns ? undefined : oldOwner) };
        // The disabled clients follow the server to its new identifier.
        const moved = disabled[serverKey];
        setDisabled([]);
        if (moved) disabled[formatSecurityServerId({ ...body.client, serverCode: body.server.serverCode })] = moved;
        break;
      }
      case 'addressChange':
        shared = server ? withServer((s) => ({ ...s, address: body.address })) : own;
        break;
      case 'maintenanceModeEnable':
        shared = withServer((s) => ({ ...s, maintenanceMode: body.message !== undefined ? { message: body.message } : {} }));
        break;
      case 'maintenanceModeDisable':
        shared = withServer(({ maintenanceMode: _, ...s }) => s);
        break;
    }
    // Subsystem names and maintenance mode exist from configuration version 5 (pr-gconf); publish in it once they are used.
    const needsV5 = shared.members.some((m) => m.subsystemNames && Object.keys(m.subsystemNames).length) || shared.securityServers.some((s) => s.maintenanceMode);
    const configurationVersion = needsV5 ? Math.max(shared.configurationVersion, 5) : shared.configurationVersion;
    writeGlobalConf(this.globalConfDir, { ...shared, configurationVersion }, conf.privateParams ?? this.privateParameters());
  }

  private authCertRegistered(conf: ReturnType<typeof loadGlobalConf>, serverId: SecurityServerId, address: string, cert: Buffer): SharedParameters {
    const own = conf.own;
    const owner = memberOf(serverId);
    if (!conf.member(owner)) throw new XrdError('UnknownMember', { reason: `${formatClientId(owner)} is not a member of ${own.instanceIdentifier}` });
    const hash = createHash(own.authCertHashAlgorithm).update(cert).digest();
    const existing = conf.securityServer(serverId);
    const securityServers = existing
      ? own.securityServers.map((s) => (s === existing ? { ...s, address, authCertHashes: s.authCertHashes.some((h) => h.equals(hash)) ? s.authCertHashes : [...s.authCertHashes, hash] } : s))
      : [...own.securityServers, { owner, serverCode: serverId.serverCode, address, authCertHashes: [hash], clients: [] }];
    return { ...own, securityServers, globalGroups: withOwnerGroup(own.globalGroups, owner) };
  }

  private registerAuthCert(server: SecurityServerId, cert: Buffer): void {
    const conf = loadGlobalConf(this.globalConfDir);
    const own = conf.own;
    const owner: ClientId = { instance: server.instance, memberClass: server.memberClass, memberCode: server.memberCode };
    const existing = own.securityServers.find((s) => s.serverCode === server.serverCode && s.owner.memberCode === owner.memberCode && s.owner.memberClass === owner.memberClass);
    if (!existing) throw new XrdError('InvalidIdentifier', { value: `${server.instance}/${server.memberClass}/${server.memberCode}/${server.serverCode}`, reason: 'no such security server in the local configuration' });
    const hash = createHash(own.authCertHashAlgorithm).update(cert).digest();
    const securityServers = own.securityServers.map((s) => (s === existing ? { ...s, authCertHashes: [...s.authCertHashes, hash] } : s));
    writeGlobalConf(this.globalConfDir, { ...own, securityServers }, conf.privateParams);
  }

  /** Two members with subsystems and a security server each, the CA with its responder, the TSA. */
  private initialParameters(): SharedParameters {
    const instance = this.state.instance;
    const layout = this.layout;
    const member = (code: string): ClientId => ({ instance, memberClass: layout.memberClass, memberCode: code });
    const client = (c: string): ClientId => layoutClient(instance, layout, c);
    return {
      instanceIdentifier: instance,
      configurationVersion: 3,
      authCertHashAlgorithm: 'sha256',
      approvedCas: [
        {
          name: `${instance} Test CA`,
          authenticationOnly: false,
          topCa: { cert: this.authorities.root.cert, ocsp: [{ url: `http://127.0.0.1:${this.state.ocspPort}/` }] },
          intermediateCas: [{ cert: this.authorities.ca.cert, ocsp: [{ url: `http://127.0.0.1:${this.state.ocspPort}/`, cert: this.authorities.ocsp.cert }] }],
          certificateProfileInfo: 'ee.ria.xroad.common.certificateprofile.impl.FiVRKCertificateProfileInfoProvider',
        },
      ],
      approvedTsas: [{ name: `${instance} Test TSA`, url: `http://127.0.0.1:${this.state.tsaPort}/`, cert: this.authorities.tsa.cert }],
      members: layout.members.map((m) => ({ id: member(m.code), name: m.name, subsystems: [...m.subsystems] })),
      securityServers: [
        { owner: member(layout.provider.owner), serverCode: 'ss1', address: '127.0.0.1', authCertHashes: [], clients: layout.provider.clients.map(client) },
        { owner: member(layout.consumer.owner), serverCode: 'ss2', address: '127.0.0.2', authCertHashes: [], clients: layout.consumer.clients.map(client) },
      ],
      globalGroups: [{ groupCode: 'security-server-owners', description: 'Security server owners', members: [member(layout.provider.owner), member(layout.consumer.owner)] }],
      memberClasses: [{ code: layout.memberClass, description: layout.memberClassDescription }],
      ocspFreshnessSeconds: 3600,
    };
  }

  /**
   * With a management service: the stand-in's URL, its "TLS" certificate (the configuration
   * signer's; the stand-in speaks plain HTTP on loopback) and the provider id.
   */
  private privateParameters(): PrivateParameters {
    const url = this.managementServiceUrl;
    return {
      instanceIdentifier: this.state.instance,
      ...(url ? { managementService: { authCertRegServiceAddress: url, authCertRegServiceCert: this.authorities.conf.cert, managementRequestServiceProviderId: this.managementServiceId } } : {}),
      timeStampingIntervalSeconds: 60,
    };
  }

  private get stateFile(): string {
    return join(this.dir, 'pki', 'state.json');
  }

  /** Written whole by rename, so a read sees one version or the next, never half of one. */
  private readState(): State {
    return JSON.parse(readFileSync(this.stateFile, 'utf8')) as State;
  }

  /**
   * Changes the state on disk under `state.json.lock`: read afresh, changed, written whole, so
   * neither the management service in `serve` nor `xrd testpki approve|issue|revoke` in another
   * process loses the other's change. Nothing is written when `change` throws.
   */
  private update(change: (state: State) => void): void {
    withFileLock(this.stateFile, () => {
      const state = this.readState();
      change(state);
      this.state = state;
      this.save();
    });
  }

  private save(): void {
    writeFileAtomic(this.stateFile, JSON.stringify(this.state, null, 2), 0o644);
  }
}

const SECURITY_SERVER_OWNERS = 'security-server-owners';

/** `security-server-owners` with `add` in it and `remove` (an owner of no server any more) out of it. */
function withOwnerGroup(groups: SharedParameters['globalGroups'], add: ClientId, remove?: ClientId): SharedParameters['globalGroups'] {
  const group = groups.find((g) => g.groupCode === SECURITY_SERVER_OWNERS);
  if (!group) return [...groups, { groupCode: SECURITY_SERVER_OWNERS, description: 'Security server owners', members: [add] }];
  const members = group.members.filter((m) => !(remove && sameClientId(m, remove)));
  if (!members.some((m) => sameClientId(m, add))) members.push(add);
  return groups.map((g) => (g === group ? { ...g, members } : g));
}

/** What the state keeps of a request: identifiers as text, the certificate as base64 with its hash. */
function storedOf(body: ManagementRequestBody): Omit<StoredManagementRequest, 'id' | 'receivedAt' | 'status'> {
  const cert = 'authCert' in body ? body.authCert : undefined;
  return {
    type: body.type,
    serverId: formatSecurityServerId(body.server),
    ...('client' in body ? { client: formatClientId(body.client) } : {}),
    ...('address' in body && body.address !== undefined ? { address: body.address } : {}),
    ...(cert ? { authCertHash: createHash('sha256').update(cert).digest('hex').toUpperCase(), authCert: cert.toString('base64') } : {}),
    ...('subsystemName' in body && body.subsystemName !== undefined ? { subsystemName: body.subsystemName } : {}),
    ...('message' in body && body.message !== undefined ? { message: body.message } : {}),
  };
}

/** The request body a stored request was made from (for approval). */
function bodyOf(r: StoredManagementRequest): ManagementRequestBody {
  const server = parseSecurityServerId(r.serverId);
  switch (r.type) {
    case 'authCertReg':
      return { type: r.type, server, ...(r.address !== undefined ? { address: r.address } : {}), authCert: Buffer.from(r.authCert!, 'base64') };
    case 'clientReg':
      return { type: r.type, server, client: parseClientId(r.client!), ...(r.subsystemName !== undefined ? { subsystemName: r.subsystemName } : {}) };
    case 'ownerChange':
      return { type: r.type, server, client: parseClientId(r.client!) };
    default:
      throw new XrdError('ManagementRequestNotPending', { id: r.id, status: r.status });
  }
}

function view({ authCert: _cert, approvedAt: _at, ...r }: StoredManagementRequest): ManagementRequestView {
  return r;
}

function normaliseSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+(?=.)/, '');
}
