/**
 * Calls to a local instance server's admin REST API as its local administrator (the key with every
 * role that the instance prints at start), or with another key or none, over its self-signed HTTPS.
 */
import https from 'node:https';
import type { LocalInstance, LocalServer } from '../../src/dev/localinstance/local-instance.ts';
import { openServerConfStore, type AuditEntry } from '../../src/serverconf/store.ts';

/** The newest audit row of `action` in the server configuration's store in `proxyDataDir`. */
export async function lastAuditEntry(proxyDataDir: string, action: string): Promise<AuditEntry | undefined> {
  const store = await openServerConfStore(proxyDataDir);
  try {
    return (await store.auditLog({ limit: 1, action }))[0];
  } finally {
    await store.close();
  }
}

export interface AdminAnswer {
  readonly status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly json: any;
  /** The body as text (what a failed expectation shows). */
  readonly text: string;
}

/**
 * `body`: a Buffer is sent as application/octet-stream (certificates), a string as it is (malformed
 * JSON on purpose), anything else as JSON. `key`: the local administrator's unless given; null for none.
 */
export function adminApi(instance: LocalInstance, server: LocalServer, key: string | null = instance.apiKeyOf(server)): (method: string, path: string, body?: unknown) => Promise<AdminAnswer> {
  return (method, path, body) => {
    const url = new URL(`${server.adminUrl}${path}`);
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const contentType = Buffer.isBuffer(body) ? 'application/octet-stream' : 'application/json';
    return new Promise((resolvePromise, reject) => {
      const req = https.request(
        url,
        { method, rejectUnauthorized: false, headers: { ...(key ? { authorization: `X-Road-ApiKey token=${key}` } : {}), ...(payload ? { 'content-type': contentType, 'content-length': payload.length } : {}) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            resolvePromise({ status: res.statusCode ?? 0, text, json: text ? JSON.parse(text) : undefined });
          });
        },
      );
      req.on('error', reject);
      req.setTimeout(60_000, () => req.destroy(new Error('timeout')));
      req.end(payload);
    });
  };
}
