/**
 * The reference's proxy test harness (MessageTestCase, DummyService) on a local instance whose
 * members are the ones its test messages name — EE/BUSINESS/consumer on ss2, EE/BUSINESS/producer on
 * ss1 — so the files of ../shared/xroad-vectors/proxy-queries go through both security servers as
 * they are. As in the reference's harness, the information system POSTs a file chunked, `<xroad:id>`
 * in the request and the service's answer is replaced by one fresh id, and a dummy service answers
 * with the file a case names and records what it received.
 */
import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { startLocalInstance, type LocalInstance } from '../../src/dev/localinstance/local-instance.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { readSoapFault } from '../../src/protocol/faults.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { ensureInternalTls } from '../../src/serverconf/internal-tls.ts';
import { nextServiceDescriptionId } from '../../src/serverconf/changes.ts';
import type { LocalClient } from '../../src/serverconf/model.ts';
import { clientWithServices, type ServiceSpec } from '../../src/serverconf/serverconf-json.ts';
import { changeServerConfIn } from '../../src/serverconf/store.ts';
import type { LocalLayout } from '../../src/dev/testpki/local-layout.ts';
import { ocspEndpointFromSigner } from '../../src/proxy/endpoints/ocsp-endpoint.ts';
import { SignerClient, SignerConnection } from '../../src/signerapi/signer-client.ts';
import { authKeyTlsOptions } from '../../src/tls/auth-key-tls.ts';
import { authOf } from './local-peers.ts';
import { freeLocalPorts } from './net.ts';
import { VECTORS } from './vectors.ts';

export const QUERIES = join(VECTORS, 'proxy-queries');
export const query = (name: string): Buffer => readFileSync(join(QUERIES, name));

/** The members the reference's test messages name. */
export const EE_LAYOUT: LocalLayout = {
  memberClass: 'BUSINESS',
  memberClassDescription: 'Business',
  members: [
    { code: 'producer', name: 'Producer', subsystems: ['subsys2'] },
    { code: 'consumer', name: 'Consumer', subsystems: ['subsys1'] },
    { code: 'joining', name: 'Joining', subsystems: [] },
  ],
  provider: { owner: 'producer', clients: ['producer', 'producer/subsys2'] },
  consumer: { owner: 'consumer', clients: ['consumer', 'consumer/subsys1'] },
  joining: { owner: 'joining' },
};

export interface ServiceAnswer {
  /** A file of proxy-queries, or bytes. */
  readonly file?: string;
  readonly body?: Buffer;
  /** Default `text/xml; charset=UTF-8`; null sends none. */
  readonly contentType?: string | null;
  readonly status?: number;
  readonly headers?: Record<string, string>;
  /** Sends the headers with this Content-Length and closes without a body. */
  readonly abortWithLength?: number;
}

export interface ServiceRequest {
  /** The client certificate the caller presented over HTTPS (DER). */
  readonly clientCert?: Buffer;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  /** The body, unless the harness keeps only its digest (benchmarks of large messages). */
  readonly body: Buffer;
  readonly size: number;
  readonly sha512: Buffer;
}

export interface IsAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export class ProxyQueryHarness {
  private answer: ServiceAnswer = { file: 'getstate.answer' };
  private id = '';
  private ss2Tls: https.RequestOptions | undefined;
  readonly received: ServiceRequest[] = [];

  private constructor(
    readonly instance: LocalInstance,
    private readonly service: http.Server,
    private readonly secureService: https.Server,
    /** The dummy service's own TLS certificate (DER), self-signed. */
    readonly serviceCert: Buffer,
    /** The members of the instance (EE_LAYOUT unless a suite's vectors name others). */
    readonly layout: LocalLayout,
  ) {}

  get serviceUrl(): string {
    return `http://127.0.0.1:${(this.service.address() as AddressInfo).port}`;
  }

  /** The same dummy service over HTTPS; it asks for a client certificate and records it. */
  get secureServiceUrl(): string {
    return `https://127.0.0.1:${(this.secureService.address() as AddressInfo).port}`;
  }

