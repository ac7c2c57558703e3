/**
 * Both proxies' pipelines in memory (buildClientProxy, buildServerProxy) for fast tests of every
 * fault path: a small world (a consumer server hosting LOCAL/COM/2222/CLIENT, a provider server
 * hosting LOCAL/GOV/1111/PROVIDER with a SOAP service, a disabled one, a REST API and access rights),
 * and fakes of what lies outside the pipeline — the signer (a "signature" that is the digest of the
 * signed parts, which the fake verifier recomputes, so tampering is caught), the provider link (the
 * real wire format: the request encoded, handed to the provider's server proxy in memory, its answer
 * decoded as the client proxy decodes it), the provider's information system, the message log and
 * the clock. No listener, socket, token or local instance.
 */
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { GlobalConf, type SharedParameters } from '../../src/globalconf/global-conf.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { SpoolFolder, type Body, type Pieces } from '../../src/platform/spool.ts';
import { parseClientId, type ClientId } from '../../src/protocol/identifiers.ts';
import { decodeProxyMessage, encodeProxyMessage, signedPartsOf, type DecodedProxyMessage, type ProxyContent, type ProxySignature } from '../../src/protocol/proxy-message.ts';
import type { HeaderList } from '../../src/protocol/rest-message.ts';
import { buildClientProxy, type ClientProxyDeps } from '../../src/proxy/client/client-proxy.ts';
import type { IsConnection } from '../../src/proxy/client/is-authentication.ts';
import { RemoteFault } from '../../src/proxy/client/provider-link.ts';
import type { MessageSettings } from '../../src/proxy/shared/exchange.ts';
import type { MessageSigning } from '../../src/proxy/shared/member-signing.ts';
import { MessageRecorder } from '../../src/proxy/shared/message-recorder.ts';
import type { Clock, StageDurations } from '../../src/proxy/shared/pipeline.ts';
import { buildServerProxy, type ServerProxyDeps } from '../../src/proxy/server/server-proxy.ts';
import type { ServiceRequest, ServiceResponse } from '../../src/proxy/server/service-call.ts';
import type { OpMonitoringRecord } from '../../src/opmonitor/record.ts';
import type { LocalClient, ServerConf } from '../../src/serverconf/model.ts';
import { digestOf, type DigestSource } from '../../src/signature/digest-source.ts';

export const CLIENT = parseClientId('LOCAL/COM/2222/CLIENT');
export const SECURE_CLIENT = parseClientId('LOCAL/COM/2222/SECURE');
export const PROVIDER = parseClientId('LOCAL/GOV/1111/PROVIDER');
export const IS_CERT = Buffer.from('the information system certificate (DER)');

const client = (id: ClientId, extra: Partial<LocalClient> = {}): LocalClient => ({
  id,
  status: 'REGISTERED',
  connectionType: 'HTTP',
  isCerts: [],
  serviceDescriptions: [],
  endpoints: [],
  accessRights: [],
  localGroups: [],
  ...extra,
});

const right = (serviceCode: string, subject = 'LOCAL/COM/2222/CLIENT') => ({ subject, serviceCode, method: '*', path: '**', grantedAt: '2026-01-01T00:00:00Z' });

export const CONSUMER_CONF: ServerConf = {
  serverId: { instance: 'LOCAL', memberClass: 'COM', memberCode: '2222', serverCode: 'ss2' },
  clients: [client(parseClientId('LOCAL/COM/2222')), client(CLIENT), client(SECURE_CLIENT, { connectionType: 'HTTPS', isCerts: [IS_CERT] })],
  timestampingServices: [],
};

export const PROVIDER_CONF: ServerConf = {
  serverId: { instance: 'LOCAL', memberClass: 'GOV', memberCode: '1111', serverCode: 'ss1' },
  clients: [
    client(parseClientId('LOCAL/GOV/1111')),
    client(PROVIDER, {
      serviceDescriptions: [
        { id: 1, type: 'WSDL', url: 'http://provider.test/wsdl', disabled: false, refreshedAt: '2026-01-01T00:00:00Z', services: [{ code: 'getRandom', url: 'http://provider.test/soap', timeoutSeconds: 5 }, { code: 'private', url: 'http://provider.test/soap', timeoutSeconds: 5 }] },
        { id: 2, type: 'WSDL', url: 'http://provider.test/wsdl2', disabled: true, disabledNotice: 'out for maintenance', refreshedAt: '2026-01-01T00:00:00Z', services: [{ code: 'switchedOff', url: 'http://provider.test/soap', timeoutSeconds: 5 }] },
        { id: 3, type: 'REST', url: 'http://provider.test/rest', disabled: false, refreshedAt: '2026-01-01T00:00:00Z', services: [{ code: 'rest-test', url: 'http://provider.test/rest', timeoutSeconds: 5 }] },
      ],
      accessRights: [right('getRandom'), right('getRandom', 'LOCAL/COM/2222/SECURE'), right('switchedOff'), right('rest-test')],
    }),
  ],
  timestampingServices: [],
};

