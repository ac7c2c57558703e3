/**
 * HTTP servers on loopback (port 0) that answer the way an attacker or a broken peer would: one
 * trickles its answer a byte at a time for as long as the client stays, one floods an answer of any
 * size without a Content-Length. `answered` lets a server answer some requests properly (a
 * configuration source whose directory is fine and whose parts trickle).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HostileServer {
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
  /** Bytes of hostile answers written so far. */
  readonly sent: number;
  /** Requests whose hostile answer has ended (the client went away or the flood was all sent). */
  readonly ended: number;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => boolean;

/** Headers at once, then one byte every `everyMs` until the client goes away. */
export function startTrickler(contentType: string, options: { everyMs?: number; answered?: Handler } = {}): Promise<HostileServer> {
  return startHostile(options.answered, (res, count) => {
    res.writeHead(200, { 'Content-Type': contentType });
    const timer = setInterval(() => {
      count(1);
      res.write('x');
    }, options.everyMs ?? 20);
    return () => clearInterval(timer);
  });
}

/** `totalBytes` as fast as the client reads them, chunked (no Content-Length), until it goes away. */
export function startFlooder(contentType: string, totalBytes: number): Promise<HostileServer> {
  const chunk = Buffer.alloc(64 * 1024, 0x30);
  return startHostile(undefined, (res, count) => {
    res.writeHead(200, { 'Content-Type': contentType });
    let left = totalBytes;
    let stopped = false;
    const pump = (): void => {
      while (!stopped && left > 0) {
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= piece.length;
        count(piece.length);
        if (!res.write(piece)) return void res.once('drain', pump);
      }
      if (!stopped) res.end();
    };
    pump();
    return () => (stopped = true);
  });
}

async function startHostile(answered: Handler | undefined, answer: (res: ServerResponse, count: (bytes: number) => void) => () => void): Promise<HostileServer> {
  let sent = 0;
  let ended = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    if (answered?.(req, res)) return;
    const stop = answer(res, (bytes) => (sent += bytes));
    res.once('close', () => {
      stop();
      ended++;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get sent() {
      return sent;
    },
    get ended() {
      return ended;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
