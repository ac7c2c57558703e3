/**
 * A large attachment through the message log (issue 12 item 4): received into a spool file,
 * logged, stamped and exported, with each process's resident memory rising by well under the
 * attachment's size, and the same bytes (SHA-512) in the log's file and in the container's entry
 * (read back with unzip, not our reader). 64 MiB here to keep the suite fast; the figures in
 * docs/messagelog.md come from `XRD_LARGE_ATTACHMENT_MIB=256 npx vitest run
 * test/messagelog/large-attachment.test.ts`, which prints them. Memory, not time, is asserted.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFixture, pseudoRandom, soap, xrd, type Fixture } from './fixture.ts';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.XRD_LARGE_ATTACHMENT_MIB ?? 64) * MiB;
/** "Well under its size": a quarter of it at most. */
const MAX_RISE_KIB = SIZE / 4 / 1024;

interface Step {
  readonly rssBeforeKiB: number;
  readonly peakRiseKiB: number;
  readonly ms: number;
}

let f: Fixture;

beforeAll(async () => {
  f = await createFixture();
});

afterAll(async () => {
  await f?.close();
});

/** SHA-512 of a file or of a command's output, by sha512sum. */
const sha512sum = (command: string) => execFileSync('sh', ['-c', `${command} | sha512sum`], { encoding: 'utf8' }).split(' ')[0];

describe('a large attachment through the message log', () => {
  it(`logs and exports a ${SIZE / MiB} MiB attachment with resident memory rising by well under its size; the log's file and the container's entry have its SHA-512`, { timeout: 600_000 }, async () => {
    const dir = join(f.dir, 'large');
    mkdirSync(dir);
    const attachment = pseudoRandom(SIZE);
    const expected = createHash('sha512').update(attachment).digest('hex');
    const message = soap('q-large');
    const signed = await f.signer.sign(f.keys.client, { message, attachments: [attachment] });
    const tsa = f.conf.own.approvedTsas[0]!;
    const input = join(dir, 'input.json');
    writeFileSync(
      input,
      JSON.stringify({ bytes: SIZE, message: message.toString('base64'), signature: signed, tsa: { url: tsa.url, cert: tsa.cert.toString('base64') }, tsaCerts: f.conf.tsaCertificates().map((c) => c.toString('base64')) }),
    );
    const { stdout } = await promisify(execFile)('node', ['--import', 'tsx', resolve(import.meta.dirname, 'large-attachment-run.ts'), dir, input]);
    const run = JSON.parse(stdout) as { attachmentFile: string; container: string; containerBytes: number; log: Step; export: Step };

    expect(sha512sum(`cat '${run.attachmentFile}'`)).toBe(expected);
    execFileSync('unzip', ['-tq', run.container]);
    expect(sha512sum(`unzip -p '${run.container}' attachment1`)).toBe(expected);
    expect(run.log.peakRiseKiB).toBeLessThan(MAX_RISE_KIB);
    expect(run.export.peakRiseKiB).toBeLessThan(MAX_RISE_KIB);

    // `xrd asic export` as its own process: its peak against the same command for a small record.
    const maxRss = async (queryId: string, out: string) => {
      const r = await xrd(['asic', 'export', queryId, '--db', join(dir, 'messagelog.db'), '--out', out], ['--import', resolve(import.meta.dirname, 'report-max-rss.mjs')]);
      expect(r.code).toBe(0);
      return Number(/max-rss-kib (\d+)/.exec(r.stderr)![1]);
    };
    const cliSmall = await maxRss('q-small', join(dir, 'cli-small'));
    const cliLarge = await maxRss('q-large', join(dir, 'cli-large'));
    const [cliContainer] = readdirSync(join(dir, 'cli-large'));
    expect(sha512sum(`unzip -p '${join(dir, 'cli-large', cliContainer!)}' attachment1`)).toBe(expected);
    expect(cliLarge - cliSmall).toBeLessThan(MAX_RISE_KIB);

    const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;
    console.log(
      JSON.stringify({
        attachmentMiB: SIZE / MiB,
        containerBytes: run.containerBytes,
        log: { rssBeforeMiB: mib(run.log.rssBeforeKiB), peakRiseMiB: mib(run.log.peakRiseKiB), ms: run.log.ms },
        writeTo: { rssBeforeMiB: mib(run.export.rssBeforeKiB), peakRiseMiB: mib(run.export.peakRiseKiB), ms: run.export.ms },
        xrdAsicExport: { maxRssSmallMiB: mib(cliSmall), maxRssLargeMiB: mib(cliLarge) },
      }),
    );
  });
});
