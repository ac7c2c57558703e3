/**
 * Ports for tests and benchmarks whose servers must be told their port before they listen (child
 * processes of a local instance, the test PKI's services).
 *
 * Picking a port with `listen(0)` and releasing it raced: the kernel hands the same ephemeral range
 * to every other `listen(0)` and to every outgoing connection, and a CI run once failed with
 * EADDRINUSE when another test took a released port before the proxy listened. These ports lie
 * below Linux's ephemeral range (32768–60999 by default), which the kernel never gives out on its
 * own, and each test process owns a block of its own: it claims the block by listening on the
 * block's first port for as long as it lives, so the kernel itself keeps two processes running at
 * once (vitest runs files in parallel forks) out of each other's blocks, and a process that dies
 * releases its block with no lock file to clean up. Servers a test starts in-process listen on
 * port 0 and read their port back instead.
 */
import { createServer } from 'node:net';
import { DEFAULT_LOCAL_PORTS, type LocalPorts } from '../../src/dev/localinstance/local-instance.ts';

const FIRST_PORT = 20_000;
const BLOCK_SIZE = 400;
/** Blocks that fit below the ephemeral range. */
const BLOCKS = Math.floor((32_768 - FIRST_PORT) / BLOCK_SIZE);

let handedOut = 0;
let claimed: Promise<number> | undefined;

/** A port of this process's block that nothing listens on now, never the same twice in one process. */
export async function freePort(): Promise<number> {
  claimed ??= claimBlock();
  const first = await claimed;
  for (let tries = 0; tries < BLOCK_SIZE - 1; tries++) {
    const port = first + 1 + (handedOut++ % (BLOCK_SIZE - 1));
    // A child process of an earlier test in this process (or anything else) may still hold it.
    if (await canListen(port, true)) return port;
  }
  throw new Error(`no free port in the block at ${first}`);
}

/** The first port of a block no other running process holds, held by this one until it exits. */
async function claimBlock(): Promise<number> {
  // Start where this process's id points, so processes starting together rarely try the same blocks.
  for (let i = 0; i < BLOCKS; i++) {
    const port = FIRST_PORT + ((process.pid + i) % BLOCKS) * BLOCK_SIZE;
    if (await canListen(port, false)) return port;
  }
  throw new Error('every block of test ports is held by another process');
}

/** On every address (the local instance listens on 127.0.0.1, .2 and .3); `release` false keeps it. */
function canListen(port: number, release: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => {
      if (!release) {
        // Held, not waited on: the process may end whenever it is done.
        server.unref();
        return resolve(true);
      }
      server.close(() => resolve(true));
    });
  });
}

/** Every port of a local instance: test files with their own instances run side by side. */
export async function freeLocalPorts(): Promise<LocalPorts> {
  const ports: Record<string, number> = {};
  for (const name of Object.keys(DEFAULT_LOCAL_PORTS)) ports[name] = await freePort();
  return ports as unknown as LocalPorts;
}
