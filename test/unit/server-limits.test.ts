/**
 * What a client can hold open on our servers (src/platform/server-limits.ts): the client proxy, the
 * server proxy and the admin API, each started for real on loopback with small limits, against
 * clients that trickle their request or open connection after connection; and the same limits set
 * on the command line of `xrd proxy start` and `xrd admin start`. The servers' message
 * handling is not what is tested: their dependencies are stubs that a request cut short never
 * reaches (a request that completes gets a fault answer without them).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore } from '../../src/serverconf/api-keys.ts';
import { startAdminApi } from '../../src/admin/api-server.ts';
import type { ServerAdmin } from '../../src/admin/server-admin.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { PROXY_SERVER_LIMITS, serverLimits, serverTimeouts, type ServerLimits } from '../../src/platform/server-limits.ts';
import { SpoolFolder } from '../../src/platform/spool.ts';
import { startClientProxy, type ClientProxyDeps } from '../../src/proxy/client/client-proxy.ts';
import { startServerProxy, type ServerProxyDeps } from '../../src/proxy/server/server-proxy.ts';
import { ensureInternalTls } from '../../src/serverconf/internal-tls.ts';
import { freePort } from '../support/net.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-server-limits-'));
const tls = ensureInternalTls(join(dir, 'tls'));
/** Timeouts short enough for a test; Node's own default sweep (30 s) would not notice them in time. */
const QUICK: Partial<ServerLimits> = { headersTimeoutMs: 400, requestTimeoutMs: 800 };

const proxyDeps = {
  serverConf: () => undefined,
  // The server proxy checks its configuration before it reads a request.
  globalConf: () => ({ checkUpToDate: () => undefined }),
  recorder: { monitor: () => undefined },
  logger: silentLogger(),
  settings: { spool: new SpoolFolder(join(dir, 'spool'), { thresholdBytes: 1024 * 1024 }), maxSoapBytes: 1024 * 1024, faultCodes: 'camel' },
};

interface Client {
  readonly socket: Socket;
  /** Everything the server sent, once it has closed the connection. */
  readonly closed: Promise<string>;
}

/** A connection from `localAddress` (any of 127.0.0.0/8 on Linux), TLS when asked; resolves once connected. */
async function open(port: number, options: { tls?: boolean; localAddress?: string } = {}): Promise<Client> {
  const tcp = tcpConnect({ host: '127.0.0.1', port, localAddress: options.localAddress });
  const socket: Socket = options.tls ? tlsConnect({ socket: tcp, rejectUnauthorized: false }) : tcp;
  let received = '';
  socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(received)));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => {
    socket.once(options.tls ? 'secureConnect' : 'connect', () => resolve());
    // A connection the server closes at once (over a cap) may close before or after connecting.
    socket.once('close', () => resolve());
  });
  return { socket, closed };
}

/** Sends a request's head and then its body one byte every 50 ms, for as long as the connection lasts. */
function trickleRequest(client: Client, head: string): void {
  client.socket.write(head);
  const timer = setInterval(() => client.socket.write('x'), 50);
  void client.closed.then(() => clearInterval(timer));
}

/** A complete small request on `client`: the status line of the answer. */
function statusOf(client: Client): Promise<string> {
  return new Promise((resolve) => {
    client.socket.once('data', (c: Buffer) => resolve(c.toString('latin1').split('\r\n')[0]!));
    client.socket.write('GET /nothing HTTP/1.1\r\nHost: test\r\n\r\n');
  });
}

const SLOW_SOAP = 'POST / HTTP/1.1\r\nHost: test\r\nContent-Type: text/xml\r\nContent-Length: 1000000\r\n\r\n<';