export function globalConf(): GlobalConf {
  const shared: SharedParameters = {
    instanceIdentifier: 'LOCAL',
    configurationVersion: 3,
    authCertHashAlgorithm: 'sha256',
    approvedCas: [],
    approvedTsas: [],
    members: [],
    securityServers: [],
    globalGroups: [],
    memberClasses: [],
    ocspFreshnessSeconds: 3600,
  };
  return new GlobalConf('LOCAL', new Map([['LOCAL', shared]]), undefined);
}

/** The fake signature: the SHA-256 of every signed part, in order, as text. */
function fakeSignature(parts: { message: Buffer | DigestSource; attachments?: readonly (Buffer | DigestSource)[] }): string {
  const all = [parts.message, ...(parts.attachments ?? [])];
  return `<fake-signature>${all.map((p) => digestOf(p, 'sha256').toString('hex')).join(',')}</fake-signature>`;
}

/** The signer as MemberSigning faces the proxies; `fail` makes it refuse as the signer would. */
export class FakeSigning implements MessageSigning {
  fail: XrdError | undefined;
  readonly signed: string[] = [];

  async sign(member: ClientId, message: Parameters<MessageSigning['sign']>[1], prefix: Parameters<MessageSigning['sign']>[2]) {
    this.signed.push(`${member.memberClass}/${member.memberCode}`);
    if (this.fail) throw this.fail.withPrefix(prefix);
    return { signatureXml: fakeSignature(message) };
  }
}

/** verifyMessage's fake: recomputes the fake signature over what arrived. */
export const fakeVerify: NonNullable<ClientProxyDeps['verify']> = (content: ProxyContent, signature: ProxySignature, _conf, _sender, prefix) => {
  const expected = fakeSignature(signedPartsOf(content));
  if (signature.signatureXml.toString() !== expected) throw new XrdError('InvalidSignatureValue', { reason: 'Signature is not valid' }).within('SignatureVerification').withPrefix(prefix);
  return undefined as never;
};

/** A message log that keeps what it is given, or refuses like a log whose timestamping failed too long. */
export class FakeMessageLog {
  fail: XrdError | undefined;
  readonly logged: { isResponse: boolean; side: string; queryId: string }[] = [];

  async log(record: { isResponse: boolean; side: 'client' | 'server'; queryId: string }): Promise<void> {
    if (this.fail) throw this.fail;
    this.logged.push({ isResponse: record.isResponse, side: record.side, queryId: record.queryId });
  }
}

/** The provider's information system: answers each call from `answer`. */
export type FakeService = (url: URL, request: ServiceRequest, body: Buffer) => { status: number; headers?: HeaderList; body?: Buffer | string } | Error;

async function collect(pieces: Pieces | undefined): Promise<Buffer> {
  if (!pieces) return Buffer.alloc(0);
  const out: Buffer[] = [];
  for (const p of pieces) out.push(Buffer.isBuffer(p) ? p : await bodyBytes(p));
  return Buffer.concat(out);
}

async function bodyBytes(body: Body): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body.stream()) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** An answer's bytes (and its bodies disposed of, as the HTTP binding does once it has gone out). */
export async function answerBytes(answer: { pieces: Pieces; done: () => void }): Promise<Buffer> {
  try {
    return await collect(answer.pieces);
  } finally {
    answer.done();
  }
}

export const FIXED_CLOCK_START = Date.UTC(2026, 11, 6, 12, 0, 0);

/** A clock that moves 1 ms every time it is read: stage durations and monitoring timestamps are then exact. */
export function steppingClock(): Clock {
  let ms = FIXED_CLOCK_START;
  const tick = () => ms++;
  return { wall: tick, monotonic: tick };
}

export interface Pipelines {
  readonly client: ReturnType<typeof buildClientProxy>;
  readonly server: ReturnType<typeof buildServerProxy>;
  readonly clientSigning: FakeSigning;
  readonly serverSigning: FakeSigning;
  readonly clientLog: FakeMessageLog;
  readonly serverLog: FakeMessageLog;
  readonly records: OpMonitoringRecord[];
  readonly stages: { side: string; durations: StageDurations }[];
  /** What the provider's information system answers. */
  service: FakeService;
  /** Replaces the link between the servers (e.g. a provider that cannot be reached). */
  link: ((encoded: { body: Buffer; headers: Record<string, string> }) => Promise<{ body: Buffer; contentType: string }>) | undefined;
  /** Changes the answer on its way back to the client proxy (an attacker or a broken provider). */
  tamper: ((answer: Buffer) => Buffer) | undefined;
  /** Whether the calling server's certificate passes the server proxy's check. */
  peerRefusal: XrdError | undefined;
  /** What the services were called with. */
  readonly serviceCalls: { url: string; method: string; body: string }[];
}

