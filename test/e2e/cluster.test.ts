/**
 * A clustered provider (ig-xlb, the reference's external load balancer guide): ss1 as two nodes behind
 * HAProxy, sharing one server identity (a copied token) and a PostgreSQL database (operational
 * monitoring: one node's monitoring port shows what the other served), each with its own message
 * log — a PostgreSQL database of its own, or its SQLite file: the suite runs once with each; the
 * balancer health-checks each node's 5588. Under load from ss2's information system,
 * one node's proxy is killed (SIGKILL): calls keep succeeding once the balancer's check has had its
 * interval, every answered call has its log records on ss2 and on exactly one node of ss1, and the
 * killed node, started again by the supervisor, is back in the balancer's rotation.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { balancerState } from '../../src/dev/localinstance/cluster.ts';
import { startLocalInstance, type LocalInstance, type LocalServer } from '../../src/dev/localinstance/local-instance.ts';
import { messageLogLocation, openLogDatabase } from '../../src/messagelog/store.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { callClientProxy, restPath } from '../support/information-system.ts';
import { freeLocalPorts } from '../support/net.ts';
import { BOOT_TIMEOUT_MS } from '../support/shared-instance.ts';

/** How long a killed node stays down before the supervisor starts it again: longer than the balancer needs to see it gone. */
const RESTART_DELAY_MS = 4000;
const CALLERS = 6;

interface Call {
  readonly startedAt: number;
  readonly status: number | 'error';
  readonly queryId?: string;
}

/** Query ids of the records in a server's message log (request and response each count): each node's own database. */
async function loggedQueryIds(server: LocalServer): Promise<string[]> {
  const db = await openLogDatabase(messageLogLocation(join(server.proxyDataDir, 'messagelog.db'), instance.messageLogUrls.get(server)).database, { create: false });
  try {
    return (await db.all<{ query_id: string }>('SELECT query_id FROM message_record')).map((r) => r.query_id);
  } finally {
    await db.close();
  }
}

const count = (ids: string[], id: string) => ids.filter((x) => x === id).length;

let instance: LocalInstance;

