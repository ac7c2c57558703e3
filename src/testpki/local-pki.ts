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
 * `serve` runs the OCSP responder, the TSA and the configuration source on 127.0.0.1 at the ports
 * the configuration and the anchor name.
 */
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { toPem } from '../certificates/csr.ts';
import { loadGlobalConf, type SharedParameters } from '../globalconf/global-conf.ts';
import { startConfigurationSource } from '../globalconf/source.ts';
import { configurationAnchorXml, writeGlobalConf } from '../globalconf/writer.ts';
import { XrdError } from '../platform/errors.ts';
import { parseSecurityServerId, type ClientId, type SecurityServerId } from '../protocol/identifiers.ts';
import { EKU, createAuthority, createRootCa, issueCertificate, readCsr, type Authority } from './certificate-authority.ts';
import { startOcspResponder } from './ocsp-responder.ts';
import { startTimestampAuthority } from './timestamp-authority.ts';

export interface LocalPkiOptions {
  readonly instance?: string;
  readonly ocspPort?: number;
  readonly tsaPort?: number;
  readonly confPort?: number;
}

interface State {
  instance: string;
  ocspPort: number;
  tsaPort: number;
  confPort: number;
  issued: { serial: string; subject: string; usage: 'sign' | 'auth' | 'ca'; revokedAt?: string }[];
}

const ROLES = ['root', 'ca', 'ocsp', 'tsa', 'conf'] as const;
type Role = (typeof ROLES)[number];

export class LocalPki {
  private constructor(
    readonly dir: string,
    private readonly state: State,
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
      issued: [{ serial: normaliseSerial(issuingCa.serialNumber), subject: issuingCa.subject.replaceAll('\n', ', '), usage: 'ca' }],
    };
    const pki = new LocalPki(dir, state, authorities);
    pki.save();
    writeGlobalConf(pki.globalConfDir, pki.initialParameters(), { instanceIdentifier: instance, timeStampingIntervalSeconds: 60 });
    writeFileSync(pki.anchorFile, configurationAnchorXml({ instanceIdentifier: instance, sources: [{ downloadUrl: `http://127.0.0.1:${state.confPort}/internalconf`, verificationCerts: [conf.cert] }] }));
    return pki;
  }

  static open(dir: string): LocalPki {
    const pkiDir = join(dir, 'pki');
    if (!existsSync(join(pkiDir, 'state.json'))) throw new XrdError('InvalidConfiguration', { reason: `${dir} holds no test PKI (xrd testpki init)` });
    const state = JSON.parse(readFileSync(join(pkiDir, 'state.json'), 'utf8')) as State;
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
    this.state.issued.push({ serial: normaliseSerial(x509.serialNumber), subject: x509.subject.replaceAll('\n', ', '), usage });
    this.save();
    if (usage === 'auth' && server) this.registerAuthCert(parseSecurityServerId(server), cert);
    return cert;
  }

  revoke(cert: Buffer): void {
    const serial = normaliseSerial(new X509Certificate(cert).serialNumber);
    const entry = this.state.issued.find((i) => i.serial === serial);
    if (!entry) throw new XrdError('CertNotFound', { hash: createHash('sha256').update(cert).digest('hex') });
    entry.revokedAt = new Date().toISOString();
    this.save();
  }

  /** The OCSP responder, the TSA and the configuration source on 127.0.0.1, until `close`. */
  async serve(): Promise<{ ocspUrl: string; tsaUrl: string; confUrl: string; close(): Promise<void> }> {
    const states = (serial: string) => {
      // Re-read: certificates issued or revoked by another `xrd testpki` command count at once.
      const entry = (JSON.parse(readFileSync(join(this.dir, 'pki', 'state.json'), 'utf8')) as State).issued.find((i) => i.serial === serial);
      if (!entry) return undefined;
      return entry.revokedAt ? { status: 'revoked' as const, revokedAt: new Date(entry.revokedAt) } : { status: 'good' as const };
    };
    const servers: Server[] = [
      await startOcspResponder(
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
      await startTimestampAuthority({ tsa: this.authorities.tsa }, '127.0.0.1', this.state.tsaPort),
      await startConfigurationSource({ dir: this.globalConfDir, signingKey: this.authorities.conf.privateKey, signingCert: this.authorities.conf.cert }, '127.0.0.1', this.state.confPort),
    ];
    return {
      ocspUrl: `http://127.0.0.1:${this.state.ocspPort}/`,
      tsaUrl: `http://127.0.0.1:${this.state.tsaPort}/`,
      confUrl: `http://127.0.0.1:${this.state.confPort}/internalconf`,
      close: () => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined),
    };
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
    const member = (code: string): ClientId => ({ instance, memberClass: 'COM', memberCode: code });
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
      members: [
        { id: member('1111'), name: 'Provider Oy', subsystems: ['PROVIDER'] },
        { id: member('2222'), name: 'Client Oy', subsystems: ['CLIENT'] },
        // A second organisation on the client's security server (seed 003: a shared server).
        { id: member('3333'), name: 'Other Oy', subsystems: ['OTHER'] },
      ],
      securityServers: [
        { owner: member('1111'), serverCode: 'ss1', address: '127.0.0.1', authCertHashes: [], clients: [{ ...member('1111'), subsystem: 'PROVIDER' }] },
        { owner: member('2222'), serverCode: 'ss2', address: '127.0.0.2', authCertHashes: [], clients: [{ ...member('2222'), subsystem: 'CLIENT' }, { ...member('3333'), subsystem: 'OTHER' }] },
      ],
      globalGroups: [{ groupCode: 'security-server-owners', description: 'Security server owners', members: [member('1111'), member('2222')] }],
      memberClasses: [{ code: 'COM', description: 'Commercial' }],
      ocspFreshnessSeconds: 3600,
    };
  }

  private save(): void {
    writeFileSync(join(this.dir, 'pki', 'state.json'), JSON.stringify(this.state, null, 2));
  }
}

function normaliseSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+(?=.)/, '');
}
