/**
 * The local instance's clustered provider (`xrd local start --cluster`): ss1 as two nodes behind
 * HAProxy, as the reference's external load balancer guide (ig-xlb) sets one up. The nodes share one
 * server identity, authentication key and certificates — the second node's SoftHSM token and signer
 * configuration are copied from the first, as the reference copies the soft token and keyconf to its
 * secondaries (rsync of /etc/xroad/signer; a network HSM is the other way, and ours would be the same
 * PKCS#11 module pointed at it) — and one PostgreSQL database for the stores that live there. Each
 * node keeps its own message log, as each reference node does. Global configuration lists the
 * balancer's address as ss1's; HAProxy passes TLS through to the nodes (the reference requires TLS
 * passthrough: a node's auth key ends the TLS session) and asks each node's health check (5588)
 * every second which of them is up.
 */
import { spawn } from 'node:child_process';
import { cpSync, createWriteStream, lstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createConnection } from 'node:net';
import { join } from 'node:path';
import { XrdError } from '../../platform/errors.ts';
import type { Started } from './supervisor.ts';

/** How often HAProxy asks each node's health check, and after how many failures a node is out. */
export const BALANCER_CHECK = { intervalMs: 1000, fall: 2, rise: 2 } as const;

export interface BalancedNode {
  readonly name: string;
  readonly address: string;
  /** Its health check's port (on its address). */
  readonly healthPort: number;
}

export interface BalancedPort {
  readonly name: string;
  /** The port on the balancer's address and on every node's. */
  readonly port: number;
}

/**
 * Makes `to` a copy of the node in `from`: its signer folder (keyconf, OCSP cache — not its sockets)
 * and its SoftHSM token files, with the SoftHSM configuration pointed at the copy. Call it while
 * `from`'s signer is stopped, so that nothing is half-written.
 */
export function copyNode(from: string, to: string): void {
  mkdirSync(to, { recursive: true, mode: 0o700 });
  const notSocket = (src: string) => !lstatSync(src).isSocket();
  cpSync(join(from, 'signer'), join(to, 'signer'), { recursive: true, filter: notSocket });
  cpSync(join(from, 'softhsm'), join(to, 'softhsm'), { recursive: true, filter: notSocket });
  cpSync(join(from, 'devices.ini'), join(to, 'devices.ini'));
  const conf = join(to, 'softhsm', 'softhsm2.conf');
  writeFileSync(conf, readFileSync(conf, 'utf8').replaceAll(join(from, 'softhsm'), join(to, 'softhsm')), { mode: 0o600 });
}

/**
 * HAProxy's configuration: each port balanced over the nodes in TCP mode (TLS passed through),
 * health-checked on 5588; its state readable on `statsSocket` (`balancerState`).
 */
export function balancerConfig(address: string, ports: readonly BalancedPort[], nodes: readonly BalancedNode[], statsSocket: string): string {
  const { intervalMs, fall, rise } = BALANCER_CHECK;
  return [
    'global',
    '  log stdout format raw local0 info',
    `  stats socket ${statsSocket} mode 600 level user`,
    'defaults',
    '  mode tcp',
    '  log global',
    '  option tcplog',
    '  timeout connect 2s',
    // Longer than a service call may take (the proxies' 120 s).
    '  timeout client 130s',
    '  timeout server 130s',
    // A connection refused by a node that died before its health check failed goes to another node.
    '  retries 2',
    '  option redispatch',
    ...ports.flatMap((p) => [
      `listen ${p.name}`,
      `  bind ${address}:${p.port}`,
      '  balance roundrobin',
      // The reference's health check: HTTP 200 when the node can process messages, 500 (or nothing) when not.
      '  option httpchk GET /',
      '  http-check expect status 200',
      ...nodes.map((n) => `  server ${n.name} ${n.address}:${p.port} check port ${n.healthPort} inter ${intervalMs} fall ${fall} rise ${rise} on-marked-down shutdown-sessions`),
    ]),
    '',
  ].join('\n');
}

/**
 * Starts HAProxy in the foreground on `configFile` (its log beside it); ready once it accepts
 * connections on the first balanced port.
 */
export function startBalancer(configFile: string, address: string, firstPort: number, logFile: string): Started {
  const child = spawn('haproxy', ['-db', '-f', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const ready = new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + 15_000;
    const exited = (code: number | null) => reject(new XrdError('InternalError', { reason: `haproxy exited with ${code} (is the Debian package haproxy installed? see ${logFile})` }));
    child.once('exit', exited);
    child.once('error', (err) => reject(new XrdError('InternalError', { reason: `haproxy: ${err.message} (install the Debian package haproxy)` }, { cause: err })));
    const attempt = () => {
      const socket = connect(firstPort, address);
      socket.once('connect', () => {
        socket.destroy();
        child.off('exit', exited);
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new XrdError('InternalError', { reason: `haproxy did not listen on ${address}:${firstPort} within 15 s` }));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
  return { child, ready };
}

/**
 * What the balancer thinks of each node: `<listen name>/<node name>` → HAProxy's status (`UP`,
 * `DOWN`, `UP 1/2` while rising…), read from its stats socket (`show stat`).
 */
export function balancerState(statsSocket: string): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(statsSocket);
    let text = '';
    socket.setTimeout(5000, () => socket.destroy(new XrdError('NetworkError', { target: statsSocket, reason: 'no answer within 5 s' })));
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('error', reject);
    socket.on('connect', () => socket.write('show stat\n'));
    socket.on('end', () => {
      const [header = '', ...rows] = text.trim().split('\n');
      const columns = header.replace(/^# /, '').split(',');
      const [px, sv, status] = ['pxname', 'svname', 'status'].map((c) => columns.indexOf(c));
      const state: Record<string, string> = {};
      for (const row of rows) {
        const cells = row.split(',');
        if (cells[sv!] !== 'FRONTEND' && cells[sv!] !== 'BACKEND') state[`${cells[px!]}/${cells[sv!]}`] = cells[status!]!;
      }
      resolve(state);
    });
  });
}
