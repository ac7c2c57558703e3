/**
 * What the benchmark scripts read of another process and call through the client proxy: its CPU
 * time so far (/proc/<pid>/stat, all threads), the whole machine's (/proc/stat), one getRandom
 * call over a kept-alive agent, and the warm-up before a measured load.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';

/** Clock ticks per second of utime and stime (USER_HZ; 100 on Linux, asked rather than assumed). */
const CLOCK_TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** User plus system CPU time of a process (all its threads) so far, ms (/proc/<pid>/stat fields 14 and 15). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
}

/** The machine's CPU time so far over all cores, ms: busy (user, system, interrupts), idle, idle while waiting for I/O, and stolen by the hypervisor. */
export function machineCpuMs(): { busy: number; idle: number; iowait: number; steal: number } {
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest time is inside user).
  const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number) as number[];
  const ms = (ticks: number) => (ticks * 1000) / CLOCK_TICKS_PER_S;
  return { busy: ms(user! + nice! + system! + irq! + softirq!), idle: ms(idle!), iowait: ms(iowait!), steal: ms(steal ?? 0) };
}

/**
 * A few calls from each of `concurrency` clients at once (at least 50 in all; a failed one is only
 * a warm-up call), so that every client's connection is open and nothing measured afterwards pays
 * for it. At the load's own concurrency: calls made one at a time cost the proxies several times
 * the CPU of concurrent ones.
 */
export async function warmUpAt(concurrency: number, call: () => Promise<boolean>): Promise<void> {
  const each = Math.max(4, Math.ceil(50 / concurrency));
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = 0; i < each; i++) await call().catch(() => false);
  }));
}

/** One SOAP getRandom POST; true when it answered 200 with a number. */
export function postGetRandom(url: string, agent: http.Agent, body: Buffer): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'text/xml', 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(res.statusCode === 200 && /data>\d+</.test(Buffer.concat(chunks).toString())));
    });
    req.on('error', reject);
    req.end(body);
  });
}
