/**
 * The proxy's monitoring listener: `GET /metrics` (Prometheus: the proxy's message metrics and the
 * signer's health, asked for at scrape time) and `GET /opmonitor?from=&to=&client=&service=&limit=`
 * (operational monitoring records as JSON, `{records: […]}` as the reference's payload).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MetricsRegistry } from '../opmonitor/metrics.ts';
import { PROMETHEUS_CONTENT_TYPE } from '../opmonitor/metrics.ts';
import type { OpMonitor } from '../opmonitor/op-monitor.ts';
import type { SignerMetrics } from '../opmonitor/proxy-metrics.ts';
import { toXrdError } from '../platform/errors.ts';
import type { SignerConnection } from '../signer/signer-client.ts';

export function monitoringHandler(deps: { registry: MetricsRegistry; signerMetrics: SignerMetrics; signer: SignerConnection; opMonitor: OpMonitor }) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://monitoring');
    if (req.method !== 'GET') return void res.writeHead(405, { Allow: 'GET' }).end();
    if (url.pathname === '/metrics') {
      deps.signerMetrics
        .refresh(() => deps.signer.call('health', {}, { timeoutMs: 2000 }))
        .then(() => res.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE }).end(deps.registry.text()))
        .catch((err: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${toXrdError(err).message}\n`));
      return;
    }
    if (url.pathname === '/opmonitor') {
      try {
        const q = url.searchParams;
        // Unix ms, or an ISO date.
        const time = (name: string) => {
          const v = q.get(name);
          return v === null ? undefined : /^\d+$/.test(v) ? Number(v) : Date.parse(v);
        };
        const records = deps.opMonitor.query({
          from: time('from'),
          to: time('to'),
          client: q.get('client') ?? undefined,
          service: q.get('service') ?? undefined,
          limit: q.has('limit') ? Number(q.get('limit')) : undefined,
        });
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ records }));
      } catch (err) {
        const e = toXrdError(err);
        res.writeHead(e.httpStatus, { 'Content-Type': 'application/json' }).end(JSON.stringify({ type: e.faultCode, message: e.message }));
      }
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('GET /metrics or /opmonitor\n');
  };
}