export function pipelines(options: { maxMessageBytes?: number; minClientVersion?: string } = {}): Pipelines {
  const settings: MessageSettings = { spool: SpoolFolder.MEMORY, maxSoapBytes: 1024 * 1024, faultCodes: 'camel', ...(options.maxMessageBytes !== undefined ? { maxMessageBytes: options.maxMessageBytes } : {}) };
  const records: OpMonitoringRecord[] = [];
  const stages: { side: string; durations: StageDurations }[] = [];
  const opMonitor = { store: (r: OpMonitoringRecord) => void records.push(r) };
  const observer = { observeStages: (side: string, durations: StageDurations) => void stages.push({ side, durations }) };
  const clientLog = new FakeMessageLog();
  const serverLog = new FakeMessageLog();
  const clientSigning = new FakeSigning();
  const serverSigning = new FakeSigning();
  const conf = globalConf();
  const state = {
    service: (() => ({ status: 200 })) as FakeService,
    link: undefined as Pipelines['link'],
    tamper: undefined as Pipelines['tamper'],
    peerRefusal: undefined as XrdError | undefined,
    serviceCalls: [] as Pipelines['serviceCalls'],
  };
  const serverDeps: ServerProxyDeps = {
    serverConf: () => PROVIDER_CONF,
    globalConf: () => conf,
    signing: serverSigning,
    peers: {
      verifyClient: () => {
        if (state.peerRefusal) throw state.peerRefusal;
      },
      admitClientServer: () => CONSUMER_CONF.serverId,
    },
    recorder: new MessageRecorder(serverLog as never, opMonitor, observer),
    logger: silentLogger(),
    settings,
    internalTls: () => {
      throw new XrdError('InternalError', { reason: 'no HTTPS services in these tests' });
    },
    clock: steppingClock(),
    verify: fakeVerify,
    ...(options.minClientVersion !== undefined ? { minClientVersion: options.minClientVersion } : {}),
    callService: async (url, request) => {
      const body = await collect(request.body);
      state.serviceCalls.push({ url: url.href, method: request.method, body: body.toString() });
      const answer = state.service(url, request, body);
      if (answer instanceof Error) throw answer;
      const bytes = Buffer.from(answer.body ?? '');
      const stream = Object.assign(Readable.from(bytes.length ? [bytes] : []), { complete: true });
      return { status: answer.status, reason: answer.status === 200 ? 'OK' : 'Error', headers: answer.headers ?? [], body: stream } as unknown as ServiceResponse;
    },
  };
  const server = buildServerProxy(serverDeps);

  /** The real link's job, in memory: encode, the provider's server proxy, decode as ProviderLink does. */
  const providers: ClientProxyDeps['providers'] = {
    async send(_target, request, kind): Promise<DecodedProxyMessage> {
      const encoded = encodeProxyMessage({ ...request, ocspResponses: [] });
      const body = await collect(encoded.pieces);
      let answer: { body: Buffer; contentType: string };
      if (state.link) answer = await state.link({ body, headers: { ...encoded.headers, 'content-type': encoded.contentType } });
      else {
        const served = await server.handle({ method: 'POST', headers: { ...encoded.headers, 'content-type': encoded.contentType }, body: Readable.from([body]), socket: {} as TLSSocket });
        answer = { body: await answerBytes(served), contentType: String(served.headers.find(([n]) => n === 'content-type')![1]) };
      }
      const bytes = state.tamper ? state.tamper(answer.body) : answer.body;
      let decoded: DecodedProxyMessage;
      try {
        decoded = await decodeProxyMessage(answer.contentType, bytes, { 'content-type': answer.contentType }, { direction: 'response', kind });
      } catch (err) {
        const e = err instanceof XrdError ? err : new XrdError('InternalError', { reason: String(err) });
        throw (['MissingSoap', 'MissingRest', 'MissingSignature', 'MessageTooLarge'].includes(e.code) ? e : e.within('ServiceFailed')).withPrefix('Server.ClientProxy');
      }
      if (decoded.fault) throw new RemoteFault(decoded.fault);
      return decoded;
    },
  };
  const clientProxy = buildClientProxy({
    serverConf: () => CONSUMER_CONF,
    globalConf: () => conf,
    signing: clientSigning,
    providers,
    recorder: new MessageRecorder(clientLog as never, opMonitor, observer),
    logger: silentLogger(),
    settings,
    clock: steppingClock(),
    verify: fakeVerify,
  });
  const result = { client: clientProxy, server, clientSigning, serverSigning, clientLog, serverLog, records, stages } as Pipelines;
  return Object.defineProperties(result, {
    service: { get: () => state.service, set: (v: FakeService) => (state.service = v) },
    link: { get: () => state.link, set: (v: Pipelines['link']) => (state.link = v) },
    tamper: { get: () => state.tamper, set: (v: Pipelines['tamper']) => (state.tamper = v) },
    peerRefusal: { get: () => state.peerRefusal, set: (v: XrdError | undefined) => (state.peerRefusal = v) },
    serviceCalls: { get: () => state.serviceCalls },
  });
}

