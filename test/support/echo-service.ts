/**
 * A provider information system for SOAP packages (SOAP with attachments, MTOM), which the local
 * instance's test services do not take: it answers every POST with the request itself — same
 * Content-Type, same bytes — and records what it received. An echoed envelope is a valid X-Road
 * response (same client, service, id, userId and issue; the body element still starts with the
 * service code), so the provider's server proxy signs it and the package comes back whole.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface EchoedRequest {
  readonly method: string;
  readonly url: string;
  /** Header names as sent. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Buffer;
}

export interface EchoService {
  /** `http://127.0.0.1:port` */
  readonly url: string;
  readonly received: EchoedRequest[];
  close(): Promise<void>;
}

export async function startEchoService(): Promise<EchoService> {
  const received: EchoedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers: [string, string][] = [];
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
      received.push({ method: req.method ?? '', url: req.url ?? '', headers, body });
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'text/xml; charset=UTF-8', 'content-length': body.length });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