  static async start(dir: string, proxyArgs: readonly string[] = [], options: { keepBodies?: boolean; layout?: LocalLayout } = {}): Promise<ProxyQueryHarness> {
    const layout = options.layout ?? EE_LAYOUT;
    let harness: ProxyQueryHarness | undefined;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      // The first 64 KiB (where the SOAP part is) are always kept, the rest only when asked to.
      const chunks: Buffer[] = [];
      let size = 0;
      const hash = createHash('sha512');
      req.on('data', (c: Buffer) => {
        hash.update(c);
        if (options.keepBodies !== false || size < 65_536) chunks.push(c);
        size += c.length;
      });
      req.on('end', () => harness!.serve(req, Buffer.concat(chunks), size, hash.digest(), res));
    };
    const tls = ensureInternalTls(serviceTlsDir(dir), 'dummy service');
    const service = http.createServer(handler);
    const secureService = https.createServer({ cert: tls.certPem, key: tls.keyPem, requestCert: true, rejectUnauthorized: false }, handler);
    await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => secureService.listen(0, '127.0.0.1', r));
    try {
      const instance = await startLocalInstance({ dir, instance: 'EE', layout, ports: await freeLocalPorts(), logger: silentLogger(), proxyArgs: ['--timestamping-interval', '1', ...proxyArgs] });
      harness = new ProxyQueryHarness(instance, service, secureService, Buffer.from(new X509Certificate(tls.certPem).raw), layout);
      return harness;
    } catch (err) {
      service.close();
      secureService.close();
      throw err;
    }
  }

  /** Stops everything and removes the instance's folder and the service's TLS folder beside it (a large-message run leaves ~0.8 GB). */
  async close(): Promise<void> {
    await this.instance.close();
    for (const s of [this.service, this.secureService]) await new Promise<void>((r) => s.close(() => r()));
    for (const dir of [this.instance.dir, serviceTlsDir(this.instance.dir)]) rmSync(dir, { recursive: true, force: true });
  }

  /**
   * The provider's services (all pointing at the dummy service unless a URL is given) and who may
   * call them; the consumer's clients connect over plain HTTP. Waits until both proxies have read it.
   */
  async configure(services: readonly (Partial<ServiceSpec> & { code: string; provider?: string })[], options: { providerIsCerts?: readonly Buffer[] } = {}): Promise<void> {
    const { instance } = this;
    const byProvider = new Map<string, ServiceSpec[]>();
    for (const s of services) {
      const provider = s.provider ?? 'producer';
      const conf: ServiceSpec = { type: 'SOAP', url: `${this.serviceUrl}/service`, timeoutSeconds: 10, allowed: ['EE/BUSINESS/consumer', 'EE/BUSINESS/consumer/subsys1'], ...s };
      byProvider.set(provider, [...(byProvider.get(provider) ?? []), conf]);
    }
    const clients = (owner: 'provider' | 'consumer'): LocalClient[] =>
      this.layout[owner].clients.reduce<LocalClient[]>(
        (done, c) => [...done, clientWithServices({ id: parseClientId(`EE/BUSINESS/${c}`), connectionType: 'HTTP', isCerts: owner === 'provider' ? (options.providerIsCerts ?? []) : [] }, owner === 'provider' ? (byProvider.get(c) ?? []) : [], nextServiceDescriptionId({ clients: done }))],
        [],
      );
    for (const [server, owner] of [[instance.provider, 'provider'], [instance.consumer, 'consumer']] as const) {
      // The server's id and its timestamping services stay as the local instance set them.
      await changeServerConfIn(server.proxyDataDir, { kind: 'system', name: 'test' }, 'SET_CLIENTS', (current) => ({ ...current!, clients: clients(owner) }));
    }
    // The proxies look at the store's revision at most once a second.
    await new Promise((r) => setTimeout(r, 1300));
  }

  /** What the dummy service answers from now on. */
  answerWith(answer: ServiceAnswer): void {
    this.answer = answer;
  }

  /** The information system's call: the file POSTed chunked, `<xroad:id>` fresh. */
  async send(file: string | Buffer, options: { contentType?: string; method?: string; headers?: Record<string, string>; bom?: boolean } = {}): Promise<IsAnswer> {
    this.id = randomBytes(16).toString('hex');
    let body = typeof file === 'string' ? withId(query(file), this.id) : file;
    if (options.bom) body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]);
    const target = new URL(this.instance.consumer.httpUrl);
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: target.hostname, port: target.port, path: '/', method: options.method ?? 'POST', headers: { 'content-type': options.contentType ?? 'text/xml; charset=UTF-8', ...options.headers } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.setTimeout(60_000, () => req.destroy(new Error('no answer within 60 s')));
      // Written, not passed to end(): chunked, as the reference's harness sends it.
      if (options.method === undefined || options.method === 'POST') req.write(body);
      req.end();
    });
  }

  /**
   * What a client proxy would send straight to ss1's server proxy (x-hash-algorithm as the
   * reference's harness sets it), over TLS as ss2 (its authentication certificate, key on its HSM)
   * or, `as: 'stranger'`, with `tls` of the caller's choosing.
   */
  async toServerProxy(file: string | Buffer, contentType: string, method = 'POST', options: { as?: 'ss2' | 'stranger'; tls?: https.RequestOptions } = {}): Promise<IsAnswer> {
    const body = typeof file === 'string' ? withId(query(file), randomBytes(16).toString('hex')) : file;
    const tls = options.as === 'stranger' ? (options.tls ?? {}) : (this.ss2Tls ??= (await authOf(this.instance.consumer)).tls);
    return new Promise((resolve, reject) => {
      const req = https.request(
        { ...tls, host: '127.0.0.1', port: this.instance.ports.serverProxy, path: '/', method, rejectUnauthorized: false, headers: { 'content-type': contentType, 'x-hash-algorithm': 'SHA-512' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        },
      );
      req.on('error', reject);
      req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
      if (method === 'POST') req.write(body);
      req.end();
    });
  }

  /**
   * Puts a stand-in where ss1's server proxy was (UsingDummyServerProxy): it presents ss1's
   * authentication certificate (key on ss1's HSM, through the signer) and answers every request
   * with `respond`. Stopping it starts ss1's proxy again.
   */
  async stubServerProxy(respond: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<() => Promise<void>> {
    const { instance } = this;
    await instance.stopProxy(instance.provider);
    const signer = await SignerClient.connect(instance.provider.signerSocket);
    const info = await signer.call('authKeyInfo', { serverId: instance.provider.serverId }).finally(() => signer.close());
    const stub = https.createServer({ ...authKeyTlsOptions(instance.provider.signerSocket, info), requestCert: true, rejectUnauthorized: false }, (req, res) => {
      req.resume();
      req.on('end', () => respond(req, res));
    });
    // Its OCSP endpoint too: the client proxy fetches the stand-in's OCSP responses from it.
    const connection = new SignerConnection(instance.provider.signerSocket, { timeoutMs: 10_000 });
    const ocsp = http.createServer(ocspEndpointFromSigner(connection));
    await new Promise<void>((r) => stub.listen(instance.ports.serverProxy, instance.provider.address, r));
    await new Promise<void>((r) => ocsp.listen(instance.ports.ocspEndpoint, instance.provider.address, r));
    return async () => {
      for (const server of [stub, ocsp]) {
        await new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        });
      }
      connection.close();
      await instance.startProxy(instance.provider);
    };
  }

  private serve(req: http.IncomingMessage, body: Buffer, size: number, sha512: Buffer, res: http.ServerResponse): void {
    const peer = (req.socket as TLSSocket).getPeerCertificate?.();
    this.received.push({ method: req.method ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body, size, sha512, ...(peer?.raw ? { clientCert: Buffer.from(peer.raw) } : {}) });
    const a = this.answer;
    const headers: Record<string, string> = { ...(a.contentType === null ? {} : { 'content-type': a.contentType ?? 'text/xml; charset=UTF-8' }), ...a.headers };
    if (a.abortWithLength !== undefined) {
      res.writeHead(a.status ?? 200, { ...headers, 'content-length': String(a.abortWithLength) });
      res.flushHeaders();
      setTimeout(() => res.socket?.destroy(), 50);
      return;
    }
    // The answer carries the id of the request the service got (the harness's sends all have one).
    const asked = /<xroad:id>([^<]*)<\/xroad:id>/.exec(body.subarray(0, 65_536).toString('latin1'))?.[1] ?? this.id;
    const out = a.file ? withId(query(a.file), asked) : (a.body ?? Buffer.alloc(0));
    res.writeHead(a.status ?? 200, { ...headers, 'content-length': String(out.length) });
    res.end(out);
  }
}

/** `<xroad:id>…</xroad:id>` (or an empty one) replaced by `id`, as the reference's harness does. */
export function withId(message: Buffer, id: string): Buffer {
  return Buffer.from(message.toString('latin1').replace(/<xroad:id>[^<]*<\/xroad:id>|<xroad:id\/>/g, `<xroad:id>${id}</xroad:id>`), 'latin1');
}

/** The SOAP fault's code and string, or undefined for a message that is not a fault. */
export function faultOf(body: Buffer): { code: string; string: string } | undefined {
  const fault = readSoapFault(body);
  return fault && { code: fault.faultCode, string: fault.faultString };
}

/** The dummy service's TLS certificate, beside the instance's folder (which the instance empties at start). */
function serviceTlsDir(dir: string): string {
  return join(dir, '..', `${basename(dir)}-service-tls`);
}