/** An information system's request, in memory. */
export function isRequest(method: string, url: string, headers: Record<string, string>, body: Buffer | string = '', connection: IsConnection = { tls: false }) {
  const lower = Object.fromEntries(Object.entries(headers).map(([n, v]) => [n.toLowerCase(), v]));
  return {
    method,
    url,
    headers: lower,
    rawHeaders: Object.entries(headers).flat(),
    body: Readable.from(body.length ? [Buffer.from(body)] : []),
    connection: () => connection,
  };
}

export const SOAP_NS = 'xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:xrd="http://x-road.eu/xsd/xroad.xsd"';

export function soapHeader(opts: { client?: string; service?: string; id?: string; extra?: string } = {}): string {
  const [ci, cc, cm, cs] = (opts.client ?? 'LOCAL/COM/2222/CLIENT').split('/');
  const [si, sc, sm, ss, code] = (opts.service ?? 'LOCAL/GOV/1111/PROVIDER/getRandom').split('/');
  return (
    `<xrd:client id:objectType="SUBSYSTEM"><id:xRoadInstance>${ci}</id:xRoadInstance><id:memberClass>${cc}</id:memberClass><id:memberCode>${cm}</id:memberCode><id:subsystemCode>${cs}</id:subsystemCode></xrd:client>` +
    `<xrd:service id:objectType="SERVICE"><id:xRoadInstance>${si}</id:xRoadInstance><id:memberClass>${sc}</id:memberClass><id:memberCode>${sm}</id:memberCode><id:subsystemCode>${ss}</id:subsystemCode><id:serviceCode>${code}</id:serviceCode></xrd:service>` +
    `<xrd:id>${opts.id ?? 'q-1'}</xrd:id><xrd:protocolVersion>4.0</xrd:protocolVersion>${opts.extra ?? ''}`
  );
}

export function soapMessage(opts: Parameters<typeof soapHeader>[0] & { body?: string } = {}): string {
  const code = (opts.service ?? 'LOCAL/GOV/1111/PROVIDER/getRandom').split('/')[4];
  return `<SOAP-ENV:Envelope ${SOAP_NS}><SOAP-ENV:Header>${soapHeader(opts)}</SOAP-ENV:Header><SOAP-ENV:Body>${opts.body ?? `<ns:${code} xmlns:ns="urn:t"/>`}</SOAP-ENV:Body></SOAP-ENV:Envelope>`;
}

/** The provider's service answering a SOAP request: the request's header echoed, `<data>` in the body. */
export const echoingSoapService: FakeService = (_url, _request, body) => {
  const text = body.toString();
  const header = /<SOAP-ENV:Header>(.*)<\/SOAP-ENV:Header>/s.exec(text)![1]!;
  const code = /<id:serviceCode>([^<]*)</.exec(header)![1]!;
  return { status: 200, headers: [['content-type', 'text/xml; charset=UTF-8']], body: `<SOAP-ENV:Envelope ${SOAP_NS}><SOAP-ENV:Header>${header}</SOAP-ENV:Header><SOAP-ENV:Body><ns:${code}Response xmlns:ns="urn:t"><data>42</data></ns:${code}Response></SOAP-ENV:Body></SOAP-ENV:Envelope>` };
};

/** The fault code an answer carries: the SOAP fault's faultcode, or REST's X-Road-Error. */
export function faultCodeOf(answer: { headers: readonly (readonly [string, string])[] }, body: Buffer): string | undefined {
  const xroadError = answer.headers.find(([n]) => n.toLowerCase() === 'x-road-error');
  if (xroadError) return xroadError[1];
  return /<faultcode>([^<]*)<\/faultcode>/.exec(body.toString())?.[1];
}

