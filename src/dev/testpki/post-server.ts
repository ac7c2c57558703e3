/** An HTTP server on host:port that answers every POST body with `answer(body)` as `contentType`. */
import { createServer, type Server } from 'node:http';

export function startPostServer(answer: (body: Buffer) => Buffer, contentType: string, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'POST') return void res.writeHead(405, { Allow: 'POST' }).end();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.writeHead(200, { 'Content-Type': contentType }).end(answer(Buffer.concat(chunks))));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
