/**
 * The server itself, apart from its members and services (the reference's SystemApi and
 * DiagnosticsApi behind its /api/v1): the configuration anchor the signer downloads global
 * configuration from, the internal TLS certificate information systems see on the client proxy's
 * HTTPS port, and the diagnostics of global configuration, timestamping, OCSP and certificate expiry.
 * ServerAdmin hands it what it needs (SystemContext) and reaches it as `admin.system`.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { certificateDetails, type CertificateDetails } from '../certificates/certificate-details.ts';
import { toPem } from '../certificates/csr.ts';
import { parseUploadedAnchor } from '../globalconf/anchor.ts';
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError } from '../platform/errors.ts';
import { writeFileAtomic } from '../platform/files.ts';
import { writeTarGz } from '../platform/tar.ts';
import { ensureInternalTls, generateInternalTls, importInternalCertificate, internalTlsCsr } from '../serverconf/internal-tls.ts';
import type { ServerConf } from '../serverconf/model.ts';
import type { SignerConnection } from '../signerapi/signer-client.ts';
import { certificateExpiry, globalConfDiagnostics, ocspDiagnostics, timestampingDiagnostics, type CaOcspDiagnostics, type CertificateExpiry, type GlobalConfDiagnostics, type TimestampingServiceDiagnostics } from './diagnostics.ts';

/** A file the administration hands out (a CSR, a certificate archive, the anchor, a backup): its name, bytes and, where it varies, media type. */
export interface FileDownload {
  readonly filename: string;
  readonly data: Buffer;
  readonly contentType?: string;
}

/** What SystemAdmin needs from ServerAdmin: where the files are, the signer, the configurations and the audit log. */
export interface SystemContext {
  /** The proxy's data directory: the internal TLS key and the message log's timestamping status are there. */
  readonly proxyDataDir: string;
  /** The configuration anchor the signer downloads global configuration from (ServerAdminOptions.anchorFile). */
  readonly anchorFile?: string;
  /** The folder the signer downloads global configuration into: its download status is there. */
  readonly globalConfDir?: string;
  readonly signer: SignerConnection;
  /** The server configuration, undefined before initialisation. */
  serverConf(): Promise<ServerConf | undefined>;
  /** @throws GlobalConfNotAvailable */
  requireGlobalConf(): GlobalConf;
  /** Records a change in the audit log under the administration's actor. */
  audit(action: string, detail: Record<string, unknown>): Promise<void>;
}

/** The reference's Anchor. */
export interface AnchorView {
  /** SHA-224 of the file, upper-case hex (the reference's anchor hash). */
  readonly hash: string;
  /** The anchor's generatedAt. */
  readonly created_at: string | null;
}

export class SystemAdmin {
  constructor(private readonly context: SystemContext) {}

  // --- The configuration anchor (the reference's SystemService anchor methods) ---------------------

  /** The anchor in place: SHA-224 of the file (upper-case hex, as the reference) and when the central server made it. @throws AnchorNotFound */
  anchor(): AnchorView {
    return anchorView(this.anchorBytes());
  }

  /** The anchor file as it is, named as the reference names it. @throws AnchorNotFound */
  downloadAnchor(): FileDownload {
    const bytes = this.anchorBytes();
    let made: Date | undefined;
    try {
      made = parseUploadedAnchor(bytes).generatedAt;
    } catch {
      // A file the signer cannot read is still the administrator's to download.
    }
    made ??= new Date();
    return { filename: `configuration_anchor_UTC_${made.toISOString().slice(0, 19).replace('T', '_').replaceAll(':', '_')}.xml`, data: bytes };
  }

  /**
   * What an uploaded anchor is, before it is saved: the administrator compares the hash with the
   * one the central server published.
   * @throws MalformedAnchor, InvalidAnchorInstance (unless `validateInstance` is false: at initialisation)
   */
  async previewAnchor(bytes: Buffer, validateInstance = true): Promise<AnchorView> {
    const anchor = parseUploadedAnchor(bytes);
    if (validateInstance) await this.checkAnchorInstance(anchor.instanceIdentifier);
    return anchorView(bytes);
  }

  /** The first anchor of a new server. @throws AnchorAlreadyExists, MalformedAnchor, AnchorUploadFailed */
  uploadInitialAnchor(bytes: Buffer): Promise<AnchorView> {
    const file = this.anchorFileOrThrow();
    if (existsSync(file)) throw new XrdError('AnchorAlreadyExists', { referenceCode: 'anchor_already_exists' });
    parseUploadedAnchor(bytes);
    return this.saveAnchor(file, bytes, 'INIT_ANCHOR');
  }

  /** A new anchor of this server's instance in place of the current one. @throws AnchorNotFound, MalformedAnchor, InvalidAnchorInstance, AnchorUploadFailed */
  async replaceAnchor(bytes: Buffer): Promise<AnchorView> {
    this.anchorBytes();
    await this.checkAnchorInstance(parseUploadedAnchor(bytes).instanceIdentifier);
    return this.saveAnchor(this.anchorFileOrThrow(), bytes, 'UPLOAD_ANCHOR');
  }

