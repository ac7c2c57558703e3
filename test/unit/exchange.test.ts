/**
 * sendAnswer (src/proxy/shared/exchange.ts) calls `done` — which removes the exchange's spool files —
 * once the answer has gone out or the connection broke, including when the caller hung up while the
 * answer was still being made (its close event came before sendAnswer listened for it).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { sendAnswer } from '../../src/proxy/shared/exchange.ts';

describe('sendAnswer', () => {
  const servers: http.Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  /** One call: the server answers once `whenToAnswer` resolves; the client hangs up after 20 ms when `clientGivesUp`. */
  async function exchange(whenToAnswer: (res: http.ServerResponse) => Promise<void>, clientGivesUp: boolean): Promise<{ done: number; body?: string }> {
    let done = 0;
    let answered!: () => void;
    const answeredPromise = new Promise<void>((resolve) => (answered = resolve));
    const server = http.createServer((req, res) => {
      req.resume();
      void whenToAnswer(res).then(() => {
        sendAnswer(res, 200, [['content-type', 'text/plain']], [Buffer.from('an '), Buffer.from('answer')], () => done++);
        answered();
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const body = await new Promise<string | undefined>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', headers: { 'content-length': '2' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString())).on('end', () => resolve(text));
      });
      req.on('error', () => resolve(undefined));
      req.end('ab');
      if (clientGivesUp) setTimeout(() => req.destroy(), 20);
    });
    await answeredPromise;
    await new Promise((resolve) => setTimeout(resolve, 20));
    return { done, ...(body !== undefined ? { body } : {}) };
  }

  it('answers and then calls done once', async () => {
    expect(await exchange(async () => undefined, false)).toEqual({ done: 1, body: 'an answer' });
  });

  it('calls done once when the caller hung up before the answer was ready', async () => {
    const gone = (res: http.ServerResponse) => new Promise<void>((resolve) => res.once('close', () => resolve()));
    expect(await exchange(gone, true)).toEqual({ done: 1 });
  });
});
