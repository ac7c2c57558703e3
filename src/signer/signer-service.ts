/**
 * The signer's operations, one method per wire operation: tokens, keys, CSRs, certificates, signing
 * and OCSP responses. It joins the token layer (what is on the HSM) with the keyconf store (what the
 * HSM cannot hold) and the trust layer's OCSP cache, and writes admin actions to the audit log. Transport-agnostic: the socket server
 * and tests call `handle`.
 */
import { X509Certificate, randomUUID } from 'node:crypto';
import { createHistogram, performance } from 'node:perf_hooks';
import { checkCertificateUsage, parseCertificate, usageOfCertificate, type CertificateFacts } from '../certificates/certificate.ts';
import { assembleCsr, certificationRequestInfo, csrSignatureInput, defaultSubject, formatDn, parseDn, toPem, type KeyUsage } from '../certificates/csr.ts';
import type { Deadline } from '../platform/deadline.ts';
import { XrdError, toXrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import { formatClientId, memberOf, parseClientId, parseSecurityServerId } from '../protocol/identifiers.ts';
import type { HsmToken, KeySpec, TokenKey } from '../token/hsm-token.ts';
import { formatPkcs11Uri } from '../token/pkcs11-uri.ts';
import { resolveSignAlgorithm, type SignAlgorithm } from '../signerapi/algorithms.ts';
import { decodeSignRequest, encodeSignRequest, signRequestKeyId } from '../signerapi/sign-body.ts';
import type { TokenManager } from '../token/token-manager.ts';
import type { OcspCache } from '../trust/ocsp-cache.ts';
import { parseOcspResponse } from '../trust/ocsp.ts';
import { certSha1 } from '../trust/ocsp-cache.ts';
import type { AuditLog } from './audit-log.ts';
import { SignatureStats } from './signature-stats.ts';
import { CERT_STATUSES, type CertStatus } from '../signerapi/cert-states.ts';
import type { CertRecord, CsrRecord, KeyconfStore, KeyRecord } from './keyconf-store.ts';
import { ADMIN_OPERATIONS, PROTOCOL_VERSION, type CertView, type CsrView, type HealthView, type KeyView, type OcspResponseView, type OperationName, type Operations, type SigningInfo, type SocketStats, type TokenView } from '../signerapi/operations.ts';
import type { ResponderOutcome } from '../trust/ocsp-client.ts';

const CERTIFICATE_OPERATIONS: ReadonlySet<OperationName> = new Set(['importCert', 'activateCert', 'disableCert', 'setCertStatus', 'deleteCert', 'deleteKey']);

/** The sampler's interval (Node's monitorEventLoopDelay default); a 1 ms sampler woke the loop a thousand times a second. */
const LOOP_SAMPLE_MS = 10;
/** The sampler stops this long after the last request: an idle daemon sleeps. */
const LOOP_SAMPLE_IDLE_MS = 1000;

type Handler<O extends OperationName> = (req: Operations[O]['req'], deadline?: Deadline) => Promise<Operations[O]['res']> | Operations[O]['res'];

export class SignerService {
  private readonly started = Date.now();
  /**
   * Event-loop delay since start or the last reset: how far apart a LOOP_SAMPLE_MS timer's ticks
   * came, sampled while the daemon serves (until LOOP_SAMPLE_IDLE_MS without a request): signing
   * must not block the loop for the requests waiting on it. An idle loop has no delay to measure,
   * and a timer that always ran woke it a hundred times a second. Not monitorEventLoopDelay: after
   * disable() and enable() it counts the whole pause as one late tick.
   */
  private readonly loopDelay = createHistogram();
  /** The sampling timer, while sampling. */
  private loopSampling: NodeJS.Timeout | undefined;
  private lastRequestAt = 0;
  /** keyId → token, so the signing path does not touch SQLite. */
  private readonly keyTokens = new Map<string, HsmToken>();
  private readonly signatures = new SignatureStats();
  private readonly handlers: { [O in OperationName]: Handler<O> };

  constructor(
    private readonly tokens: TokenManager,
    private readonly store: KeyconfStore,
    private readonly ocsp: OcspCache,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    /** Told when certificates were imported, deleted or changed state (the OCSP refresher listens). */
    private readonly certificatesChanged: () => void = () => undefined,
    /** The daemon's sockets and their connections, for `health`. */
    private readonly connections: () => SocketStats[] = () => [],
    /** The OCSP responders' last outcomes and the refresher's next round, for `health` (the admin's diagnostics). */
    private readonly ocspResponders: () => { responders: ResponderOutcome[]; nextRefreshAt?: Date } = () => ({ responders: [] }),
  ) {
    this.handlers = {
      health: (r) => this.health(r.resetStats === true),
      listTokens: () => this.tokens.list().map((t) => this.tokenView(t)),
      getToken: async (r) => {
        const token = this.token(r.token);
        return { ...this.tokenView(token, await this.keysOf(token)), ...(token.available ? token.capabilities() : {}) };
      },
      initToken: (r) => {
        const tokenId = this.tokens.initToken(text(r, 'label'), text(r, 'soPin'), text(r, 'userPin'), r.moduleType);
        return this.tokenView(this.tokens.get(tokenId));
      },
      activateToken: (r) => {
        const token = this.token(r.token);
        token.login(text(r, 'pin'));
        return this.tokenView(token);
      },
      deactivateToken: (r) => {
        const token = this.token(r.token);
        token.logout();
        return this.tokenView(token);
      },
      changePin: (r) => {
        const token = this.token(r.token);
        token.changePin(text(r, 'oldPin'), text(r, 'newPin'));
        return this.tokenView(token);
      },
      setTokenFriendlyName: (r) => {
        const token = this.token(r.token);
        this.store.setTokenFriendlyName(token.tokenId, text(r, 'friendlyName'));
        return this.tokenView(token);
      },
      generateKey: (r) => this.generateKey(r),
      listKeys: async (r) => {
        const list = r.token ? [this.token(r.token)] : this.tokens.list();
        return (await Promise.all(list.map((t) => this.keysOf(t)))).flat();
      },
      deleteKey: async (r) => {
        const keyId = normaliseKeyId(text(r, 'keyId'));
        const token = await this.tokenOfKey(keyId);
        await token.deleteKey(keyId);
        this.store.deleteKey(keyId);
        this.keyTokens.delete(keyId);
        return { keyId };
      },
      generateCsr: (r) => this.generateCsr(r),
      getCsr: (r) => {
        const csr = this.store.getCsr(text(r, 'csrId'));
        if (!csr) throw new XrdError('CsrNotFound', { csrId: r.csrId });
        return csrAnswer(csr, r.format);
      },
      deleteCsr: (r) => {
        if (!this.store.deleteCsr(text(r, 'csrId'))) throw new XrdError('CsrNotFound', { csrId: r.csrId });
        return { csrId: r.csrId };
      },
      importCert: (r) => this.importCert(r),
      listCerts: (r) => (r.keyId ? this.store.certsOfKey(normaliseKeyId(r.keyId)) : this.store.allCerts()).map(certView),
      activateCert: (r) => this.updateCert(r.hash, { active: true }),
      disableCert: (r) => this.updateCert(r.hash, { active: false }),
      setCertStatus: (r) => {
        if (!CERT_STATUSES.includes(r.status)) {
          throw new XrdError('MalformedRequest', { reason: `status must be one of: ${CERT_STATUSES.join(', ')}` });
        }
        return this.updateCert(r.hash, { status: r.status });
      },
      deleteCert: (r) => {
        const cert = this.cert(r.hash);
        this.store.deleteCert(cert.hash);
        return { hash: cert.hash };
      },
      memberSigningInfo: (r) => this.memberSigningInfo(text(r, 'memberId')),
      authKeyInfo: (r) => this.authKeyInfo(text(r, 'serverId')),
      sign: (r, deadline) => this.sign(r, deadline),
      signBinary: (r, deadline) => this.signBinary(encodeSignRequest(r), deadline),
      verify: (r) => this.verify(r),
      getOcspResponses: (r) => ({ responses: list(r, 'certHashes').map((h) => this.ocsp.get(h)?.der.toString('base64') ?? null) }),
      setOcspResponses: (r) => {
        const hashes = list(r, 'certHashes');
        const responses = list(r, 'responses');
        if (hashes.length !== responses.length) throw new XrdError('MalformedRequest', { reason: 'certHashes and responses differ in length' });
        this.ocsp.set(hashes.map((certSha1, i) => ({ certSha1, der: base64(responses[i]!, 'responses') })));
        return { stored: hashes.length };
      },
    };
  }

  /**
   * Runs one operation. Admin operations are audited with their outcome, never with their PINs.
   * @throws XrdError with the operation's code
   */
  async handle<O extends OperationName>(op: O, req: Operations[O]['req'], deadline?: Deadline): Promise<Operations[O]['res']> {
    this.serving();
    if (req === null || typeof req !== 'object' || Array.isArray(req)) throw new XrdError('MalformedRequest', { reason: 'body must be a JSON object' });
    const handler = this.handlers[op] as Handler<O> | undefined;
    if (!handler) throw new XrdError('UnknownOperation', { op });
    if (!ADMIN_OPERATIONS.has(op)) return handler(req, deadline);
    const fields = auditFields(req);
    try {
      const res = await handler(req, deadline);
      this.audit.record(op, { ...fields, ...auditFields(res) }, {});
      if (CERTIFICATE_OPERATIONS.has(op)) this.certificatesChanged();
      return res;
    } catch (err) {
      this.audit.record(op, fields, { error: err instanceof XrdError ? err.faultCode : 'InternalError' });
      throw err;
    }
  }

  /**
   * A socket refused `op` (docs/security.md): administrative operations are audited as attempts,
   * with the socket that refused them, since a proxy asking for them is not behaving as one.
   */
  refused(op: OperationName, req: unknown, socket: string): void {
    if (ADMIN_OPERATIONS.has(op)) this.audit.record(op, { ...auditFields(req), socket }, { error: 'Signer.OperationNotAllowed' });
  }

  private health(resetStats: boolean): Operations['health']['res'] {
    const tokens = this.tokens.list().map((t) => {
      const d = t.describe();
      return { tokenId: d.tokenId, available: d.available, active: d.active, status: d.status };
    });
    const modules = this.tokens.modules.map((m) => {
      const signedOn = m.port?.signCounts?.();
      return { type: m.config.type, library: m.config.library, loaded: m.port !== undefined && !m.error, error: m.error, ...(signedOn ? { signedOn } : {}) };
    });
    // The histogram holds whole sampling intervals; the delay is what exceeds the interval.
    const ms = (ns: number) => Math.max(0, Math.round((ns - LOOP_SAMPLE_MS * 1e6) / 1e4) / 100);
    const eventLoopDelay = { p50Ms: ms(this.loopDelay.percentile(50)), p99Ms: ms(this.loopDelay.percentile(99)), maxMs: ms(this.loopDelay.max) };
    if (resetStats) this.loopDelay.reset();
    return {
      status: modules.every((m) => m.loaded) ? 'ok' : 'degraded',
      version: PROTOCOL_VERSION,
      uptimeSeconds: Math.round((Date.now() - this.started) / 1000),
      modules,
      tokens,
      eventLoopDelay,
      signatures: this.signatures.view(),
      ocsp: this.ocspView(),
      connections: this.connections(),
      ...this.respondersView(),
    };
  }

  private respondersView(): Pick<HealthView, 'ocspResponders' | 'ocspNextRefreshAt'> {
    const { responders, nextRefreshAt } = this.ocspResponders();
    return { ocspResponders: responders, ...(nextRefreshAt ? { ocspNextRefreshAt: nextRefreshAt.toISOString() } : {}) };
  }

  /** Age and status of each cached OCSP response; one that no longer parses is left out. */
  private ocspView(): OcspResponseView[] {
    const now = Date.now();
    return this.ocsp.all().flatMap((c) => {
      let basic;
      try {
        basic = parseOcspResponse(c.der);
      } catch {
        return [];
      }
      const single = basic.responses[0];
      if (!single) return [];
      return [{
        certHash: c.certSha1,
        status: single.certStatus.status,
        producedAt: basic.producedAt.toISOString(),
        thisUpdate: single.thisUpdate.toISOString(),
        nextUpdate: single.nextUpdate?.toISOString(),
        ageSeconds: Math.max(0, Math.round((now - single.thisUpdate.getTime()) / 1000)),
      }];
    });
  }

  /** Stops the event-loop sampler; the daemon calls it when it stops. */
  close(): void {
    clearInterval(this.loopSampling);
    this.loopSampling = undefined;
  }

  /** A request came: the event-loop delay is sampled until none has come for LOOP_SAMPLE_IDLE_MS. */
  private serving(): void {
    this.lastRequestAt = performance.now();
    if (this.loopSampling) return;
    let last = this.lastRequestAt;
    this.loopSampling = setInterval(() => {
      // Recorded before the stop check: a tick made late by a long block still counts.
      const now = performance.now();
      this.loopDelay.record(Math.max(1, Math.round((now - last) * 1e6)));
      last = now;
      if (now - this.lastRequestAt < LOOP_SAMPLE_IDLE_MS) return;
      clearInterval(this.loopSampling);
      this.loopSampling = undefined;
    }, LOOP_SAMPLE_MS).unref();
  }

  // ---- tokens and keys ------------------------------------------------------------------------

  private token(ref: string): HsmToken {
    return this.tokens.resolve(text({ token: ref }, 'token'));
  }

  private tokenView(token: HsmToken, keys?: KeyView[]): TokenView {
    return { ...token.describe(), friendlyName: this.store.tokenFriendlyName(token.tokenId) ?? null, keys };
  }

  private async generateKey(r: Operations['generateKey']['req']): Promise<KeyView> {
    const token = this.token(r.token);
    let spec: KeySpec;
    if (r.algorithm === 'RSA') {
      const bits = r.bits ?? 2048;
      if (bits !== 2048 && bits !== 3072 && bits !== 4096) throw new XrdError('MalformedRequest', { reason: 'RSA bits must be 2048, 3072 or 4096' });
      spec = { algorithm: 'RSA', bits };
    } else if (r.algorithm === 'EC') {
      const curve = r.curve ?? 'P-256';
      if (curve !== 'P-256' && curve !== 'P-384') throw new XrdError('MalformedRequest', { reason: 'EC curve must be P-256 or P-384' });
      spec = { algorithm: 'EC', curve };
    } else {
      throw new XrdError('MalformedRequest', { reason: 'algorithm must be RSA or EC' });
    }
    const usage = optionalUsage(r.usage);
    const key = await token.generateKey(spec, r.friendlyName);
    this.store.saveKey({ keyId: key.keyId, tokenId: token.tokenId, usage: usage ?? null, friendlyName: r.friendlyName ?? null, algorithm: key.algorithm, size: key.size });
    this.keyTokens.set(key.keyId, token);
    return this.keyView(token, key, this.store.getKey(key.keyId));
  }

  /** Keys on the token merged with keys the keyconf remembers (those show as unavailable when absent). */
  private async keysOf(token: HsmToken): Promise<KeyView[]> {
    const records = new Map(this.store.keysOfToken(token.tokenId).map((k) => [k.keyId, k]));
    const views: KeyView[] = [];
    if (token.available && token.describe().status !== 'NOT_INITIALIZED') {
      for (const key of await token.listKeys()) {
        views.push(this.keyView(token, key, records.get(key.keyId)));
        records.delete(key.keyId);
      }
    }
    for (const rec of records.values()) views.push(this.keyView(token, undefined, rec));
    return views;
  }

  private keyView(token: HsmToken, key: TokenKey | undefined, rec: KeyRecord | undefined): KeyView {
    const keyId = key?.keyId ?? rec!.keyId;
    const d = token.describe();
    return {
      keyId,
      tokenId: token.tokenId,
      usage: rec?.usage ?? null,
      friendlyName: rec?.friendlyName ?? null,
      label: key?.label ?? '',
      algorithm: key?.algorithm ?? rec!.algorithm,
      size: key?.size ?? rec!.size,
      available: key?.hasPrivateKey ?? false,
      sensitive: key?.sensitive,
      extractable: key?.extractable,
      publicKey: key?.publicKey?.toString('base64'),
      uri: formatPkcs11Uri({ token: d.label, serial: d.serialNumber, id: Buffer.from(keyId, 'hex'), type: 'private' }),
      certs: this.store.certsOfKey(keyId).map(certView),
      csrs: this.store.csrsOfKey(keyId).map(csrView),
    };
  }

  /**
   * The token holding `keyId`: from memory, then keyconf, then a search of available tokens for
   * keys made outside the signer (e.g. with pkcs11-tool), which are then remembered.
   * @throws KeyNotFound
   */
  private async tokenOfKey(keyId: string): Promise<HsmToken> {
    const cached = this.keyTokens.get(keyId);
    if (cached) return cached;
    const rec = this.store.getKey(keyId);
    if (rec) {
      const token = this.tokens.get(rec.tokenId);
      this.keyTokens.set(keyId, token);
      return token;
    }
    for (const token of this.tokens.list()) {
      if (!token.available || token.describe().status === 'NOT_INITIALIZED') continue;
      const key = await token.getKey(keyId).catch((err: unknown) => {
        if (err instanceof XrdError && err.code === 'KeyNotFound') return undefined;
        throw err;
      });
      if (!key) continue;
      this.store.saveKey({ keyId, tokenId: token.tokenId, usage: null, friendlyName: null, algorithm: key.algorithm, size: key.size });
      this.keyTokens.set(keyId, token);
      return token;
    }
    throw new XrdError('KeyNotFound', { keyId });
  }

  // ---- CSRs and certificates ------------------------------------------------------------------

  private async generateCsr(r: Operations['generateCsr']['req']): Promise<Operations['generateCsr']['res']> {
    const keyId = normaliseKeyId(text(r, 'keyId'));
    const token = await this.tokenOfKey(keyId);
    const key = await token.getKey(keyId);
    if (!key.publicKey) throw new XrdError('KeyNotAvailable', { keyId, reason: 'the token has no public key object for this key' });
    const rec = this.store.getKey(keyId);
    const usage = optionalUsage(r.usage) ?? rec?.usage;
    if (!usage) throw new XrdError('MalformedRequest', { reason: 'usage (SIGNING or AUTHENTICATION) is required for a key without one' });
    if (rec?.usage && rec.usage !== usage) throw new XrdError('MalformedRequest', { reason: `key ${keyId} is a ${rec.usage} key` });
    const member = r.memberId ? memberOf(parseClientId(r.memberId)) : undefined;
    const server = r.serverId ? parseSecurityServerId(r.serverId) : undefined;
    if (usage === 'SIGNING' && !member) throw new XrdError('MalformedRequest', { reason: 'memberId is required for a signing CSR' });
    if (usage === 'AUTHENTICATION' && !server) throw new XrdError('MalformedRequest', { reason: 'serverId is required for an authentication CSR' });
    let given;
    try {
      given = parseDn(r.subject ?? '');
    } catch (err) {
      throw new XrdError('MalformedRequest', { reason: `subject: ${toXrdError(err).details.reason}` }, { cause: err });
    }
    const subject = defaultSubject(usage, { member, server }, given);
    const info = certificationRequestInfo(subject, key.publicKey);
    const input = csrSignatureInput(info, key.algorithm);
    const signature = await token.sign(keyId, resolveSignAlgorithm(input.algorithm, input.digest, keyId), input.digest);
    const der = assembleCsr(info, input.algorithm, signature);
    const csr = { csrId: randomUUID(), keyId, usage, memberId: member ? formatClientId(member) : null, subject: formatDn(subject), der, createdAt: new Date().toISOString() };
    if (!rec?.usage) this.store.saveKey({ keyId, tokenId: token.tokenId, usage, friendlyName: null, algorithm: key.algorithm, size: key.size });
    this.store.saveCsr(csr);
    return csrAnswer(csr, r.format);
  }

  /**
   * Imports a certificate for a key on one of the tokens, found by public key, with its chain.
   * @throws IncorrectCertificate, CertAlreadyExists, WrongCertUsage, KeyNotFound
   */
  private async importCert(r: Operations['importCert']['req']): Promise<CertView> {
    const cert = parseCertificate(certInput(text(r, 'cert')));
    if (this.store.getCert(cert.hash)) throw new XrdError('CertAlreadyExists', { hash: cert.hash });
    const chain = (r.chain ?? []).map((c) => parseCertificate(certInput(c)));
    checkChainLinks(cert, chain);

    const owner = await this.findKeyByPublicKey(cert.publicKey);
    if (!owner) throw new XrdError('IncorrectCertificate', { reason: 'no key on any token matches the certificate public key' });
    const { token, key } = owner;
    const rec = this.store.getKey(key.keyId);
    const usage = rec?.usage ?? usageOfCertificate(cert);
    if (!usage) throw new XrdError('WrongCertUsage', { usage: 'SIGNING or AUTHENTICATION', reason: 'keyUsage has neither nonRepudiation nor digitalSignature' });
    checkCertificateUsage(cert, usage);

    let memberId: string | null = null;
    if (usage === 'SIGNING') {
      const fromCsr = this.store.csrsOfKey(key.keyId).find((c) => c.usage === 'SIGNING')?.memberId;
      const given = r.memberId ? formatClientId(memberOf(parseClientId(r.memberId))) : undefined;
      memberId = given ?? fromCsr ?? null;
      if (!memberId) throw new XrdError('MalformedRequest', { reason: 'memberId is required: no signing CSR of this key names the member' });
    }
    // Signing certificates are usable at once; authentication certificates wait for registration (MEMBER_01).
    const status: CertStatus = usage === 'SIGNING' ? 'registered' : 'saved';
    const record: CertRecord = {
      hash: cert.hash,
      sha1: cert.sha1,
      keyId: key.keyId,
      memberId,
      status,
      active: r.active ?? usage === 'SIGNING',
      der: cert.der,
      chain: chain.map((c) => c.der),
      subject: cert.subject,
      issuer: cert.issuer,
      notAfter: cert.notAfter.toISOString(),
      importedAt: new Date().toISOString(),
    };
    if (!rec) this.store.saveKey({ keyId: key.keyId, tokenId: token.tokenId, usage, friendlyName: null, algorithm: key.algorithm, size: key.size });
    this.store.importCert(record, usage);
    this.log.info({ hash: cert.hash, keyId: key.keyId, usage }, 'certificate imported');
    return certView(record);
  }

  private async findKeyByPublicKey(spki: Buffer): Promise<{ token: HsmToken; key: TokenKey } | undefined> {
    for (const token of this.tokens.list()) {
      if (!token.available || token.describe().status === 'NOT_INITIALIZED') continue;
      const key = (await token.listKeys()).find((k) => k.publicKey?.equals(spki));
      if (key) return { token, key };
    }
    return undefined;
  }

  private cert(hash: string): CertRecord {
    const cert = this.store.getCert(text({ hash }, 'hash'));
    if (!cert) throw new XrdError('CertNotFound', { hash });
    return cert;
  }

  private updateCert(hash: string, change: { status?: CertStatus; active?: boolean }): CertView {
    const cert = this.cert(hash);
    this.store.updateCert(cert.hash, change);
    return certView(this.cert(cert.hash));
  }

  // ---- signing --------------------------------------------------------------------------------

  private async memberSigningInfo(memberIdText: string): Promise<SigningInfo> {
    const memberId = formatClientId(memberOf(parseClientId(memberIdText)));
    const candidates = this.store.allCerts().filter((c) => c.memberId === memberId && c.active && c.status === 'registered');
    return this.usableCert(candidates, 'SIGNING', () => new XrdError('UnknownMember', { memberId, reason: `Member '${memberId}' has no suitable certificates` }));
  }

  private async authKeyInfo(serverIdText: string): Promise<SigningInfo> {
    const server = parseSecurityServerId(serverIdText);
    const candidates = this.store.allCerts().filter((c) => c.active && c.status === 'registered' && this.store.getKey(c.keyId)?.usage === 'AUTHENTICATION');
    return this.usableCert(candidates, 'AUTHENTICATION', () => new XrdError('KeyNotFound', { keyId: `authentication key of ${serverIdText} (${server.serverCode})` }));
  }

  /** The first candidate whose key is on an active token and whose certificate is in force. */
  private async usableCert(candidates: CertRecord[], usage: KeyUsage, none: () => XrdError): Promise<SigningInfo> {
    let lastProblem: XrdError | undefined;
    const now = Date.now();
    for (const cert of candidates) {
      const key = this.store.getKey(cert.keyId);
      if (key?.usage !== usage) continue;
      if (Date.parse(cert.notAfter) < now) continue;
      const token = await this.tokenOfKey(cert.keyId);
      if (!token.active) {
        lastProblem = new XrdError('TokenNotActive', { tokenId: token.tokenId });
        continue;
      }
      const d = token.describe();
      const algorithm = key.algorithm === 'EC' ? 'SHA512withECDSA' : token.config.rsaSignMechanism === 'CKM_RSA_PKCS_PSS' ? 'SHA512withRSAandMGF1' : 'SHA512withRSA';
      return {
        keyId: cert.keyId,
        tokenId: token.tokenId,
        algorithm,
        batchSigningEnabled: d.batchSigningEnabled,
        cert: cert.der.toString('base64'),
        chain: cert.chain.map((c) => c.toString('base64')),
        certHash: cert.hash,
        // The responses go with the key, so the proxy asks once (issue 16).
        ocspResponses: [cert.sha1, ...cert.chain.map(certSha1)].map((sha1) => this.ocsp.get(sha1)?.der.toString('base64') ?? null),
      };
    }
    throw lastProblem ?? none();
  }

  private async sign(r: Operations['sign']['req'], deadline?: Deadline): Promise<{ signature: string }> {
    const signature = await this.countedSign(
      () => normaliseKeyId(text(r, 'keyId')),
      (keyId) => {
        const digest = base64(text(r, 'digest'), 'digest');
        return { algorithm: resolveSignAlgorithm(text(r, 'algorithm'), digest, keyId), digest, raw: r.format === 'raw' };
      },
      deadline,
    );
    return { signature: signature.toString('base64') };
  }

  /**
   * `signBinary` straight from its frame body (sign-body.ts), as the socket server hands it over:
   * no JSON and no base64 on the signing path.
   * @throws MalformedRequest, UnsupportedSignAlgorithm, InvalidDigestLength, and the token's errors
   */
  signBinary(body: Buffer, deadline?: Deadline): Promise<Buffer> {
    this.serving();
    return this.countedSign(() => signRequestKeyId(body), (keyId) => decodeSignRequest(body, keyId), deadline);
  }

  /** Signs, counting the request by key and outcome with its latency (health's `signatures`). */
  private async countedSign(keyIdOf: () => string, inputOf: (keyId: string) => { algorithm: SignAlgorithm; digest: Buffer; raw: boolean }, deadline?: Deadline): Promise<Buffer> {
    const started = performance.now();
    let keyId: string | undefined;
    try {
      keyId = keyIdOf();
      const { algorithm, digest, raw } = inputOf(keyId);
      const token = await this.tokenOfKey(keyId);
      const signature = await token.sign(keyId, algorithm, digest, { raw, deadline });
      this.signatures.record(keyId, 'success', (performance.now() - started) / 1000);
      return signature;
    } catch (err) {
      // Only keys the signer has become labels: a caller's typo must not add a series.
      const key = keyId !== undefined && (this.keyTokens.has(keyId) || this.store.getKey(keyId)) ? keyId : 'unknown';
      this.signatures.record(key, err instanceof XrdError ? err.code : 'InternalError', (performance.now() - started) / 1000);
      throw err;
    }
  }

  private async verify(r: Operations['verify']['req']): Promise<{ valid: boolean }> {
    const digest = base64(text(r, 'digest'), 'digest');
    const signature = base64(text(r, 'signature'), 'signature');
    if (r.cert) {
      const algorithm = resolveSignAlgorithm(text(r, 'algorithm'), digest, 'certificate');
      const publicKey = parseCertificate(certInput(r.cert)).publicKey;
      // A blank slot is no token to verify with (and a session held on it would block its C_InitToken).
      const token = this.tokens.list().find((t) => t.available && t.describe().status !== 'NOT_INITIALIZED');
      if (!token) throw new XrdError('TokenNotAvailable', { tokenId: '(any)', reason: 'no token is available to verify with' });
      return { valid: await token.verify(undefined, publicKey, algorithm, digest, signature) };
    }
    const keyId = normaliseKeyId(text(r, 'keyId'));
    const algorithm = resolveSignAlgorithm(text(r, 'algorithm'), digest, keyId);
    const token = await this.tokenOfKey(keyId);
    return { valid: await token.verify(keyId, undefined, algorithm, digest, signature) };
  }
}

// ---- request validation and views ---------------------------------------------------------------

function text(body: object, field: string): string {
  const value = (body as Record<string, unknown>)[field];
  if (typeof value !== 'string' || value === '') throw new XrdError('MalformedRequest', { reason: `"${field}" must be a non-empty string` });
  return value;
}

function list(body: object, field: string): string[] {
  const value = (body as Record<string, unknown>)[field];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new XrdError('MalformedRequest', { reason: `"${field}" must be an array of strings` });
  return value as string[];
}

function base64(value: string, field: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw new XrdError('MalformedRequest', { reason: `"${field}" is not base64` });
  return Buffer.from(value, 'base64');
}

function optionalUsage(value: unknown): KeyUsage | undefined {
  if (value === undefined || value === null) return undefined;
  if (value !== 'SIGNING' && value !== 'AUTHENTICATION') throw new XrdError('MalformedRequest', { reason: 'usage must be SIGNING or AUTHENTICATION' });
  return value;
}

function normaliseKeyId(keyId: string): string {
  if (!/^([0-9A-Fa-f]{2})+$/.test(keyId)) throw new XrdError('KeyNotFound', { keyId });
  return keyId.toUpperCase();
}

/** Certificates arrive as PEM text or base64 DER. */
function certInput(value: string): Buffer | string {
  return value.includes('-----BEGIN') ? value : base64(value.replace(/\s+/g, ''), 'cert');
}

/** Each certificate of the chain must have issued the one before it. @throws IncorrectCertificate */
function checkChainLinks(cert: CertificateFacts, chain: CertificateFacts[]): void {
  let child = new X509Certificate(cert.der);
  for (const next of chain) {
    const issuer = new X509Certificate(next.der);
    if (!child.checkIssued(issuer) || !child.verify(issuer.publicKey)) {
      throw new XrdError('IncorrectCertificate', { reason: `chain certificate "${next.subject}" did not issue "${child.subject.replaceAll('\n', ', ')}"` });
    }
    child = issuer;
  }
}

function certView(c: CertRecord): CertView {
  return {
    hash: c.hash,
    sha1: c.sha1,
    keyId: c.keyId,
    memberId: c.memberId,
    status: c.status,
    active: c.active,
    subject: c.subject,
    issuer: c.issuer,
    notAfter: c.notAfter,
    cert: c.der.toString('base64'),
    chain: c.chain.map((b) => b.toString('base64')),
  };
}

function csrView(c: { csrId: string; keyId: string; usage: string; memberId: string | null; subject: string; createdAt: string }): CsrView {
  return { csrId: c.csrId, keyId: c.keyId, usage: c.usage, memberId: c.memberId, subject: c.subject, createdAt: c.createdAt };
}

/** A CSR with its bytes: PEM text, or base64 DER. */
function csrAnswer(c: CsrRecord, format: 'PEM' | 'DER' = 'PEM'): Operations['generateCsr']['res'] {
  if (format !== 'PEM' && format !== 'DER') throw new XrdError('MalformedRequest', { reason: 'format must be PEM or DER' });
  return { ...csrView(c), format, csr: format === 'PEM' ? toPem(c.der, 'CERTIFICATE REQUEST') : c.der.toString('base64') };
}

/** What of a request or result goes into the audit log: identifiers only, never PINs or blobs. */
function auditFields(body: unknown): Record<string, string | boolean | undefined> {
  const out: Record<string, string | boolean | undefined> = {};
  if (!body || typeof body !== 'object') return out;
  for (const field of ['token', 'tokenId', 'keyId', 'hash', 'csrId', 'memberId', 'serverId', 'usage', 'status', 'algorithm', 'label', 'friendlyName', 'active'] as const) {
    const value = (body as Record<string, unknown>)[field];
    if (typeof value === 'string' || typeof value === 'boolean') out[field] = value;
  }
  return out;
}
