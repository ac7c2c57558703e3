/**
 * Downloading configuration from a source as an anchor describes it: signature, hashes, and the last
 * good configuration kept when a download fails.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigurationAnchor } from '../../src/globalconf/anchor.ts';
import { downloadGlobalConf } from '../../src/globalconf/download.ts';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { signedDirectory, startConfigurationSource } from '../../src/globalconf/source.ts';
import { writeGlobalConf } from '../../src/globalconf/writer.ts';
import { createRootCa } from '../../src/testpki/certificate-authority.ts';
import { VECTORS } from '../support/vectors.ts';

const signer = createRootCa([['CN', 'Configuration signing key']]);
const stranger = createRootCa([['CN', 'Someone else']]);
const reference = loadGlobalConf(join(VECTORS, 'globalconf'));
const sourceDir = mkdtempSync(join(tmpdir(), 'xrd-source-'));
writeGlobalConf(sourceDir, reference.own, { instanceIdentifier: 'DEV', timeStampingIntervalSeconds: 60 });
let server: Server;
let base: string;

const anchor = (certs: Buffer[], url = `${base}/internalconf`): ConfigurationAnchor => ({ instanceIdentifier: 'DEV', sources: [{ downloadUrl: url, verificationCerts: certs }] });
const listen = async (s: Server) => {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
};

beforeAll(async () => {
  server = await startConfigurationSource({ dir: sourceDir, signingKey: signer.privateKey, signingCert: signer.cert }, '127.0.0.1', 0);
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('downloading global configuration', () => {
  it('verifies the signed directory and every file, and installs them with their expiry', async () => {
    const target = join(mkdtempSync(join(tmpdir(), 'xrd-download-')), 'globalconf');
    const conf = await downloadGlobalConf(anchor([stranger.cert, signer.cert]), target);
    expect({ ...conf.own, expiresAt: undefined }).toEqual({ ...reference.own, expiresAt: undefined });
    expect(conf.privateParams?.timeStampingIntervalSeconds).toBe(60);
    const expiresIn = conf.expiresAt!.getTime() - Date.now();
    expect(expiresIn).toBeGreaterThan(500_000);
    expect(expiresIn).toBeLessThanOrEqual(600_000);
  });

  it('refuses a directory signed by a key the anchor does not name, keeping the last good configuration', async () => {
    const target = join(mkdtempSync(join(tmpdir(), 'xrd-download-')), 'globalconf');
    await downloadGlobalConf(anchor([signer.cert]), target);
    const before = readFileSync(join(target, 'DEV', 'shared-params.xml'));
    await expect(downloadGlobalConf(anchor([stranger.cert]), target)).rejects.toMatchObject({ code: 'MalformedGlobalConf', message: expect.stringContaining('does not name') });
    expect(readFileSync(join(target, 'DEV', 'shared-params.xml')).equals(before)).toBe(true);
  });

  it('refuses a file that does not match its hash, and a bad signature', async () => {
    const tamperedDir = mkdtempSync(join(tmpdir(), 'xrd-tampered-'));
    cpSync(sourceDir, tamperedDir, { recursive: true });
    const file = join(tamperedDir, 'DEV', 'shared-params.xml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('Test member', 'Evil member'));
    let badSignature = false;
    const rogue = createServer((req, res) => {
      if (req.url?.startsWith('/internalconf')) {
        const signed = signedDirectory({ dir: sourceDir, signingKey: signer.privateKey, signingCert: signer.cert });
        // Flip one byte of the directory: the signature no longer covers it.
        if (badSignature) signed.body[signed.body.indexOf('Expire-date') + 20]! ^= 1;
        return void res.writeHead(200, { 'Content-Type': signed.contentType }).end(signed.body);
      }
      res.writeHead(200).end(readFileSync(join(tamperedDir, req.url!.split('?')[0]!)));
    });
    const rogueBase = await listen(rogue);
    try {
      const target = join(mkdtempSync(join(tmpdir(), 'xrd-download-')), 'globalconf');
      await expect(downloadGlobalConf(anchor([signer.cert], `${rogueBase}/internalconf`), target)).rejects.toMatchObject({ code: 'MalformedGlobalConf', message: expect.stringContaining('does not match its hash') });
      badSignature = true;
      await expect(downloadGlobalConf(anchor([signer.cert], `${rogueBase}/internalconf`), target)).rejects.toMatchObject({ code: 'MalformedGlobalConf', message: expect.stringMatching(/signature of the configuration directory is not valid|Expire-date/) });
    } finally {
      await new Promise<void>((r) => rogue.close(() => r()));
    }
  });

  it('a source that is down is a NetworkError', async () => {
    const down = createServer();
    const url = `${await listen(down)}/internalconf`;
    await new Promise<void>((r) => down.close(() => r()));
    await expect(downloadGlobalConf(anchor([signer.cert], url), join(mkdtempSync(join(tmpdir(), 'xrd-download-')), 'globalconf'))).rejects.toMatchObject({ code: 'NetworkError' });
  });
});
