/**
 * The provider information system of the local instance: the test services the facts page (§9)
 * and seed 003 describe, on one HTTP port.
 *
 *   POST /                      SOAP: getRandom, helloService (namespace http://test.x-road.fi/producer)
 *   GET  /rest-test/random      {"randomNumber": 0..100}
 *   GET  /rest-test/hello?name= {"greeting": "Hello X! Greetings from adapter server!"}
 *   GET  /random, GET /hello    the same two, for a service URL without the /rest-test prefix
 *   GET  /wsdl, GET /rest-test/openapi.json   their service descriptions (descriptions.ts)
 *
 * Why both REST forms: the provider's security server calls the service URL configured for the
 * REST service (server configuration) with the path the client wrote after the service code
 * appended (`/r1/INST/CLASS/MEMBER/SUB/{code}/random` → `{serviceUrl}/random`). With service code
 * `rest-test` and service URL `http://127.0.0.1:PORT/rest-test`, or with service URL
 * `http://127.0.0.1:PORT` as the reference's own REST test service is deployed, the calls land on
 * a route here either way.
 *
 * `onRequest` shows a test what reached the provider (method, URL, headers, body) — the proof
 * that X-Road-Represented-Party and Authorization: Bearer pass both security servers intact.
 */
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger, type Logger } from '../../platform/logger.ts';
import { restTestOpenapi, testServicesWsdl } from './descriptions.ts';
import { answerSoap, fault, greeting, MAX_NAME_LENGTH, randomNumber } from './soap-service.ts';

export interface ReceivedRequest {
  readonly method: string;
  /** Path and query as the client sent them. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The request body as received (empty for GET). */
  readonly body: Buffer;
}

export interface TestServicesOptions {
  /** Loopback by default: the test services are for the local instance, not for a network. */
  host?: string;
  /** 0 (the default) picks a free port; `url` tells which. */
  port?: number;
  logger?: Logger;
  /** Called with every request before it is answered; an exception in it is logged, not answered. */
  onRequest?: (request: ReceivedRequest) => void;
  /** Largest request body accepted (bytes); larger ones get 413. Default 8 MiB. */
  maxBodyBytes?: number;
}

export interface TestServices {
  /** `http://host:port` (no trailing slash); the SOAP endpoint is `${url}/`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** A REST error body, in the shape X-Road's own REST errors have. */
interface RestError {
  type: string;
  message: string;
}

export async function startTestServices(options: TestServicesOptions = {}): Promise<TestServices> {
  const { host = '127.0.0.1', port = 0, logger = silentLogger(), onRequest, maxBodyBytes = 8 * 1024 * 1024 } = options;
  const app = Fastify({ logger: false, bodyLimit: maxBodyBytes, forceCloseConnections: 'idle', return503OnClosing: true });

  // Every body arrives as bytes: the SOAP handler parses XML itself (with the DTD-refusing
  // parser), and onRequest must see the body exactly as it was sent.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.addHook('preHandler', async (req) => {
    if (!onRequest) return;
    try {
      onRequest({ method: req.method, url: req.url, headers: req.headers, body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0) });
    } catch (err) {
      logger.warn({ err }, 'test services: onRequest callback failed');
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    logger.debug({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'test service call');
  });

  app.post('/', async (req, reply) => {
    const contentType = String(req.headers['content-type'] ?? '');
    if (!/^text\/xml\s*(;|$)/i.test(contentType)) {
      return sendSoap(reply, fault('Client', `Invalid content type ${contentType || '(none)'}: SOAP requests must be text/xml`));
    }
    return sendSoap(reply, answerSoap(req.body as Buffer));
  });

  const random = async () => ({ randomNumber: randomNumber() });
  const hello = async (req: FastifyRequest, reply: FastifyReply) => {
    const raw = (req.query as Record<string, string | string[] | undefined>).name;
    const name = Array.isArray(raw) ? raw[0] ?? '' : raw ?? '';
    if (name.length > MAX_NAME_LENGTH) {
      return reply.code(400).send({ type: 'ValidationError', message: `Name is too long. Max length is ${MAX_NAME_LENGTH} characters.` } satisfies RestError);
    }
    return { greeting: greeting(name) };
  };
  for (const prefix of ['', '/rest-test']) {
    app.get(`${prefix}/random`, random);
    app.get(`${prefix}/hello`, hello);
  }
  // The descriptions name the address this server answers at, known once it listens.
  let ownUrl = '';
  app.get('/wsdl', async (_req, reply) => reply.header('content-type', 'text/xml; charset=UTF-8').send(testServicesWsdl(ownUrl)));
  app.get('/rest-test/openapi.json', async () => restTestOpenapi(ownUrl));

  app.setNotFoundHandler(async (req, reply) => {
    reply.code(404);
    if (req.method === 'POST' && /^text\/xml/i.test(String(req.headers['content-type'] ?? ''))) {
      return sendSoap(reply, { ...fault('Client', `No SOAP endpoint at ${req.url}: send SOAP requests to /`), status: 404 });
    }
    return { type: 'NotFound', message: `No test service at ${req.method} ${req.url.split('?')[0]}` } satisfies RestError;
  });

  app.setErrorHandler(async (err: Error & { statusCode?: number }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) logger.error({ err, url: req.url }, 'test service failed');
    reply.code(status);
    if (req.method === 'POST' && req.url.split('?')[0] === '/') {
      return sendSoap(reply, { ...fault(status < 500 ? 'Client' : 'Server', err.message), status });
    }
    return { type: status < 500 ? 'BadRequest' : 'InternalError', message: err.message } satisfies RestError;
  });

  await app.listen({ host, port });
  const address = app.server.address() as AddressInfo;
  const hostInUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  ownUrl = `http://${hostInUrl}:${address.port}`;
  logger.info({ url: ownUrl }, 'test services listening');
  return {
    url: `http://${hostInUrl}:${address.port}`,
    port: address.port,
    close: () => app.close(),
  };
}

function sendSoap(reply: FastifyReply, answer: { status: number; xml: string }): FastifyReply {
  return reply.code(answer.status).header('content-type', 'text/xml; charset=UTF-8').send(answer.xml);
}
