/** Loopback helpers for tests and benchmarks that start servers. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_LOCAL_PORTS, type LocalPorts } from '../../src/localinstance/local-instance.ts';

/** A loopback port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Every port of a local instance, each free now: test files with their own instances run side by side. */
export async function freeLocalPorts(): Promise<LocalPorts> {
  const ports: Record<string, number> = {};
  for (const name of Object.keys(DEFAULT_LOCAL_PORTS)) ports[name] = await freePort();
  return ports as unknown as LocalPorts;
}
