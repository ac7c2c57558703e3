/**
 * The opencryptoki testbed: a second, independent PKCS#11 implementation (IBM's soft token) that,
 * unlike SoftHSM, counts wrong PINs and locks the token. Tests use it beside SoftHSM.
 *
 * opencryptoki keeps its state at fixed system paths (`/etc/opencryptoki`, `/var/lib/opencryptoki`,
 * `/run`, `/dev/shm`, System V shared memory) and needs its slot daemon, pkcsslotd, running. So each
 * testbed runs pkcsslotd in private mount, IPC and PID namespaces (root only), with those paths
 * bound to its own temporary directory, and serves the library from there with `p11-kit server` on
 * a Unix socket; tests load p11-kit's client module, which forwards every call to it unchanged.
 * Nothing outside the directory is touched, two testbeds run side by side, and the namespace's
 * processes end with its first process: when the testbed is cleaned up, or when the test process
 * dies (its stdin closes).
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { removeTestbedDir, type Testbed } from './testbed.ts';

/** Debian's multiarch library directory. */
const LIB = `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
const OPENCRYPTOKI_LIBRARY = `${LIB}/pkcs11/libopencryptoki.so`;
const SOFT_TOKEN_STDLL = `${LIB}/opencryptoki/stdll/libpkcs11_sw.so`;
const P11KIT_CLIENT = `${LIB}/pkcs11/p11-kit-client.so`;
const PKCSSLOTD = '/usr/sbin/pkcsslotd';

/** opencryptoki's factory SO PIN: C_InitToken checks the SO PIN given against it. */
export const OPENCRYPTOKI_SO_PIN = '87654321';

/** Soft-token slots per testbed, each its own token directory: tests initialise a token per case. */
const SLOTS = 12;

/** Starting pkcsslotd and p11-kit takes well under a second; this bounds a hung start. */
const START_TIMEOUT_MS = 20_000;

/** Why the opencryptoki testbed cannot run on this machine, or undefined when it can. */
export function opencryptokiUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux namespaces';
  if (process.getuid?.() !== 0) return 'needs root for private mount namespaces';
  if (![OPENCRYPTOKI_LIBRARY, SOFT_TOKEN_STDLL, PKCSSLOTD].every((p) => existsSync(p))) return 'opencryptoki is not installed (run scripts/bootstrap.sh)';
  if (!existsSync(P11KIT_CLIENT)) return 'p11-kit-modules is not installed (run scripts/bootstrap.sh)';
  return undefined;
}

/**
 * Runs as PID 1 of the namespaces: binds the private directories over opencryptoki's paths, starts
 * pkcsslotd and `p11-kit server`, says "ready", and holds everything until its stdin closes.
 * $1 = the testbed's opencryptoki root, $2 = library, $3 = server socket.
 */
const NAMESPACE_SCRIPT = String.raw`
set -e
root=$1
mount --bind "$root/etc" /etc/opencryptoki
mount --bind "$root/lib" /var/lib/opencryptoki
mount --bind "$root/run" /run
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
/usr/sbin/pkcsslotd
p11-kit server -f -n "$3" --provider "$2" 'pkcs11:' >/dev/null &
i=0
while [ ! -S "$3" ]; do
  i=$((i + 1)); [ $i -lt 400 ] || { echo 'p11-kit server did not start' >&2; exit 1; }
  sleep 0.05
done
echo ready
read -r _ || true
`;

/**
 * A throw-away opencryptoki with SLOTS empty soft-token slots, reached through p11-kit's client
 * module (`library`), whose P11_KIT_SERVER_ADDRESS is set in `env` and in process.env (the client
 * reads it when it is initialised, so before the library is loaded).
 */
export async function createOpencryptokiTestbed(): Promise<Testbed> {
  const unavailable = opencryptokiUnavailable();
  if (unavailable) throw new Error(`opencryptoki testbed: ${unavailable}`);
  const library = P11KIT_CLIENT;
  const dir = mkdtempSync(join(tmpdir(), 'xrd-test-ock-'));
  const root = join(dir, 'opencryptoki');
  const conf = ['version opencryptoki-3.1'];
  for (let slot = 0; slot < SLOTS; slot++) {
    // `tokname` gives each slot its own token directory (and lock and shared-memory names). Slots
    // that load one soft-token library share its login (a user login on one logs in all of them,
    // docs/hsm/opencryptoki.md), so each slot loads a copy of its own, as tokens of different
    // kinds do in a real installation.
    mkdirSync(join(root, 'lib', `tok${slot}`, 'TOK_OBJ'), { recursive: true });
    mkdirSync(join(root, 'run', 'lock', 'opencryptoki', `tok${slot}`), { recursive: true });
    const stdll = join(root, 'stdll', `libpkcs11_sw-${slot}.so`);
    mkdirSync(dirname(stdll), { recursive: true });
    copyFileSync(SOFT_TOKEN_STDLL, stdll);
    conf.push(`slot ${slot}`, '{', `stdll = ${stdll}`, `tokname = tok${slot}`, '}');
  }
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc', 'opencryptoki.conf'), conf.join('\n') + '\n');
  const socket = join(dir, 'p11-kit.sock');

  const child = spawn(
    'unshare',
    ['--mount', '--ipc', '--pid', '--mount-proc', '--kill-child=SIGKILL', '--propagation', 'private', 'sh', '-c', NAMESPACE_SCRIPT, 'sh', root, OPENCRYPTOKI_LIBRARY, socket],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      removeTestbedDir(dir);
      reject(new Error(`opencryptoki testbed: ${err.message} ${stderr}`.trim()));
    };
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`namespace exited with ${code}`)));
    child.stdout!.on('data', (d: Buffer) => {
      if (!d.toString().includes('ready')) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve();
    });
  });
  // Only the testbed's own ending should stop it; the pipes must not keep the test process alive.
  child.unref();
  for (const stream of [child.stdin!, child.stdout!, child.stderr!]) (stream as unknown as { unref?: () => void }).unref?.();

  const address = { P11_KIT_SERVER_ADDRESS: `unix:path=${socket}` };
  Object.assign(process.env, address);
  const devicesIni = join(dir, 'devices.ini');
  writeFileSync(devicesIni, `[opencryptoki]\nlibrary = ${library}\n`);
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  return {
    dir,
    dataDir,
    devicesIni,
    library,
    env: { ...process.env, ...address },
    cleanup: () => {
      // SIGKILL to unshare reaches the namespace's first process (--kill-child), and the kernel
      // then ends every process in the namespace; its mounts go with it.
      child.kill('SIGKILL');
      removeTestbedDir(dir);
    },
  };
}
