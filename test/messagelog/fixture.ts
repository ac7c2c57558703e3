/**
 * A local X-Road instance for message log tests: the test PKI serving its OCSP responder and TSA,
 * and real signatures — members LOCAL/COM/2222 (client) and LOCAL/COM/1111 (provider) each get a
 * signing certificate from the local CA for a software RSA key, and BatchSigner signs with it.
 * (The SoftHSM path is in test/softhsm/messagelog-containers.test.ts; this one keeps these tests
 * free of the token so they run in seconds.)
 */
import { execFile, spawn } from 'node:child_process';
import { X509Certificate, constants, createCipheriv, generateKeyPairSync, privateEncrypt, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { assembleCsr, certificationRequestInfo, defaultSubject } from '../../src/certificates/csr.ts';
import { loadGlobalConf, type GlobalConf } from '../../src/globalconf/global-conf.ts';
import type { MessageLogOptions, MessageToLog } from '../../src/messagelog/message-log.ts';
import type { Body } from '../../src/platform/spool.ts';
import { parseClientId } from '../../src/protocol/identifiers.ts';
import { withRequestHash } from '../../src/protocol/soap-message.ts';
import { BatchSigner, type SignedMessage, type SigningKey } from '../../src/signature/message-signer.ts';
import { LocalPki } from '../../src/dev/testpki/local-pki.ts';
import { certIdOf, encodeOcspRequest } from '../../src/trust/ocsp.ts';
import { freePort } from '../support/net.ts';

export const CLIENT = parseClientId('LOCAL/COM/2222/CLIENT');
export const PROVIDER = parseClientId('LOCAL/COM/1111/PROVIDER');

/** DigestInfo prefix of SHA-512 (RFC 8017 §9.2): PKCS#1 v1.5 signs prefix ‖ digest. */
const SHA512_DIGEST_INFO = Buffer.from('3051300d060960864801650304020305000440', 'hex');

export interface Fixture {
  readonly dir: string;
  readonly pki: LocalPki;
  readonly conf: GlobalConf;
  readonly signer: BatchSigner;
  readonly keys: { readonly client: SigningKey; readonly provider: SigningKey };
  /** The PKI's servers (OCSP, TSA, configuration); `stop` and `start` take the TSA down and up. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function createFixture(): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'xrd-messagelog-'));
  const pki = LocalPki.init(join(dir, 'pki'), { ocspPort: await freePort(), tsaPort: await freePort(), confPort: await freePort() });
  let served: Awaited<ReturnType<LocalPki['serve']>> | undefined = await pki.serve();
  const conf = loadGlobalConf(pki.globalConfDir);
  const ca = new X509Certificate(readFileSync(join(pki.dir, 'pki', 'ca.cert.pem'))).raw;
  const root = new X509Certificate(readFileSync(join(pki.dir, 'pki', 'root.cert.pem'))).raw;
  const privateKeys = new Map<string, ReturnType<typeof generateKeyPairSync>['privateKey']>();

  const ocsp = async (cert: Buffer, issuer: Buffer) => {
    const response = await fetch(served!.ocspUrl, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: new Uint8Array(encodeOcspRequest([certIdOf(cert, issuer)])) });
    return Buffer.from(await response.arrayBuffer());
  };
  const signingKey = async (member: string): Promise<SigningKey> => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const info = certificationRequestInfo(defaultSubject('SIGNING', { member: parseClientId(member) }), publicKey.export({ type: 'spki', format: 'der' }));
    const cert = pki.issue(assembleCsr(info, 'SHA256withRSA', sign('sha256', info, privateKey)), 'sign');
    privateKeys.set(member, privateKey);
    return { keyId: member, algorithm: 'SHA512withRSA', cert, intermediateCerts: [ca], ocspResponses: [await ocsp(cert, ca), await ocsp(ca, root)], batchSigningEnabled: true };
  };
  const signer = new BatchSigner(async (keyId, algorithm, digest) => {
    if (algorithm !== 'SHA512withRSA') throw new Error(`fixture signs SHA512withRSA only, not ${algorithm}`);
    return privateEncrypt({ key: privateKeys.get(keyId)!, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([SHA512_DIGEST_INFO, digest]));
  });
  const keys = { client: await signingKey('LOCAL/COM/2222'), provider: await signingKey('LOCAL/COM/1111') };
  return {
    dir,
    pki,
    conf,
    signer,
    keys,
    async stop() {
      await served?.close();
      served = undefined;
    },
    async start() {
      served ??= await pki.serve();
    },
    async close() {
      await served?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A getRandom request, or its response as the provider's server signs it (with `xrd:requestHash`), of the seed's shape. */
export function soap(queryId: string, response = false): Buffer {
  return response ? withRequestHash(envelope(queryId, true), envelope(queryId, false)) : envelope(queryId, false);
}

function envelope(queryId: string, response: boolean): Buffer {
  const id = (tag: string, type: string, m: typeof CLIENT, service?: string) =>
    `<xrd:${tag} id:objectType="${type}"><id:xRoadInstance>${m.instance}</id:xRoadInstance><id:memberClass>${m.memberClass}</id:memberClass><id:memberCode>${m.memberCode}</id:memberCode><id:subsystemCode>${m.subsystem}</id:subsystemCode>${service ? `<id:serviceCode>${service}</id:serviceCode>` : ''}</xrd:${tag}>`;
  const body = response ? '<prod:getRandomResponse xmlns:prod="http://test.x-road.fi/producer"><data>42</data></prod:getRandomResponse>' : '<prod:getRandom xmlns:prod="http://test.x-road.fi/producer"/>';
  return Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:xrd="http://x-road.eu/xsd/xroad.xsd">` +
      `<SOAP-ENV:Header>${id('client', 'SUBSYSTEM', CLIENT)}${id('service', 'SERVICE', PROVIDER, 'getRandom')}<xrd:id>${queryId}</xrd:id><xrd:protocolVersion>4.0</xrd:protocolVersion></SOAP-ENV:Header>` +
      `<SOAP-ENV:Body>${body}</SOAP-ENV:Body></SOAP-ENV:Envelope>\n`,
  );
}

/** What a proxy logs for a SOAP message it signed (request: client side; response: provider side). */
export function toLog(queryId: string, message: Buffer, signed: SignedMessage, response: boolean, attachments: (Buffer | Body)[] = []): MessageToLog {
  return { queryId, client: CLIENT, serviceProvider: PROVIDER, serviceCode: 'getRandom', isResponse: response, side: response ? 'server' : 'client', message, attachments, signature: signed };
}

/** Options for a log in tests: the fixture's TSA, and no timer rounds unless a test asks for them (timestampNow() decides what is stamped when). */
export function logOptions(f: Fixture, extra: Partial<MessageLogOptions> = {}): MessageLogOptions {
  return { timestampingIntervalSeconds: 3600, initialDelayMs: 3_600_000, tsas: () => f.conf.own.approvedTsas, tsaCerts: () => f.conf.tsaCertificates(), ...extra };
}

const XRD = resolve(import.meta.dirname, '../../scripts/xrd.mjs');

/** Runs `xrd <args> --json` as a process; `nodeArgs` go to node before the script. */
export async function xrd(args: readonly string[], nodeArgs: readonly string[] = []): Promise<{ code: number; json: Record<string, unknown>; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('node', [...nodeArgs, XRD, ...args, '--json'], { maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, json: JSON.parse(stdout), stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, json: JSON.parse(e.stdout), stderr: e.stderr };
  }
}

/**
 * `totalBytes` of reproducible, incompressible bytes in chunks (an AES-CTR key stream): a process
 * can make a large attachment piece by piece, and another the same one, without holding it.
 */
export function* pseudoRandomChunks(totalBytes: number, chunkBytes = 1024 * 1024): Generator<Buffer> {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 'x'), Buffer.alloc(16));
  for (let at = 0; at < totalBytes; at += chunkBytes) yield cipher.update(Buffer.alloc(Math.min(chunkBytes, totalBytes - at)));
}

export function pseudoRandom(totalBytes: number): Buffer {
  return Buffer.concat([...pseudoRandomChunks(totalBytes)]);
}

/**
 * Runs test/messagelog/log-writer.ts on `file` (the PostgreSQL database `databaseUrl` instead, when
 * given) and kills it with SIGKILL once it has reported `records` records committed.
 * @returns the records it reported, in order
 */
export async function killWriterAfter(records: number, file: string, input: string, options: { threshold?: number; databaseUrl?: string } = {}): Promise<{ id: number; queryId: string }[]> {
  const args = ['--import', 'tsx', resolve(import.meta.dirname, 'log-writer.ts'), file, input, ...(options.threshold ? [String(options.threshold)] : [])];
  const child = spawn('node', args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, XRD_MESSAGELOG_DATABASE_URL: options.databaseUrl ?? '' } });
  const reported: { id: number; queryId: string }[] = [];
  let buffered = '';
  await new Promise<void>((done, fail) => {
    child.once('exit', (code) => fail(new Error(`writer exited by itself with ${code}`)));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const [id, queryId] = line.split(' ');
        reported.push({ id: Number(id), queryId: queryId! });
      }
      if (reported.length >= records && !child.killed) {
        child.kill('SIGKILL');
        done();
      }
    });
  });
  await new Promise((r) => child.once('exit', r));
  if (child.signalCode !== 'SIGKILL') throw new Error(`writer ended with ${child.exitCode ?? child.signalCode}, not SIGKILL`);
  return reported;
}
