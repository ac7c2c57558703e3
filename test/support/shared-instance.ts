/**
 * One local instance for all the parts of a test file. Booting an instance (test PKI, three servers
 * with their tokens, signers, proxies and admin APIs) is the slowest thing the suite does, so the
 * files that can live with the same options share one boot: the test file imports its parts
 * (`*.part.ts`, each with its own describe blocks, as it was when it was a file of its own) and calls
 * `shareLocalInstance` with the options the parts agree on; each part takes the instance in its
 * beforeAll with `await sharedLocalInstance()` (the first one boots it). The parts run in the order
 * they are imported, so a part that changes what others rely on (the provider's services, the
 * owner, a client's connection type) goes last and says so. vitest runs each test file in a process
 * of its own, so the instance lives in that process and the parts may use its in-process methods
 * and hooks.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startLocalInstance, type LocalInstance, type LocalInstanceOptions } from '../../src/dev/localinstance/local-instance.ts';
import type { ReceivedRequest } from '../../src/dev/testservices/test-services.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { freeLocalPorts } from './net.ts';

/** What a boot takes: a part's beforeAll that may be the first waits this long. */
export const BOOT_TIMEOUT_MS = 240_000;

export type SharedInstanceOptions = Pick<LocalInstanceOptions, 'layout' | 'proxyArgs'>;

let wanted: (SharedInstanceOptions & { readonly name: string }) | undefined;
let booting: Promise<LocalInstance> | undefined;
const listeners: ((r: ReceivedRequest) => void)[] = [];

/** Sets the options of the file's instance and closes it after the file's tests; call it once, at the top level of the test file. */
export function shareLocalInstance(name: string, options: SharedInstanceOptions = {}): void {
  wanted = { name, ...options };
  afterAll(async () => {
    const instance = await booting?.catch(() => undefined);
    await instance?.close();
    if (instance) rmSync(instance.dir, { recursive: true, force: true });
  });
}

/** The file's instance, booted by the first part that asks. */
export function sharedLocalInstance(): Promise<LocalInstance> {
  const options = wanted;
  if (!options) throw new Error('no shared local instance: the test file must call shareLocalInstance');
  booting ??= (async () =>
    startLocalInstance({
      layout: options.layout,
      proxyArgs: options.proxyArgs,
      dir: join(process.env.TMPDIR ?? '/tmp', `xrd-${options.name}-${process.pid}`),
      ports: await freeLocalPorts(),
      logger: silentLogger(),
      onServiceRequest: (r) => {
        for (const listener of listeners) listener(r);
      },
    }))();
  return booting;
}

/** The value the test file gave a proxy argument (`--max-message-bytes`): parts that depend on one read it here. */
export function sharedProxyArg(name: string): string {
  const args = wanted?.proxyArgs ?? [];
  const at = args.indexOf(name);
  if (at < 0 || at + 1 >= args.length) throw new Error(`the test file does not pass ${name} to the shared instance's proxies`);
  return args[at + 1]!;
}

/** Every request the test services get from now on is also pushed to `into`. */
export function recordServiceRequests(into: ReceivedRequest[]): void {
  listeners.push((r) => into.push(r));
}

/** A work folder of the part's own (`<tmp>/<name>-<pid>`), made before its tests and removed after them. */
export function partWorkFolder(name: string): string {
  const dir = join(process.env.TMPDIR ?? '/tmp', `${name}-${process.pid}`);
  beforeAll(() => void mkdirSync(dir, { recursive: true }));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
