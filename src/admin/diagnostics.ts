/**
 * The reference admin API's DiagnosticsApi (global configuration, timestamping services, OCSP
 * responders) and the expiry of the token certificates, built from where the running parts record
 * what happened — the admin process never guesses a status:
 *
 * - global configuration: the signer's configuration client writes each download attempt to
 *   `download-status.json` in the configuration folder (configuration-client.ts);
 * - timestamping: the proxy's message log writes each round's outcome per TSA to
 *   `timestamper-status.json` in the proxy's data folder (message-log.ts);
 * - OCSP responders: the signer's `health` answers each responder's last outcome and the refresh
 *   round due next (ResponderOutcomes);
 * - certificates: the signer's certificates, with their cached OCSP responses.
 *
 * A status nobody has recorded yet is WAITING (the reference's "not yet known"), never OK.
 */
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { javaName } from '../certificates/certificate-details.ts';
import { readDownloadStatus } from '../globalconf/configuration-client.ts';
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { TIMESTAMPER_STATUS_FILE, readTimestamperStatus } from '../messagelog/message-log.ts';
import type { ConfiguredTsa } from '../serverconf/model.ts';
import type { SignerConnection } from '../signerapi/signer-client.ts';
import type { CertView, HealthView } from '../signerapi/operations.ts';
import { certSha1 } from '../trust/ocsp-cache.ts';

/** The reference's DiagnosticStatusClass. */
export type StatusClass = 'OK' | 'WAITING' | 'FAIL';

/** Why a check failed: our error code and message (the reference's CodeWithDetails carries its own codes). */
export interface DiagnosticError {
  readonly code: string;
  readonly message: string;
}

export interface GlobalConfDiagnostics {
  readonly status_class: StatusClass;
  readonly prev_update_at: string | null;
  readonly next_update_at: string | null;
  readonly last_successful_url?: string;
  readonly error?: DiagnosticError;
}

export interface TimestampingServiceDiagnostics {
  readonly name: string;
  readonly url: string;
  readonly status_class: StatusClass;
  readonly prev_update_at: string | null;
  readonly error?: DiagnosticError;
}

export interface OcspResponderDiagnostics {
  readonly url: string;
  readonly status_class: StatusClass;
  readonly prev_update_at: string | null;
  readonly next_update_at: string | null;
  readonly error?: DiagnosticError;
}

export interface CaOcspDiagnostics {
  readonly distinguished_name: string;
  readonly ocsp_responders: OcspResponderDiagnostics[];
}

/** One token certificate's validity: OK, WARNING within `EXPIRY_WARNING_DAYS` of its end, FAIL when past it. */
export interface CertificateExpiry {
  readonly hash: string;
  readonly subject: string;
  readonly key_usage: 'SIGNING' | 'AUTHENTICATION' | null;
  readonly state: string;
  readonly active: boolean;
  readonly not_after: string;
  readonly days_left: number;
  readonly status_class: 'OK' | 'WARNING' | 'FAIL';
  /** The signer's cached OCSP response for it: good, revoked, unknown, or none yet. */
  readonly ocsp_status: 'good' | 'revoked' | 'unknown' | 'none';
  readonly ocsp_next_update_at: string | null;
}

export const EXPIRY_WARNING_DAYS = 30;
const DAY_MS = 86_400_000;

/** @param dir the configuration folder the signer downloads into */
export function globalConfDiagnostics(dir: string | undefined): GlobalConfDiagnostics {
  const status = dir ? readDownloadStatus(dir) : undefined;
  if (!status) return { status_class: 'WAITING', prev_update_at: null, next_update_at: null };
  return {
    status_class: status.status,
    prev_update_at: status.at,
    next_update_at: status.nextAt,
    ...(status.url ? { last_successful_url: status.url } : {}),
    ...(status.status === 'FAIL' ? { error: { code: status.code ?? 'Unknown', message: status.message ?? '' } } : {}),
  };
}

/** The configured TSAs (in the server configuration's order) with the proxy's last outcome of each. */
export function timestampingDiagnostics(proxyDataDir: string, configured: readonly ConfiguredTsa[]): TimestampingServiceDiagnostics[] {
  const recorded = readTimestamperStatus(join(proxyDataDir, TIMESTAMPER_STATUS_FILE));
  return configured.map(({ name, url }) => {
    const outcome = recorded?.tsas.find((t) => t.url === url);
    if (!outcome) return { name, url, status_class: 'WAITING', prev_update_at: null };
    return { name, url, status_class: outcome.status, prev_update_at: outcome.at, ...(outcome.status === 'FAIL' ? { error: { code: outcome.code ?? 'Unknown', message: outcome.message ?? '' } } : {}) };
  });
}

/** Each CA of the instance that names OCSP responders, with the signer's last outcome of each responder. */
export function ocspDiagnostics(global: GlobalConf, health: HealthView): CaOcspDiagnostics[] {
  const outcomes = new Map((health.ocspResponders ?? []).map((o) => [o.url, o]));
  const next = health.ocspNextRefreshAt ?? null;
  return global.own.approvedCas
    .flatMap((ca) => [ca.topCa, ...ca.intermediateCas])
    .filter((c) => c.ocsp.some((o) => o.url.trim() !== ''))
    .map((c) => ({
      distinguished_name: javaName(new X509Certificate(c.cert).subject),
      ocsp_responders: c.ocsp
        .filter((o) => o.url.trim() !== '')
        .map((o): OcspResponderDiagnostics => {
          const outcome = outcomes.get(o.url);
          if (!outcome) return { url: o.url, status_class: 'WAITING', prev_update_at: null, next_update_at: next };
          return { url: o.url, status_class: outcome.status, prev_update_at: outcome.at, next_update_at: next, ...(outcome.status === 'FAIL' ? { error: { code: outcome.code ?? 'Unknown', message: outcome.message ?? '' } } : {}) };
        }),
    }));
}

/** The token certificates, soonest to expire first, with their cached OCSP status. */
export async function certificateExpiry(signer: SignerConnection, now = new Date()): Promise<CertificateExpiry[]> {
  const [certs, keys, health] = await Promise.all([signer.call('listCerts', {}), signer.call('listKeys', {}), signer.call('health', {})]);
  const usage = new Map(keys.map((k) => [k.keyId, k.usage]));
  const ocsp = new Map(health.ocsp.map((r) => [r.certHash, r]));
  return certs
    .map((c: CertView): CertificateExpiry => {
      const notAfter = new Date(c.notAfter);
      const daysLeft = Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
      const response = ocsp.get(certSha1(Buffer.from(c.cert, 'base64')));
      return {
        hash: c.hash,
        subject: c.subject,
        key_usage: usage.get(c.keyId) ?? null,
        state: c.status,
        active: c.active,
        not_after: notAfter.toISOString(),
        days_left: daysLeft,
        status_class: notAfter <= now ? 'FAIL' : daysLeft < EXPIRY_WARNING_DAYS ? 'WARNING' : 'OK',
        ocsp_status: response?.status ?? 'none',
        ocsp_next_update_at: response?.nextUpdate ?? null,
      };
    })
    .sort((a, b) => a.not_after.localeCompare(b.not_after));
}
