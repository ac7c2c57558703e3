/**
 * The proxy's monitoring listener: `GET /metrics` (Prometheus: the proxy's message metrics and the
 * signer's health, asked for at scrape time) and `GET /opmonitor?from=&to=&client=&service=&limit=`
 * (operational monitoring records as JSON, `{records: […]}` as the reference's payload).
 *
 * Both answer only to an admin API key (`Authorization: X-Road-ApiKey token=<key>`, the keys of
 * `<data dir>/admin/api-keys.json`) with a role the reference gives its diagnostics view:
 * system administrator or security server observer. The records name every organisation's calls,
 * and the metrics count them by service; the reference gives a client only the records it is party
 * to and all of them only to the server's owner and the central monitoring client, and this port
 * knows no X-Road client, only the server's administrators. docs/opmonitor.md "Access".
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { API_KEY_SCHEME, ApiKeyStore, authenticateHeader, requireRole, type Role } from '../../serverconf/api-keys.ts';
import type { MetricsRegistry } from '../../opmonitor/metrics.ts';
import { PROMETHEUS_CONTENT_TYPE } from '../../opmonitor/metrics.ts';
import type { OpMonitor } from '../../opmonitor/op-monitor.ts';
import type { SignerMetrics } from '../../opmonitor/proxy-metrics.ts';
import { toXrdError } from '../../platform/errors.ts';
import type { SignerConnection } from '../../signerapi/signer-client.ts';

/** The reference's `diagnostics` permission (its admin service's permissions.yml). */
export const MONITORING_ROLES: readonly Role[] = ['XROAD_SYSTEM_ADMINISTRATOR', 'XROAD_SECURESERVER_OBSERVER'];

export interface MonitoringDeps {
  readonly registry: MetricsRegistry;
  readonly signerMetrics: SignerMetrics;
  readonly signer: SignerConnection;
  readonly opMonitor: OpMonitor;
  /** The admin API's key file (`apiKeysFile(dataDir)`), re-read when the CLI or the API changes it. */
  readonly apiKeysFile: string;
}

export function monitoringHandler(deps: MonitoringDeps) {
  // Opened at the first request: a broken key file then answers a coded 500 instead of keeping the proxy from starting.
  let keys: ApiKeyStore | undefined;
  const authorize = (req: IncomingMessage, route: string) => {
    keys ??= new ApiKeyStore(deps.apiKeysFile);
    requireRole(authenticateHeader(keys, req.headers.authorization), MONITORING_ROLES, route);
  };
  const fail = (res: ServerResponse, err: unknown) => {
    const e = toXrdError(err);
    // A refusal or a bad query is the caller's fault: Client.ApiKeyMissing, Client.InvalidRequest, …
    const coded = e.httpStatus < 500 ? e.withPrefix('Client') : e;
    res
      .writeHead(e.httpStatus, { 'Content-Type': 'application/json', ...(e.httpStatus === 401 ? { 'WWW-Authenticate': API_KEY_SCHEME } : {}) })
      .end(JSON.stringify({ type: coded.faultCode, message: coded.message }));
  };

  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://monitoring');
    if (req.method !== 'GET') return void res.writeHead(405, { Allow: 'GET' }).end();
    if (url.pathname !== '/metrics' && url.pathname !== '/opmonitor') {
      return void res.writeHead(404, { 'Content-Type': 'text/plain' }).end('GET /metrics or /opmonitor\n');
    }
    try {
      authorize(req, `GET ${url.pathname}`);
    } catch (err) {
      return fail(res, err);
    }
    if (url.pathname === '/metrics') {
      deps.signerMetrics
        .refresh(() => deps.signer.call('health', {}, { timeoutMs: 2000 }))
        .then(() => res.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE }).end(deps.registry.text()))
        .catch((err: unknown) => fail(res, err));
      return;
    }
    void (async () => {
      const q = url.searchParams;
      // Unix ms, or an ISO date.
      const time = (name: string) => {
        const v = q.get(name);
        return v === null ? undefined : /^\d+$/.test(v) ? Number(v) : Date.parse(v);
      };
      const records = await deps.opMonitor.query({
        from: time('from'),
        to: time('to'),
        client: q.get('client') ?? undefined,
        service: q.get('service') ?? undefined,
        limit: q.has('limit') ? Number(q.get('limit')) : undefined,
      });
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ records }));
    })().catch((err: unknown) => fail(res, err));
  };
}
