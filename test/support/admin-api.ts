/**
 * Calls to a local instance server's admin REST API as its local administrator (the key with every
 * role that the instance prints at start), over its self-signed HTTPS.
 */
import https from 'node:https';
import type { LocalInstance, LocalServer } from '../../src/localinstance/local-instance.ts';

export interface AdminAnswer {
  readonly status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly json: any;
}

/** `body`: JSON, or a Buffer sent as application/octet-stream (certificates). */
export function adminApi(instance: LocalInstance, server: LocalServer): (method: string, path: string, body?: unknown) => Promise<AdminAnswer> {
  return (method, path, body) => {
    const url = new URL(`${server.adminUrl}${path}`);
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const contentType = Buffer.isBuffer(body) ? 'application/octet-stream' : 'application/json';
    return new Promise((resolvePromise, reject) => {
      const req = https.request(
        url,
        { method, rejectUnauthorized: false, headers: { authorization: `X-Road-ApiKey token=${instance.apiKeyOf(server)}`, ...(payload ? { 'content-type': contentType, 'content-length': payload.length } : {}) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            resolvePromise({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined });
          });
        },
      );
      req.on('error', reject);
      req.setTimeout(60_000, () => req.destroy(new Error('timeout')));
      req.end(payload);
    });
  };
}
