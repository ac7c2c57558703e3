/**
 * bench:proxy's floor: a bare forwarder with the security servers' hop shape and nothing else — no
 * signing, verification, logging or X-Road parsing. `node bench-forwarder.mjs client|server <port>
 * <target> <certFile> <keyFile> [stream]`: the client side takes plain HTTP and forwards over
 * kept-alive mutual TLS 1.2; the server side takes mutual TLS and forwards over kept-alive HTTP.
 * With `stream` (bench:large's floor) bodies are piped through instead of read whole. Tells the
 * parent "ready" over IPC once listening.
 */
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';

const [side, port, target, certFile, keyFile, mode] = process.argv.slice(2);
const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile), rejectUnauthorized: false };
const outbound = side === 'client' ? https : http;
const agent = side === 'client' ? new https.Agent({ keepAlive: true, maxSockets: 256, ...tls }) : new http.Agent({ keepAlive: true, maxSockets: 256 });

function readAll(stream, done) {
  const chunks = [];
  stream.on('data', (c) => chunks.push(c));
  stream.on('end', () => done(Buffer.concat(chunks)));
}

function forward(req, res) {
  readAll(req, (body) => {
    const out = outbound.request(target, { method: req.method, agent, headers: { 'content-type': req.headers['content-type'], 'content-length': body.length } }, (answer) =>
      readAll(answer, (reply) => {
        res.writeHead(answer.statusCode, { 'content-type': answer.headers['content-type'], 'content-length': reply.length });
        res.end(reply);
      }),
    );
    out.on('error', () => res.writeHead(502).end());
    out.end(body);
  });
}

/** Bodies piped through as they come, with their Content-Type: what any Node forwarder of large messages needs. */
function stream(req, res) {
  const out = outbound.request(target, { method: req.method, agent, headers: { 'content-type': req.headers['content-type'] } }, (answer) => {
    res.writeHead(answer.statusCode, { 'content-type': answer.headers['content-type'] });
    answer.pipe(res);
  });
  out.on('error', () => res.writeHead(502).end());
  req.pipe(out);
}

const handler = mode === 'stream' ? stream : forward;
const server = side === 'client' ? http.createServer(handler) : https.createServer({ ...tls, requestCert: true, maxVersion: 'TLSv1.2' }, handler);
server.keepAliveTimeout = 60_000;
server.listen(Number(port), '127.0.0.1', () => process.send('ready'));
