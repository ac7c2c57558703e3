/** An OCSP responder on 127.0.0.1 for tests: answers each POSTed request with what `respond` returns. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from './net.ts';

export interface TestResponder {
  readonly url: string;
  /** Requests received so far. */
  readonly hits: number;
  close(): Promise<void>;
}

/** `respond` returning undefined leaves the request hanging (a slow responder). */
export async function startOcspResponder(respond: (request: Buffer) => Buffer | undefined): Promise<TestResponder> {
  let hits = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits++;
      let answer: Buffer | undefined;
      try {
        answer = respond(Buffer.concat(chunks));
      } catch (err) {
        res.writeHead(500).end(String(err));
        return;
      }
      if (!answer) return;
      res.writeHead(200, { 'Content-Type': 'application/ocsp-response' }).end(answer);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    get hits() {
      return hits;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * A URL on which nothing listens (a responder that is down): a port of this process's block
 * (support/net.ts), which no other process and no outgoing connection is given and which freePort
 * never hands out again, so nothing can start listening on it while the test runs.
 */
export async function deadUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}/`;
}