describe('client proxy', () => {
  let ports: { http: number; https: number };
  let proxy: Awaited<ReturnType<typeof startClientProxy>>;
  beforeAll(async () => {
    const listen = { host: '127.0.0.1', httpPort: 0, httpsPort: 0, internalTls: () => tls, limits: { ...QUICK, maxConnections: 3, maxConnectionsPerAddress: 2 } };
    proxy = await startClientProxy(proxyDeps as unknown as ClientProxyDeps, listen);
    ports = { http: proxy.httpPort, https: proxy.httpsPort };
  });
  afterAll(() => proxy.close());

  it('slow-body connection to the client proxy is closed after the request timeout, over HTTP and HTTPS', async () => {
    for (const client of [await open(ports.http), await open(ports.https, { tls: true })]) {
      trickleRequest(client, SLOW_SOAP);
      // Node answers 408 when no answer has started; the connection is what must go.
      expect(await client.closed).toMatch(/^(HTTP\/1\.1 408|$)/);
    }
  });

  it('a client that never finishes its headers is closed after the headers timeout', async () => {
    const client = await open(ports.http);
    client.socket.write('POST / HTTP/1.1\r\nHost: te');
    expect(await client.closed).toMatch(/^(HTTP\/1\.1 408|$)/);
  });

  it('connections from one address past its cap are closed at once; another address and the first ones still get answers', async () => {
    const first = [await open(ports.http), await open(ports.http)];
    const third = await open(ports.http);
    expect(await third.closed).toBe('');
    const other = await open(ports.http, { localAddress: '127.0.0.2' });
    // A fourth open connection on this listener is past maxConnections, whatever its address.
    const fourth = await open(ports.http, { localAddress: '127.0.0.3' });
    expect(await fourth.closed).toBe('');
    for (const client of [...first, other]) expect(await statusOf(client)).toMatch(/^HTTP\/1\.1 [45]\d\d/);
    for (const client of [...first, other]) client.socket.destroy();
  });
});

describe('server proxy', () => {
  it('a slow body is closed after the request timeout; a peer address past its cap is closed before the TLS handshake', async () => {
    const proxy = await startServerProxy(proxyDeps as unknown as ServerProxyDeps, {
      host: '127.0.0.1',
      port: 0,
      tls: async () => ({ cert: tls.certPem, key: tls.keyPem }),
      limits: { ...QUICK, maxConnectionsPerAddress: 1 },
    });
    try {
      const slow = await open(proxy.port, { tls: true });
      trickleRequest(slow, 'POST / HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/mixed; boundary=b\r\nx-hash-algorithm: SHA-512\r\nContent-Length: 1000000\r\n\r\n-');
      const second = await open(proxy.port, { tls: true });
      expect([second.socket.readyState, await second.closed]).toEqual(['closed', '']);
      expect(await slow.closed).toMatch(/^(HTTP\/1\.1 408|$)/);
    } finally {
      await proxy.close();
    }
  });
});

describe('admin API', () => {
  it('slow headers and a slow body (from a caller with a valid key) are closed after their timeouts', async () => {
    const keys = new ApiKeyStore(join(dir, 'api-keys.json'));
    const { key } = keys.create(['XROAD_SYSTEM_ADMINISTRATOR']);
    const api = await startAdminApi({ admin: {} as ServerAdmin, keys, logger: silentLogger(), port: 0, limits: QUICK });
    const port = Number(new URL(api.url).port);
    try {
      const headers = await open(port);
      headers.socket.write('GET /api/v1/tokens HTTP/1.1\r\nHost: te');
      const body = await open(port);
      trickleRequest(body, `POST /api/v1/system/timestamping-services HTTP/1.1\r\nHost: test\r\nAuthorization: X-Road-ApiKey token=${key}\r\nContent-Type: application/json\r\nContent-Length: 40000\r\n\r\n{`);
      expect(await headers.closed).toMatch(/^(HTTP\/1\.1 408|$)/);
      expect(await body.closed).toMatch(/^(HTTP\/1\.1 408|$)/);
    } finally {
      await api.close();
    }
  });
});

describe('serverLimits and serverTimeouts', () => {
  it('keeps the defaults for what is not set, refuses what is not a positive whole number', () => {
    expect(serverLimits(PROXY_SERVER_LIMITS, { requestTimeoutMs: 1000, maxConnections: undefined })).toEqual({ ...PROXY_SERVER_LIMITS, requestTimeoutMs: 1000 });
    expect(() => serverLimits(PROXY_SERVER_LIMITS, { maxConnections: 0 })).toThrowError(expect.objectContaining({ code: 'InvalidConfiguration' }));
    expect(() => serverLimits(PROXY_SERVER_LIMITS, { headersTimeoutMs: 1.5 })).toThrowError(expect.objectContaining({ code: 'InvalidConfiguration' }));
  });

  it('the headers timeout is never longer than the request timeout, and the sweep runs at a quarter of it', () => {
    expect(serverTimeouts(serverLimits(PROXY_SERVER_LIMITS, { headersTimeoutMs: 60_000, requestTimeoutMs: 2_000 }))).toEqual({ headersTimeout: 2_000, requestTimeout: 2_000, keepAliveTimeout: 60_000, connectionsCheckingInterval: 500 });
    expect(serverTimeouts(PROXY_SERVER_LIMITS).connectionsCheckingInterval).toBe(5_000);
  });
});

