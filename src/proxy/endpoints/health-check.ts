/**
 * The proxy's health check (the reference's port 5588): what a load balancer or a monitoring system
 * asks before sending this server traffic. It answers 200 only when the server could mediate a
 * message right now — its authentication key and certificate usable in the signer, the OCSP
 * responses peers need for that certificate good and fresh, its databases answering, its global
 * configuration valid and in force — and 500 naming each check that failed otherwise.
 *
 * Results are kept for a short time (2 s by default) so a busy prober does not turn into a stream of
 * signer calls and file reads; a failure is reported as quickly as it would be seen by a message.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { oneLineName, x509Of } from '../../certificates/certificate.ts';
import type { GlobalConf } from '../../globalconf/global-conf.ts';
import { XrdError, toXrdError } from '../../platform/errors.ts';
import { TtlCache } from '../../platform/ttl-cache.ts';
import { ocspResponsesOf, type SignerConnection } from '../../signerapi/signer-client.ts';
import type { SigningInfo } from '../../signerapi/operations.ts';
import { buildCertPath } from '../../trust/cert-path.ts';
import { certSha1 } from '../../trust/ocsp-cache.ts';
import { ocspPolicyFor, verifyOcspResponse } from '../../trust/ocsp-verifier.ts';

/** The reference's health check port. */
export const DEFAULT_HEALTH_PORT = 5588;
/** How long one evaluation answers for. */
export const DEFAULT_HEALTH_CACHE_MS = 2000;
/** A signer that does not answer within this is a failed check, not a hanging probe. */
const SIGNER_TIMEOUT_MS = 5000;

export type HealthCheckName = 'authKey' | 'authOcsp' | 'database' | 'globalConf';

export interface HealthCheckResult {
  readonly name: HealthCheckName;
  readonly ok: boolean;
  /** Why it failed: one line naming the check (absent when ok). */
  readonly reason?: string;
}

export interface HealthReport {
  readonly ok: boolean;
  readonly checkedAt: string;
  readonly checks: readonly HealthCheckResult[];
}

export interface HealthCheckOptions {
  readonly signer: Pick<SignerConnection, 'call'>;
  /** This server's id, `INSTANCE/CLASS/CODE/SERVER`. */
  readonly serverId: () => string;
  readonly globalConf: () => GlobalConf;
  /** The message log database: throws when it does not answer. */
  readonly pingMessageLog: () => Promise<void>;
  /** The server configuration's store, read on every evaluation (the proxy's reader keeps the last good one). */
  readonly readServerConf: () => Promise<unknown>;
  readonly cacheMs?: number;
  readonly now?: () => Date;
}

export class HealthCheck {
  private readonly cache: TtlCache<'report', HealthReport>;
  private readonly now: () => Date;

  constructor(private readonly options: HealthCheckOptions) {
    this.cache = new TtlCache(options.cacheMs ?? DEFAULT_HEALTH_CACHE_MS);
    this.now = options.now ?? (() => new Date());
  }

  /** The current report, evaluated at most once per cache period. Never rejects. */
  report(): Promise<HealthReport> {
    return this.cache.get('report', () => this.evaluate());
  }

  private async evaluate(): Promise<HealthReport> {
    const now = this.now();
    // Inside the promise: an unreadable serverconf.json (no server id) fails the check, not the probe.
    const authKey = Promise.resolve().then(() => this.options.signer.call('authKeyInfo', { serverId: this.options.serverId() }, { timeoutMs: SIGNER_TIMEOUT_MS }));
    const checks = await Promise.all([
      authKey.then(
        (): HealthCheckResult => ({ name: 'authKey', ok: true }),
        (err: unknown): HealthCheckResult => ({ name: 'authKey', ok: false, reason: `authentication key or certificate not usable: ${describe(err)}` }),
      ),
      this.authOcsp(authKey, now),
      this.database(),
      this.globalConf(now),
    ]);
    return { ok: checks.every((c) => c.ok), checkedAt: now.toISOString(), checks };
  }

  /**
   * The OCSP responses of the authentication certificate's path (every certificate below the CA's
   * top one, as peers check them), from the signer's cache, verified as a peer would: signature,
   * responder, freshness (ocspFreshnessSeconds), nextUpdate, status good.
   */
  private async authOcsp(authKey: Promise<SigningInfo>, now: Date): Promise<HealthCheckResult> {
    const fail = (reason: string): HealthCheckResult => ({ name: 'authOcsp', ok: false, reason: `authentication certificate OCSP status: ${reason}` });
    let info: SigningInfo;
    try {
      info = await authKey;
    } catch {
      return fail('not checked, no usable authentication certificate');
    }
    try {
      const conf = this.options.globalConf();
      const cert = Buffer.from(info.cert, 'base64');
      const certs = buildCertPath(cert, conf, info.chain.map((c) => Buffer.from(c, 'base64')), now).certs;
      const below = certs.slice(0, -1);
      const responses = await ocspResponsesOf(this.options.signer, info, below.map(certSha1), { timeoutMs: SIGNER_TIMEOUT_MS });
      for (const [i, subject] of below.entries()) {
        const der = responses[i];
        const name = oneLineName(x509Of(subject).subject);
        if (!der) return fail(`no OCSP response cached for ${name}`);
        const issuer = certs[i + 1]!;
        try {
          verifyOcspResponse(der, subject, issuer, now, ocspPolicyFor(conf, issuer));
        } catch (err) {
          return fail(`${name}: ${describe(err)}`);
        }
      }
      return { name: 'authOcsp', ok: true };
    } catch (err) {
      return fail(describe(err));
    }
  }

  private async database(): Promise<HealthCheckResult> {
    try {
      await this.options.pingMessageLog();
    } catch (err) {
      return { name: 'database', ok: false, reason: `message log database not answering: ${describe(err)}` };
    }
    try {
      if ((await this.options.readServerConf()) === undefined) throw new XrdError('ServerNotInitialized', {});
    } catch (err) {
      return { name: 'database', ok: false, reason: `server configuration not readable: ${describe(err)}` };
    }
    return { name: 'database', ok: true };
  }

  private async globalConf(now: Date): Promise<HealthCheckResult> {
    try {
      this.options.globalConf().checkUpToDate(now);
      return { name: 'globalConf', ok: true };
    } catch (err) {
      const e = toXrdError(err);
      const what = e.code === 'OutdatedGlobalConf' ? 'global configuration expired' : 'global configuration not valid';
      return { name: 'globalConf', ok: false, reason: `${what}: ${describe(e)}` };
    }
  }
}

function describe(err: unknown): string {
  const e = toXrdError(err);
  return `${e.fullCode}: ${e.message}`;
}

/**
 * GET (or HEAD) on any path: 200 `OK` or 500 with one line per failed check, as plain text; JSON
 * with every check for `?format=json` or `Accept: application/json`.
 */
export function healthHandler(check: Pick<HealthCheck, 'report'>) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    const url = new URL(req.url ?? '/', 'http://health');
    const json = url.searchParams.get('format') === 'json' || /\bapplication\/json\b/.test(req.headers.accept ?? '');
    void check.report().then((report) => {
      const status = report.ok ? 200 : 500;
      const headers = { 'Cache-Control': 'no-store' };
      if (json) {
        res.writeHead(status, { ...headers, 'Content-Type': 'application/json' }).end(JSON.stringify({ status: report.ok ? 'ok' : 'failing', checkedAt: report.checkedAt, checks: report.checks }));
      } else {
        const text = report.ok ? 'OK\n' : report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.reason}\n`).join('');
        res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' }).end(text);
      }
    });
  };
}