// Each node's message log in a PostgreSQL database of its own, then in its messagelog.db: a node
// killed under load loses no committed record on either engine.
describe.each(['postgres', 'sqlite'] as const)('ig-xlb: a provider served by two nodes behind a load balancer, message logs on %s', (messageLog) => {
  beforeAll(async () => {
    instance = await startLocalInstance({
      cluster: true,
      messageLog,
      dir: join(process.env.TMPDIR ?? '/tmp', `xrd-cluster-${process.pid}-${messageLog}`),
      ports: await freeLocalPorts(),
      logger: silentLogger(),
      restartPolicy: { initialDelayMs: RESTART_DELAY_MS, maxDelayMs: RESTART_DELAY_MS, healthyAfterMs: 60_000 },
    });
  }, BOOT_TIMEOUT_MS);

  afterAll(async () => {
    await instance?.close();
    if (instance) rmSync(instance.dir, { recursive: true, force: true });
  });

  it('each node keeps its message log where it was told: a database of its own, or its messagelog.db', () => {
    for (const node of instance.providerNodes) expect(existsSync(join(node.proxyDataDir, 'messagelog.db')), node.name).toBe(messageLog === 'sqlite');
  });

  it('the nodes share ss1 and its address is the balancer: calls reach both nodes', async () => {
    expect(instance.providerNodes.map((n) => n.serverId)).toEqual([instance.provider.serverId, instance.provider.serverId]);
    expect(instance.balancer?.address).toBe('127.0.0.1');
    const answers = await Promise.all(Array.from({ length: 12 }, () => callClientProxy(instance, restPath(instance, 'rest-test/random'), { headers: { 'X-Road-Client': instance.clientIs.client } })));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    for (const node of instance.providerNodes) expect((await loggedQueryIds(node)).length, node.name).toBeGreaterThan(0);
    // One operational monitoring database for both nodes: node1's monitoring port shows what node2 served.
    const servedByNode2 = new Set(await loggedQueryIds(instance.providerNodes[1]!));
    await vi.waitFor(async () => {
      const answer = await fetch(`${instance.provider.monitoringUrl}/opmonitor?limit=1000`, { headers: { Authorization: `X-Road-ApiKey token=${instance.apiKeyOf(instance.provider)}` } });
      const { records } = (await answer.json()) as { records: { messageId?: string; securityServerType: string }[] };
      const seen = new Set(records.filter((r) => r.securityServerType === 'Producer').map((r) => r.messageId));
      expect([...servedByNode2].filter((id) => !seen.has(id))).toEqual([]);
    }, { timeout: 10_000, interval: 250 });
  });

  it('3.4 health check: one node killed under load — calls succeed again within the check interval, each answered call is logged, the node rejoins', async () => {
    const balancer = instance.balancer!;
    const loggedBefore = await Promise.all(instance.providerNodes.map(async (n) => (await loggedQueryIds(n)).length));
    const calls: Call[] = [];
    let loading = true;
    const caller = async () => {
      while (loading) {
        const startedAt = Date.now();
        try {
          const answer = await callClientProxy(instance, restPath(instance, 'rest-test/random'), { headers: { 'X-Road-Client': instance.clientIs.client } });
          const queryId = answer.headers.find(([name]) => name.toLowerCase() === 'x-road-id')?.[1];
          calls.push({ startedAt, status: answer.status, ...(queryId ? { queryId } : {}) });
        } catch {
          calls.push({ startedAt, status: 'error' });
        }
      }
    };
    const load = Promise.all(Array.from({ length: CALLERS }, caller));
    await new Promise((r) => setTimeout(r, 2000));
    // ss2 keeps its connections to the balancer open: the node they reach carries the load, and is the one killed.
    const carried = await Promise.all(instance.providerNodes.map(async (n, i) => (await loggedQueryIds(n)).length - loggedBefore[i]!));
    const victimIndex = carried.indexOf(Math.max(...carried));
    const victim = instance.providerNodes[victimIndex]!;

    const pid = instance.pids()[`${victim.name} proxy`]!;
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    // The balancer takes the node out (its health check refused), the supervisor starts it again
    // after RESTART_DELAY_MS, the balancer takes it back once its check has passed `rise` times.
    const nodeState = async () => Object.entries(await balancerState(balancer.statsSocket)).filter(([name]) => name.endsWith(`/node${victimIndex + 1}`)).map(([, status]) => status);
    const seen: string[] = [];
    const deadline = killedAt + RESTART_DELAY_MS + 30_000;
    for (;;) {
      const state = await nodeState();
      seen.push(state.join(' '));
      if (Date.now() > killedAt + RESTART_DELAY_MS && state.every((s) => s === 'UP')) break;
      if (Date.now() > deadline) throw new Error(`${victim.name} not back in the balancer after 30 s: ${seen.slice(-5).join(' | ')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(seen.some((s) => s.split(' ').every((x) => x.startsWith('DOWN')))).toBe(true);
    await new Promise((r) => setTimeout(r, 1000));
    loading = false;
    await load;

    // The balancer notices within its check interval × failures (and a connection refused meanwhile
    // is redispatched after HAProxy's 1 s retry delay); a call started later has nothing to fail on.
    const detected = killedAt + balancer.check.intervalMs * balancer.check.fall + 1500;
    const late = calls.filter((c) => c.startedAt > detected);
    expect(late.length).toBeGreaterThan(CALLERS * 5);
    expect(late.filter((c) => c.status !== 200)).toEqual([]);
    // Calls that fail at all are those that were on the killed node or started in the window.
    for (const failed of calls.filter((c) => c.status !== 200)) expect(failed.startedAt).toBeLessThanOrEqual(detected);

    // Every answered call has its request and response logged on ss2, and on exactly one node of ss1.
    const answered = calls.filter((c) => c.status === 200);
    expect(answered.every((c) => c.queryId !== undefined)).toBe(true);
    const consumerLog = await loggedQueryIds(instance.consumer);
    const nodeLogs = await Promise.all(instance.providerNodes.map(loggedQueryIds));
    for (const c of answered) {
      expect(count(consumerLog, c.queryId!), `ss2's log of ${c.queryId}`).toBe(2);
      expect(nodeLogs.map((ids) => count(ids, c.queryId!)).sort(), `ss1 nodes' logs of ${c.queryId}`).toEqual([0, 2]);
    }

    // The killed node answers its health check again.
    expect((await fetch(victim.healthUrl)).status).toBe(200);
  }, 120_000);
});
