/**
 * A strict peer for our client proxy: it stands where the provider's server proxy is published,
 * terminates TLS with the provider's authentication certificate (its key on the provider's HSM,
 * through the provider's signer), asks for the client's certificate, reads each request whole and
 * checks it as a reference server proxy checks it on receipt (reference-checks.ts — Python's email
 * package, xmldom and OpenSSL, never our decoder). It then forwards the exact bytes and headers
 * over mutual TLS to the provider's real server proxy, presenting the client server's
 * authentication certificate (its key on that server's HSM), checks the answer as a reference
 * client proxy reads it, and hands the answer back unchanged. Every violation is recorded with the
 * exchange it belongs to; a failure of the relay itself is one too.
 *
 * Only the hop-by-hop headers (Host, Connection, Keep-Alive, Transfer-Encoding, Content-Length) are
 * rewritten, since each side's body goes whole with its own Content-Length.
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { AuthTlsOptions } from '../../src/tls/auth-key-tls.ts';
import {
  checkRequestAsServerProxy,
  checkResponseAsClientProxy,
  type HeaderPairs,
  type RequestFacts,
  type ResponseFacts,
  type Violation,
  type WireRequest,
  type WireResponse,
} from './reference-checks.ts';

export interface RelayedExchange {
  readonly request: WireRequest;
  readonly requestFacts: RequestFacts;
  readonly response?: WireResponse;
  readonly responseFacts?: ResponseFacts;
  readonly violations: readonly Violation[];
}

export interface StrictRelayOptions {
  /** Where the provider's server proxy is published (its address in global configuration and the server proxy port). */
  readonly host: string;
  readonly port: number;
  /** The provider's authentication certificate with its key through its signer. */
  readonly tls: AuthTlsOptions;
  /** The provider's real server proxy, and the client server's TLS options for reaching it. */
  readonly upstream: { readonly host: string; readonly port: number; readonly tls: AuthTlsOptions };
  /** Bound on a request, a response and the wait for the upstream answer. Default 60 s, 64 MiB. */
  readonly timeoutMs?: number;
  readonly maxBytes?: number;
}

export interface StrictRelay {
  readonly exchanges: RelayedExchange[];
  /** Every violation of every exchange so far, each with the exchange's number. */
  violations(): (Violation & { exchange: number })[];
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']);

export async function startStrictRelay(options: StrictRelayOptions): Promise<StrictRelay> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  const exchanges: RelayedExchange[] = [];
  const agent = new https.Agent({ ...options.upstream.tls, keepAlive: true, maxCachedSessions: 0, rejectUnauthorized: false, checkServerIdentity: () => undefined } as https.AgentOptions);

  const relay = async (req: IncomingMessage, res: ServerResponse) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    let request: WireRequest = { method: req.method ?? '', headers: pairs(req.rawHeaders), body: Buffer.alloc(0), ...(peer?.raw ? { clientCert: Buffer.from(peer.raw) } : {}) };
    let requestFacts: RequestFacts = { partTypes: [], ocspResponses: [] };
    const violations: Violation[] = [];
    try {
      request = { ...request, body: await readWhole(req, maxBytes) };
      const checked = await checkRequestAsServerProxy(request);
      requestFacts = checked.facts;
      violations.push(...checked.violations);
      const response = await forward(agent, options.upstream, request, timeoutMs, maxBytes);
      const answered = await checkResponseAsClientProxy(response, requestFacts);
      violations.push(...answered.violations);
      exchanges.push({ request, requestFacts, response, responseFacts: answered.facts, violations });
      const headers = response.headers.filter(([n]) => !HOP_BY_HOP.has(n.toLowerCase()));
      res.writeHead(response.status, [...headers, ['content-length', String(response.body.length)]].flat());
      res.end(response.body);
    } catch (err) {
      violations.push({ rule: 'strict relay: the exchange completes', detail: (err as Error).message });
      exchanges.push({ request, requestFacts, violations });
      res.destroy();
    }
  };

  const server = https.createServer({ ...options.tls, requestCert: true, rejectUnauthorized: false, requestTimeout: timeoutMs }, (req, res) => void relay(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  if ((server.address() as AddressInfo).port !== options.port) throw new Error('strict relay: not on the published port');
  return {
    exchanges,
    violations: () => exchanges.flatMap((e, exchange) => e.violations.map((v) => ({ ...v, exchange }))),
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The request as it came (hop-by-hop headers aside), to the provider's server proxy; its answer whole. */
function forward(agent: https.Agent, upstream: StrictRelayOptions['upstream'], request: WireRequest, timeoutMs: number, maxBytes: number): Promise<WireResponse> {
  const headers: [string, string][] = [['Host', `${upstream.host}:${upstream.port}`], ...request.headers.filter(([n]) => !HOP_BY_HOP.has(n.toLowerCase())).map(([n, v]) => [n, v] as [string, string]), ['Content-Length', String(request.body.length)]];
  return new Promise((resolve, reject) => {
    const req = https.request({ host: upstream.host, port: upstream.port, method: request.method, path: '/', agent, headers: headers.flat() } as unknown as https.RequestOptions, (res) => {
      readWhole(res, maxBytes).then((body) => resolve({ status: res.statusCode ?? 0, headers: pairs(res.rawHeaders), body }), reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from the provider's server proxy within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(request.body);
  });
}

function readWhole(stream: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) stream.destroy(new Error(`more than ${maxBytes} bytes`));
      else chunks.push(c);
    });
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
    stream.on('aborted', () => reject(new Error('the message broke off')));
  });
}

const pairs = (raw: readonly string[]): HeaderPairs => {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
};
