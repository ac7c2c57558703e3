/**
 * Ports for tests and benchmarks whose servers must be told their port before they listen (child
 * processes of a local instance, the test PKI's services).
 *
 * Picking a port with `listen(0)` and releasing it raced: the kernel hands the same ephemeral range
 * to every other `listen(0)` and to every outgoing connection, and a CI run once failed with
 * EADDRINUSE when another test took a released port before the proxy listened. These ports lie
 * below Linux's ephemeral range (32768–60999 by default), which the kernel never gives out on its
 * own, and each vitest worker (`VITEST_POOL_ID`, unique among the files running at once) owns a
 * block of its own, so no two test files can pick the same port. Servers a test starts in-process
 * listen on port 0 and read their port back instead.
 */
import { createServer } from 'node:net';
import { DEFAULT_LOCAL_PORTS, type LocalPorts } from '../../src/localinstance/local-instance.ts';

const FIRST_PORT = 20_000;
const BLOCK_SIZE = 400;
/** Blocks that fit below the ephemeral range. */
const BLOCKS = Math.floor((32_768 - FIRST_PORT) / BLOCK_SIZE);

let handedOut = 0;

/** A port of this worker's block that nothing listens on now, never the same twice in one process. */
export async function freePort(): Promise<number> {
  const block = Number(process.env.VITEST_POOL_ID ?? 0) % BLOCKS;
  for (let tries = 0; tries < BLOCK_SIZE; tries++) {
    const port = FIRST_PORT + block * BLOCK_SIZE + (handedOut++ % BLOCK_SIZE);
    // A process of an earlier file on this worker (or of anything else) may still hold it.
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in block ${block} (${FIRST_PORT + block * BLOCK_SIZE}–${FIRST_PORT + (block + 1) * BLOCK_SIZE - 1})`);
}

/** On every address: the local instance listens on 127.0.0.1, .2 and .3. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Every port of a local instance: test files with their own instances run side by side. */
export async function freeLocalPorts(): Promise<LocalPorts> {
  const ports: Record<string, number> = {};
  for (const name of Object.keys(DEFAULT_LOCAL_PORTS)) ports[name] = await freePort();
  return ports as unknown as LocalPorts;
}
