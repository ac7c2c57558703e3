/**
 * The security server's OCSP endpoint for its peers (facts §4, port 5577 in the reference):
 * `GET /?cert=<sha1hex>&cert=…` answers with the cached responses as `multipart/related` parts of
 * type application/ocsp-response, in the order asked; certificates without a cached response are
 * left out (the peer counts: "Could not get all OCSP responses from server (expected X, but got Y)").
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { OcspCache } from './ocsp-cache.ts';

const MAX_CERTS_PER_REQUEST = 64;

export function ocspEndpointHandler(cache: OcspCache): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.method !== 'GET') return void res.writeHead(405, { Allow: 'GET' }).end();
    const hashes = new URL(req.url ?? '/', 'http://endpoint').searchParams.getAll('cert');
    if (hashes.length === 0 || hashes.length > MAX_CERTS_PER_REQUEST || !hashes.every((h) => /^[0-9a-fA-F]{40}$/.test(h))) {
      return void res.writeHead(400, { 'Content-Type': 'text/plain' }).end(`expected 1 to ${MAX_CERTS_PER_REQUEST} cert parameters, each a SHA-1 hex hash\n`);
    }
    const boundary = `xrd-${randomBytes(12).toString('hex')}`;
    const parts: Buffer[] = [];
    for (const hash of hashes) {
      const entry = cache.get(hash);
      if (!entry) continue;
      parts.push(Buffer.from(`--${boundary}\r\nContent-Type: application/ocsp-response\r\n\r\n`), entry.der, Buffer.from('\r\n'));
    }
    parts.push(Buffer.from(`--${boundary}--\r\n`));
    res.writeHead(200, { 'Content-Type': `multipart/related; type="application/ocsp-response"; boundary=${boundary}` }).end(Buffer.concat(parts));
  };
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
 * @throws Error when the content type names no boundary
 */
export function parseOcspMultipart(contentType: string, body: Buffer): Buffer[] {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!boundary) throw new Error(`no multipart boundary in "${contentType}"`);
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let pos = body.indexOf(delimiter);
  while (pos >= 0) {
    const next = body.indexOf(delimiter, pos + delimiter.length);
    if (next < 0) break;
    const part = body.subarray(pos + delimiter.length, next);
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd >= 0 && /content-type:\s*application\/ocsp-response/i.test(part.subarray(0, headerEnd).toString('latin1'))) {
      // The part's body ends before the CRLF that precedes the next delimiter.
      parts.push(part.subarray(headerEnd + 4, part.length - 2));
    }
    pos = next;
  }
  return parts;
}