  private async saveAnchor(file: string, bytes: Buffer, action: string): Promise<AnchorView> {
    try {
      // Beside and renamed over: the signer, reading it at any moment, sees the old anchor or the new
      // one; 0644 whatever this process's umask (0077 under systemd), as the signer is another user.
      writeFileAtomic(file, bytes, 0o644);
    } catch (err) {
      throw new XrdError('AnchorUploadFailed', { file, reason: (err as Error).message, referenceCode: 'anchor_upload_failed' }, { cause: err });
    }
    const view = anchorView(bytes);
    await this.context.audit(action, { anchorFileHash: view.hash });
    return view;
  }

  /** The reference's check: the anchor's instance is the owner's (before initialisation, the current anchor's). */
  private async checkAnchorInstance(anchorInstance: string): Promise<void> {
    const file = this.context.anchorFile;
    const instance = (await this.context.serverConf())?.serverId.instance ?? (file && existsSync(file) ? parseUploadedAnchor(readFileSync(file)).instanceIdentifier : undefined);
    if (instance !== undefined && instance !== anchorInstance) throw new XrdError('InvalidAnchorInstance', { anchorInstance, instance, referenceCode: 'internal_anchor_upload_invalid_instance_id' });
  }

  private anchorFileOrThrow(): string {
    if (!this.context.anchorFile) throw new XrdError('AnchorNotFound', { reason: 'the admin API was not told where the anchor is (xrd admin start --anchor F, the signer\'s --anchor)', referenceCode: 'anchor_not_found' });
    return this.context.anchorFile;
  }

  private anchorBytes(): Buffer {
    const file = this.anchorFileOrThrow();
    try {
      return readFileSync(file);
    } catch (err) {
      throw new XrdError('AnchorNotFound', { reason: `${file}: ${(err as Error).message}`, referenceCode: 'anchor_not_found' }, { cause: err });
    }
  }

  // --- Diagnostics (the reference's DiagnosticsApi; diagnostics.ts says where each status comes from) ---

  globalConfDiagnostics(): GlobalConfDiagnostics {
    return globalConfDiagnostics(this.context.globalConfDir);
  }

  async timestampingDiagnostics(): Promise<TimestampingServiceDiagnostics[]> {
    return timestampingDiagnostics(this.context.proxyDataDir, (await this.context.serverConf())?.timestampingServices ?? []);
  }

  /** @throws GlobalConfNotAvailable, and the signer's errors */
  async ocspDiagnostics(): Promise<CaOcspDiagnostics[]> {
    return ocspDiagnostics(this.context.requireGlobalConf(), await this.context.signer.call('health', {}));
  }

  certificateExpiry(): Promise<CertificateExpiry[]> {
    return certificateExpiry(this.context.signer);
  }

  // --- The server's internal TLS certificate (the reference's InternalTlsCertificateService) --------

  /** The certificate information systems see on the client proxy's HTTPS port. */
  systemCertificate(): CertificateDetails {
    return certificateDetails(internalTls(this.context.proxyDataDir).cert);
  }

  /** The reference's certs.tar.gz: the certificate as cert.pem and as cert.cer (DER). */
  exportSystemCertificate(): FileDownload {
    const pem = internalTls(this.context.proxyDataDir).cert;
    const der = Buffer.from(new X509Certificate(pem).raw);
    return { filename: 'certs.tar.gz', data: writeTarGz([{ name: 'cert.pem', data: Buffer.from(toPem(der, 'CERTIFICATE')), mode: 0o644 }, { name: 'cert.cer', data: der, mode: 0o644 }]) };
  }

  /**
   * A new internal key and self-signed certificate; the client proxy serves them from its next
   * connection on (it looks at the files at most a second later). Information systems that pinned
   * the old certificate must be given the new one.
   */
  async generateSystemCertificate(): Promise<CertificateDetails> {
    const details = certificateDetails(generateInternalTls(internalTlsDir(this.context.proxyDataDir)).certPem);
    await this.context.audit('GENERATE_INTERNAL_TLS_KEY_CERT', { certHash: details.hash });
    return details;
  }

  /** A CSR (DER) for the internal key, for a CA to issue the certificate imported next. @throws InvalidDistinguishedName */
  async systemCertificateCsr(name: string): Promise<FileDownload> {
    const csr = internalTlsCsr(internalTlsDir(this.context.proxyDataDir), name);
    await this.context.audit('GENERATE_INTERNAL_TLS_CSR', { subjectName: name });
    return { filename: `internal_tls_cert_request_${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}.p10`, data: csr };
  }

  /** A certificate (PEM, PEM chain or DER) for the internal key. @throws IncorrectCertificate, InternalTlsKeyMismatch, CertAlreadyExists */
  async importSystemCertificate(cert: Buffer): Promise<CertificateDetails> {
    const details = certificateDetails(importInternalCertificate(internalTlsDir(this.context.proxyDataDir), cert).certPem);
    await this.context.audit('IMPORT_INTERNAL_TLS_CERT', { certHash: details.hash });
    return details;
  }
}

/** This server's internal TLS certificate and key (PEM), the proxy's, made on first use. */
export function internalTls(proxyDataDir: string): { cert: string; key: string } {
  const { certPem, keyPem } = ensureInternalTls(internalTlsDir(proxyDataDir));
  return { cert: certPem, key: keyPem };
}

function internalTlsDir(proxyDataDir: string): string {
  return join(proxyDataDir, 'internal-tls');
}

function anchorView(bytes: Buffer): AnchorView {
  return { hash: createHash('sha224').update(bytes).digest('hex').toUpperCase(), created_at: parseUploadedAnchor(bytes).generatedAt?.toISOString() ?? null };
}