describe('command line: the limits of the running servers', () => {
  const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');
  const LIMIT_FLAGS = ['--max-connections-per-address', '1', '--headers-timeout-seconds', '0.4'];

  /** Runs `xrd …` until it prints `ready`; the returned function stops it. */
  async function runUntil(args: string[], ready: string): Promise<() => Promise<void>> {
    const child = spawn('node', [XRD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    await new Promise<void>((resolvePromise, reject) => {
      child.stdout.on('data', (c: Buffer) => (out += c.toString()).includes(ready) && resolvePromise());
      void exited.then(() => reject(new Error(`xrd ${args.join(' ')} ended: ${out}${err}`)));
    });
    return async () => {
      child.kill('SIGTERM');
      await exited;
    };
  }

  /** A second connection from the same address is closed at once; the first, whose headers never end, at the headers timeout. */
  async function expectLimited(port: number, options: { tls?: boolean } = {}): Promise<void> {
    const first = await open(port, options);
    first.socket.write('GET / HTTP/1.1\r\nHost: te');
    const second = await open(port, options);
    expect(await second.closed).toBe('');
    expect(await first.closed).toMatch(/^(HTTP\/1\.1 408|$)/);
  }

  it('xrd proxy start: --max-connections-per-address and --headers-timeout-seconds hold on the client proxy, the server proxy and the OCSP endpoint for peers', async () => {
    const dataDir = join(dir, 'proxy-cli');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'serverconf.json'), JSON.stringify({ serverId: 'LOCAL/COM/1111/ss1', clients: [] }));
    const [http, https, server, ocsp, monitoring] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
    // No signer and no global configuration: the proxy starts all the same (docs/proxy.md).
    const stop = await runUntil(
      ['proxy', 'start', '--data-dir', dataDir, '--conf', join(dataDir, 'globalconf'), '--socket', join(dataDir, 'no-signer.sock'), '--client-address', '127.0.0.1', '--server-address', '127.0.0.1',
        '--http-port', String(http), '--https-port', String(https), '--server-port', String(server), '--ocsp-port', String(ocsp), '--monitoring-port', String(monitoring), '--health-port', '0', ...LIMIT_FLAGS],
      'proxy listening',
    );
    try {
      await expectLimited(http);
      await expectLimited(ocsp);
      // The server proxy closes the second connection before its TLS handshake.
      const first = await open(server);
      const second = await open(server);
      expect(await second.closed).toBe('');
      first.socket.destroy();
    } finally {
      await stop();
    }
  });

  it('xrd admin start: the same flags hold on the admin API', async () => {
    const dataDir = join(dir, 'admin-cli');
    const port = await freePort();
    const stop = await runUntil(['admin', 'start', '--data-dir', dataDir, '--conf', join(dataDir, 'globalconf'), '--socket', join(dataDir, 'no-signer.sock'), '--admin-port', String(port), ...LIMIT_FLAGS], 'admin API listening');
    try {
      await expectLimited(port, { tls: true });
    } finally {
      await stop();
    }
  });

  it('a limit that is not a positive number is refused before anything starts, naming the flag', () => {
    for (const [flag, value, expected] of [
      ['--max-connections', '0', 'whole number'],
      ['--max-connections-per-address', '2.5', 'whole number'],
      ['--request-timeout-seconds', 'soon', 'number of seconds'],
      ['--keep-alive-timeout-seconds', '0.0001', 'number of seconds'],
    ]) {
      const run = spawnSync('node', [XRD, 'proxy', 'start', '--data-dir', join(dir, 'refused'), '--json', flag!, value!]);
      expect([run.status, JSON.parse(run.stdout.toString()).error]).toEqual([1, expect.objectContaining({ code: 'InvalidConfiguration', message: `Invalid configuration: ${flag} must be a positive ${expected}, not ${value}` })]);
    }
  });
});
