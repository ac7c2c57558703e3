/**
 * A security server's TLS side for test/softhsm/tls-*.test.ts, run as its own process (forked with
 * tsx, IPC for commands): the engine's signer calls block the event loop, so the signer must live
 * elsewhere, and the test builds this process's environment itself (no PIN in it). Servers echo
 * what they saw of the peer; clients report what they saw of the server.
 */
import { readFileSync } from 'node:fs';
import tls, { type TLSSocket } from 'node:tls';
import { authKeyTlsOptions, engineFailureOf, explainAuthHandshakeFailure, softwareKeyTlsOptions, type AuthKeyInfo } from '../../src/tls/auth-key-tls.ts';

export type Identity =
  | { kind: 'engine'; socket: string; authKey: AuthKeyInfo; timeoutMs?: number }
  | { kind: 'software'; keyPem: string; authKey: Omit<AuthKeyInfo, 'keyId'> };

export interface PeerInfo {
  subject: string;
  /** base64 DER */
  raw: string;
}

export type Command =
  | { op: 'listen'; identity: Identity; ca: string[]; rejectUnauthorized: boolean }
  | { op: 'connect'; identity: Identity; port: number; ca: string[]; extra?: tls.ConnectionOptions; timeoutMs?: number }
  | { op: 'serverLog' }
  | { op: 'explain'; socket: string; keyId: string; error?: string; timeoutMs?: number }
  | { op: 'self' }
  | { op: 'close' };

export interface ConnectResult {
  ok: boolean;
  error?: string;
  protocol?: string | null;
  cipher?: string;
  peer?: PeerInfo;
  answer?: string;
}

export interface ServerLog {
  sessions: { peer?: PeerInfo; said: string; cipher: string }[];
  errors: string[];
}

const servers: tls.Server[] = [];
const log: ServerLog = { sessions: [], errors: [] };

function options(identity: Identity) {
  return identity.kind === 'engine' ? authKeyTlsOptions(identity.socket, identity.authKey, { signerTimeoutMs: identity.timeoutMs }) : softwareKeyTlsOptions(identity.keyPem, identity.authKey);
}

function peerOf(socket: TLSSocket): PeerInfo | undefined {
  const cert = socket.getPeerX509Certificate();
  return cert ? { subject: cert.subject, raw: cert.raw.toString('base64') } : undefined;
}

async function listen(c: Extract<Command, { op: 'listen' }>): Promise<{ port: number }> {
  const server = tls.createServer({ ...options(c.identity), ca: c.ca, requestCert: true, rejectUnauthorized: c.rejectUnauthorized }, (socket) => {
    socket.once('data', (data) => {
      const peer = peerOf(socket);
      log.sessions.push({ peer, said: data.toString().trim(), cipher: socket.getCipher().name });
      socket.end(`server saw ${peer?.subject.replaceAll('\n', ', ') ?? 'no certificate'}\n`);
    });
    socket.on('error', () => undefined);
  });
  server.on('tlsClientError', (err) => log.errors.push(err.message));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port };
}

function connect(c: Extract<Command, { op: 'connect' }>): Promise<ConnectResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: ConnectResult) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(r);
    };
    // Auth certificates name a server, not a host: the trust layer checks them, not hostname rules.
    const socket = tls.connect({ ...options(c.identity), ca: c.ca, host: '127.0.0.1', port: c.port, checkServerIdentity: () => undefined, ...c.extra }, () => {
      const result = { protocol: socket.getProtocol(), cipher: socket.getCipher().name, peer: peerOf(socket) };
      socket.write('hello from the client\n');
      let answer = '';
      socket.on('data', (d) => (answer += d.toString()));
      socket.on('end', () => done({ ok: true, ...result, answer: answer.trim() }));
    });
    socket.setTimeout(c.timeoutMs ?? 10_000, () => done({ ok: false, error: 'timed out' }));
    socket.on('error', (err) => done({ ok: false, error: err.message }));
  });
}

async function handle(c: Command): Promise<unknown> {
  switch (c.op) {
    case 'listen':
      return listen(c);
    case 'connect':
      return connect(c);
    case 'serverLog':
      return log;
    case 'explain': {
      const e = await explainAuthHandshakeFailure(c.socket, c.keyId, c.error === undefined ? undefined : new Error(c.error), c.timeoutMs);
      return { code: e.code, message: e.message, engine: c.error === undefined ? undefined : engineFailureOf(new Error(c.error)) };
    }
    case 'self':
      return { pid: process.pid, env: process.env, argv: process.argv, execArgv: process.execArgv, maps: readFileSync('/proc/self/maps', 'utf8') };
    case 'close':
      for (const s of servers) s.close();
      setImmediate(() => process.exit(0));
      return {};
  }
}

process.on('message', (m: { id: number; command: Command }) => {
  handle(m.command).then(
    (result) => process.send!({ id: m.id, result }),
    (err: Error) => process.send!({ id: m.id, error: err.message }),
  );
});
