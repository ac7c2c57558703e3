/**
 * The security server's OCSP endpoint for its peers (facts §4, port 5577 in the reference):
 * `GET /?cert=<sha1hex>&cert=…` answers with the cached responses as `multipart/related` parts of
 * type application/ocsp-response, in the order asked; certificates without a cached response are
 * left out (the peer counts: "Could not get all OCSP responses from server (expected X, but got Y)").
 * Parameters other than `cert` are ignored (newer reference clients add `cert_hash`, SHA-256).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { MultipartError, boundaryOf, buildMultipart, parseMultipart } from '../protocol/multipart.ts';
import type { OcspCache } from './ocsp-cache.ts';

const MAX_CERTS_PER_REQUEST = 64;

export function ocspEndpointHandler(cache: OcspCache): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const hashes = parseOcspEndpointRequest(req, res);
    if (hashes) ocspMultipartReply(res, hashes.flatMap((hash) => cache.get(hash)?.der ?? []));
  };
}

/** The SHA-1 hashes a peer asks for, or undefined after answering HEAD (200) or a malformed request (405/400). */
export function parseOcspEndpointRequest(req: IncomingMessage, res: ServerResponse): string[] | undefined {
  // HEAD answers 200, as the reference's endpoint does: peers and monitoring use it to see it is up.
  if (req.method === 'HEAD') return void res.writeHead(200).end();
  if (req.method !== 'GET') return void res.writeHead(405, { Allow: 'GET, HEAD' }).end();
  const hashes = new URL(req.url ?? '/', 'http://endpoint').searchParams.getAll('cert');
  if (hashes.length === 0 || hashes.length > MAX_CERTS_PER_REQUEST || !hashes.every((h) => /^[0-9a-fA-F]{40}$/.test(h))) {
    return void res.writeHead(400, { 'Content-Type': 'text/plain' }).end(`expected 1 to ${MAX_CERTS_PER_REQUEST} cert parameters, each a SHA-1 hex hash\n`);
  }
  return hashes;
}

/** The found responses, in the order asked, as multipart/related application/ocsp-response parts. */
export function ocspMultipartReply(res: ServerResponse, responses: readonly Buffer[]): void {
  const boundary = `xrd-${randomBytes(12).toString('hex')}`;
  const parts = responses.map((der) => ({ headers: [['Content-Type', 'application/ocsp-response']] as [string, string][], body: der }));
  res.writeHead(200, { 'Content-Type': `multipart/related; type="application/ocsp-response"; boundary=${boundary}` }).end(buildMultipart(boundary, parts));
}

export function startOcspEndpoint(cache: OcspCache, host: string, port: number): Promise<Server> {
  const server = createServer(ocspEndpointHandler(cache));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

/**
 * The application/ocsp-response parts of a multipart/related body, in order.
 * @throws MultipartError when the content type names no boundary or the body is not multipart
 */
export function parseOcspMultipart(contentType: string, body: Buffer): Buffer[] {
  const boundary = boundaryOf(contentType);
  if (!boundary) throw new MultipartError(`no multipart boundary in "${contentType}"`);
  return parseMultipart(body, boundary)
    .filter((p) => (p.headers.get('content-type') ?? '').toLowerCase().startsWith('application/ocsp-response'))
    .map((p) => p.body);
}
