/**
 * Containers are what they claim (issue 13): real containers exported from a message log (real
 * signatures, the local TSA) and the reference's shared vectors, tampered with as an attacker
 * would, must be refused — in memory (verifyAsic), from a file (verifyAsicFile, which `xrd asic
 * verify` uses) and, for the headline attack, by `xrd asic verify` as a process. Each attack
 * verified, or was refused for another reason, before the ZIP reader, the ASiC layout check, the
 * timestamp requirement and the SigningCertificate binding were made strict.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { MessageLog } from '../../src/messagelog/message-log.ts';
import { MessageLogReader } from '../../src/messagelog/store.ts';
import { readZip, readZipFile, writeZip, type ZipEntry } from '../../src/platform/zip.ts';
import { verifyAsic, verifyAsicFile } from '../../src/signature/asic.ts';
import { VECTORS } from '../support/vectors.ts';
import { fieldOf, putTogether, rawEntry, renamed, takeApart, withField, type RawEntry } from '../support/zip-surgery.ts';
import { createFixture, logOptions, soap, toLog, xrd, type Fixture } from './fixture.ts';

let f: Fixture;
let files = 0;
/** Exported containers: a request with two attachments (hash chain) and a response, stamped in one batch. */
let request: Buffer;
let response: Buffer;
let unstamped: Buffer;
let keyInfoSwapped: Buffer;
/** attachment2 of the request: an attached ZIP fragment, a local entry of its own. */
const hidden = rawEntry('META-INF/evil.xml', Buffer.from('<forged/>'));
const attachments = [Buffer.from('%PDF-1.4 the first attachment'), Buffer.concat([hidden.local, hidden.data])];

beforeAll(async () => {
  f = await createFixture();
  const file = join(f.dir, 'tampering.sqlite');
  const log = await MessageLog.open(file, logOptions(f));
  await log.log(toLog('q-tamper', soap('q-tamper'), await f.signer.sign(f.keys.client, { message: soap('q-tamper'), attachments }), false, attachments));
  await log.log(toLog('q-tamper', soap('q-tamper', true), await f.signer.sign(f.keys.provider, { message: soap('q-tamper', true) }), true));
  // Signed with the client's key, its signed properties naming the provider's certificate, and
  // KeyInfo then given the client's certificate (KeyInfo is not signed): the value verifies with it.
  const swapped = await f.signer.sign({ ...f.keys.client, cert: f.keys.provider.cert }, { message: soap('q-swap') });
  const keyInfo = (cert: Buffer) => `<ds:X509Certificate>${cert.toString('base64')}</ds:X509Certificate>`;
  await log.log(toLog('q-swap', soap('q-swap'), { signatureXml: swapped.signatureXml.replace(keyInfo(f.keys.provider.cert), keyInfo(f.keys.client.cert)) }, false));
  expect(await log.timestampNow()).toBe(3);
  await log.log(toLog('q-unstamped', soap('q-unstamped'), await f.signer.sign(f.keys.client, { message: soap('q-unstamped') }), false));
  await log.close();
  const reader = await MessageLogReader.openExisting(file);
  [request, response] = (await reader.exportAsic('q-tamper')).map((c) => c.data) as [Buffer, Buffer];
  keyInfoSwapped = (await reader.exportAsic('q-swap'))[0]!.data;
  unstamped = (await reader.exportAsic('q-unstamped', { allowUnstamped: true }))[0]!.data;
  await reader.close();
});

afterAll(async () => {
  await f?.close();
});

const fileOf = (zip: Buffer) => {
  const file = join(f.dir, `tampered-${++files}.asice`);
  writeFileSync(file, zip);
  return file;
};

/** Refused with this code in memory and from a file. */
async function refused(zip: Buffer, fullCode: string, conf = f.conf): Promise<void> {
  expect(() => verifyAsic(zip, conf)).toThrow(expect.objectContaining({ fullCode }));
  await expect(verifyAsicFile(fileOf(zip), conf)).rejects.toMatchObject({ fullCode });
}

const named = (raw: readonly RawEntry[], name: string) => raw.find((e) => e.name === name)!;
const replaced = (raw: readonly RawEntry[], name: string, by: RawEntry | readonly (RawEntry | Buffer)[]) => raw.flatMap((e) => (e.name === name ? by : [e]));
/** message.xml with another body: what a forger would want a reader to see. */
const forge = (message: Buffer) => Buffer.from(message.toString().replace('<prod:getRandom ', '<prod:transferMoney '));

describe('the exported containers and the vectors verify as they are', () => {
  it('request (hash chain, two attachments), response and the vectors verify in memory and from a file', async () => {
    for (const zip of [request, response]) {
      expect(verifyAsic(zip, f.conf).stamped).toBe(true);
      expect((await verifyAsicFile(fileOf(zip), f.conf)).stamped).toBe(true);
    }
    expect(verifyAsic(request, f.conf).verifiedParts).toEqual(['/message.xml', '/attachment1', '/attachment2']);
    const conf = loadGlobalConf(join(VECTORS, 'globalconf'));
    for (const name of ['valid-signed-message.asice', 'valid-signed-hashchain.asice']) expect(verifyAsic(readFileSync(join(VECTORS, 'asic', name)), conf).stamped).toBe(true);
  });
});

describe('ZIP: one archive for every reader', () => {
  it('a container with two message.xml entries, forged first, is refused (exported, the shared vector, and by xrd asic verify)', async () => {
    const twice = (zip: Buffer) => {
      const all = readZip(zip);
      const message = all.find((e) => e.name === 'message.xml')!;
      return writeZip(all.flatMap((e): ZipEntry[] => (e === message ? [{ name: 'message.xml', data: forge(message.data) }, e] : [e])));
    };
    await refused(twice(request), 'MalformedContainer.ZipDuplicateEntry');
    const conf = loadGlobalConf(join(VECTORS, 'globalconf'));
    await refused(twice(readFileSync(join(VECTORS, 'asic', 'valid-signed-message.asice'))), 'MalformedContainer.ZipDuplicateEntry', conf);
    expect(await xrd(['asic', 'verify', fileOf(twice(request)), '--conf', f.pki.globalConfDir])).toMatchObject({ code: 1, json: { valid: false, error: { code: 'MalformedContainer.ZipDuplicateEntry' } } });
  });

  it('a container with message.xml and MESSAGE.xml (the same name but for case) is refused', async () => {
    const message = readZip(request).find((e) => e.name === 'message.xml')!;
    await refused(writeZip([{ name: 'MESSAGE.xml', data: forge(message.data) }, ...readZip(request)]), 'MalformedContainer.ZipDuplicateEntry');
  });

  it('a container with message.xml and a compatibility-form twin (ｍessage.xml, fullwidth m) is refused', async () => {
    await refused(writeZip([...readZip(request), { name: 'ｍessage.xml', data: Buffer.from('<forged/>') }]), 'MalformedContainer.ZipDuplicateEntry');
  });

  it('a forged message.xml only a streaming reader sees (a local entry before the first one, in no central directory) is refused', async () => {
    const forged = rawEntry('message.xml', forge(readZip(request).find((e) => e.name === 'message.xml')!.data));
    await refused(putTogether([Buffer.concat([forged.local, forged.data]), ...takeApart(request)]), 'MalformedContainer.ZipUnexpectedData');
  });

  it('bytes hidden between two entries are refused', async () => {
    const raw = takeApart(request);
    await refused(putTogether(replaced(raw, 'message.xml', [named(raw, 'message.xml'), Buffer.from('hidden between the entries')])), 'MalformedContainer.ZipUnexpectedData');
  });

  it('bytes after the end of central directory record are refused', async () => {
    await refused(putTogether(takeApart(request), { trailing: Buffer.from('appended after the end') }), 'MalformedContainer.ZipUnexpectedData');
  });

  it('an entry hidden inside another entry\'s data (overlapping entries) is refused', async () => {
    // attachment2 is stored, so its bytes — a local entry of META-INF/evil.xml — lie in the
    // archive as they are; a central record pointing into them adds an entry.
    const raw = takeApart(request);
    const attachment2 = rawEntry('attachment2', attachments[1]!);
    const intoAttachment2 = (at: ReadonlyMap<RawEntry, number>) => {
      const record = Buffer.from(hidden.central);
      record.writeUInt32LE(at.get(attachment2)! + attachment2.local.length, 42);
      return [record];
    };
    expect(verifyAsic(putTogether(replaced(raw, 'attachment2', attachment2)), f.conf).verifiedParts).toContain('/attachment2');
    await refused(putTogether(replaced(raw, 'attachment2', attachment2), { extraCentral: intoAttachment2 }), 'MalformedContainer.ZipOverlappingEntries');
  });

  it('a local header naming the entry otherwise than the central directory is refused', async () => {
    const raw = takeApart(request);
    await refused(putTogether(replaced(raw, 'message.xml', renamed(named(raw, 'message.xml'), 'massage.xml', 'local'))), 'MalformedContainer.ZipHeaderMismatch');
  });

  for (const [field, change] of [
    ['method', () => 0], // stored: a streaming reader would take the deflated bytes as they are
    ['flags', (v: number) => v | 0x0008],
    ['crc', (v: number) => v ^ 1],
    ['compressedSize', (v: number) => v - 1],
    ['size', (v: number) => v + 1],
  ] as const) {
    it(`a local header whose ${field} disagrees with the central directory is refused`, async () => {
      const raw = takeApart(request);
      const message = named(raw, 'message.xml');
      await refused(putTogether(replaced(raw, 'message.xml', withField(message, field, change(fieldOf(message, field)), 'local'))), 'MalformedContainer.ZipHeaderMismatch');
    });
  }

  it('a data descriptor that disagrees with the central directory is refused (one that agrees, as Java writes them, is read)', async () => {
    const raw = takeApart(request);
    const message = named(raw, 'message.xml');
    const deferred = ['crc', 'compressedSize', 'size'].reduce((e, field) => withField(e, field as 'crc', 0, 'local'), withField(message, 'flags', fieldOf(message, 'flags') | 0x0008, 'both'));
    const descriptor = (crc: number) => {
      const d = Buffer.alloc(16);
      d.writeUInt32LE(0x08074b50, 0);
      d.writeUInt32LE(crc >>> 0, 4);
      d.writeUInt32LE(fieldOf(message, 'compressedSize'), 8);
      d.writeUInt32LE(fieldOf(message, 'size'), 12);
      return d;
    };
    expect(verifyAsic(putTogether(replaced(raw, 'message.xml', [deferred, descriptor(fieldOf(message, 'crc'))])), f.conf).stamped).toBe(true);
    await refused(putTogether(replaced(raw, 'message.xml', [deferred, descriptor(fieldOf(message, 'crc') ^ 1)])), 'MalformedContainer.ZipHeaderMismatch');
  });

  it('bytes after an entry\'s deflate stream, inside its compressed size (inflate stops before them), are refused, also when the entry is streamed', async () => {
    const raw = takeApart(request);
    const message = named(raw, 'message.xml');
    const padded = withField({ ...message, data: Buffer.concat([message.data, Buffer.from('<forged/>')]) }, 'compressedSize', message.data.length + 9, 'both');
    const zip = putTogether(replaced(raw, 'message.xml', padded));
    await refused(zip, 'MalformedContainer.ZipUnexpectedData');
    const streamed = (await readZipFile(fileOf(zip), { inMemoryBytes: 0 })).find((e) => e.name === 'message.xml')!;
    await expect((async () => {
      for await (const chunk of streamed.chunks!()) void chunk;
    })()).rejects.toMatchObject({ code: 'ZipUnexpectedData' });
  });

  it('a stored entry followed by a data descriptor (its end known only from its bytes; Java refuses it) is refused', async () => {
    const raw = takeApart(request);
    const mimetype = named(raw, 'mimetype');
    const deferred = ['crc', 'compressedSize', 'size'].reduce((e, field) => withField(e, field as 'crc', 0, 'local'), withField(mimetype, 'flags', fieldOf(mimetype, 'flags') | 0x0008, 'both'));
    const descriptor = Buffer.alloc(16);
    descriptor.writeUInt32LE(0x08074b50, 0);
    descriptor.writeUInt32LE(fieldOf(mimetype, 'crc'), 4);
    descriptor.writeUInt32LE(fieldOf(mimetype, 'compressedSize'), 8);
    descriptor.writeUInt32LE(fieldOf(mimetype, 'size'), 12);
    await refused(putTogether(replaced(raw, 'mimetype', [deferred, descriptor])), 'MalformedContainer.ZipUnsupported');
  });

  it('an entry claiming to inflate to more than deflate can (a ZIP bomb\'s size) is refused before it is inflated', async () => {
    const raw = takeApart(request);
    const message = named(raw, 'message.xml');
    await refused(putTogether(replaced(raw, 'message.xml', withField(message, 'size', 100 * 1024 * 1024, 'both'))), 'MalformedContainer.ZipLimitExceeded');
  });

  it('archives past the limits on entries, name length and total size are refused, in memory and from a file', async () => {
    const file = fileOf(request);
    for (const limits of [{ maxEntries: 3 }, { maxNameBytes: 10 }, { maxTotalBytes: 1000 }]) {
      expect(() => readZip(request, limits)).toThrow(expect.objectContaining({ code: 'ZipLimitExceeded' }));
      await expect(readZipFile(file, { inMemoryBytes: 1 << 20, ...limits })).rejects.toMatchObject({ code: 'ZipLimitExceeded' });
    }
    // From a file, entries past the in-memory budget are streamed instead of held.
    const read = await readZipFile(file, { inMemoryBytes: 1 << 20, inMemoryTotalBytes: 100 });
    expect(read[0]).toMatchObject({ name: 'mimetype', data: expect.any(Buffer) });
    const streamed = read.find((e) => e.name === 'META-INF/signatures.xml')!;
    expect(streamed.data).toBeUndefined();
    const chunks: Buffer[] = [];
    for await (const chunk of streamed.chunks!()) chunks.push(chunk);
    expect(Buffer.concat(chunks).equals(readZip(request).find((e) => e.name === 'META-INF/signatures.xml')!.data)).toBe(true);
  });
});

describe('ASiC: only the entries the reference writes', () => {
  for (const name of ['META-INF/evil.xml', 'META-INF/signatures2.xml', 'messageX.xml', 'attachment01', 'attachment']) {
    it(`a container with an entry the reference never writes (${name}) is refused`, async () => {
      await refused(writeZip([...readZip(request), { name, data: Buffer.from('<forged/>') }]), 'AsicUnexpectedEntry');
    });
  }

  it('a META-INF/ folder entry with data in it is refused (an empty one, as zip tools add, is read)', async () => {
    expect(verifyAsic(writeZip([...readZip(request), { name: 'META-INF/', data: Buffer.alloc(0) }]), f.conf).stamped).toBe(true);
    await refused(writeZip([...readZip(request), { name: 'META-INF/', data: Buffer.from('hidden') }]), 'AsicUnexpectedEntry');
  });

  it('attachment3 without attachment2 (a gap in the numbering, one attachment left unchecked) is refused', async () => {
    await refused(writeZip(readZip(request).map((e) => (e.name === 'attachment2' ? { ...e, name: 'attachment3' } : e))), 'AsicUnexpectedEntry');
  });

  it('the vectors still give the reference\'s codes first: no-mimetype (with 7a6ae…-message.xml) → AsicMimeTypeNotFound, no-message (with META-INF/signature.xml) → AsicMessageNotFound', () => {
    expect(() => verifyAsic(readFileSync(join(VECTORS, 'asic-core', 'no-mimetype.asice')), f.conf)).toThrow(expect.objectContaining({ fullCode: 'AsicMimeTypeNotFound' }));
    expect(() => verifyAsic(readFileSync(join(VECTORS, 'asic-core', 'no-message.asice')), f.conf)).toThrow(expect.objectContaining({ fullCode: 'AsicMessageNotFound' }));
  });
});

describe('timestamps: an unstamped container only when the administrator asks', () => {
  it('a container without a timestamp is refused with MissingTimestamp; --allow-unstamped verifies it and says it was not stamped', async () => {
    await refused(unstamped, 'MissingTimestamp');
    expect(verifyAsic(unstamped, f.conf, { allowUnstamped: true })).toMatchObject({ stamped: false, timestamp: undefined, batchTimestamp: undefined });
    const file = fileOf(unstamped);
    expect(await xrd(['asic', 'verify', file, '--conf', f.pki.globalConfDir])).toMatchObject({ code: 1, json: { valid: false, error: { code: 'MissingTimestamp' } } });
    expect(await xrd(['asic', 'verify', file, '--conf', f.pki.globalConfDir, '--allow-unstamped'])).toMatchObject({ code: 0, json: { valid: true, stamped: false, timestamp: null } });
    expect(await xrd(['asic', 'verify', fileOf(request), '--conf', f.pki.globalConfDir])).toMatchObject({ code: 0, json: { valid: true, stamped: true, timestamp: { batch: true } } });
  });

  it('a batch-stamped container stripped of its timestamp entries is refused', async () => {
    const timestampEntries = ['ts-hashchainresult.xml', 'ts-hashchain.xml', 'META-INF/ASiCManifest.xml', 'META-INF/timestamp.tst'];
    const stripped = writeZip(readZip(response).filter((e) => !timestampEntries.includes(e.name)));
    await refused(stripped, 'MissingTimestamp');
  });
});

describe('XAdES: the signed properties name the certificate the signature verifies with', () => {
  it('a container whose signature names another certificate in its signed properties than in KeyInfo is refused', async () => {
    await refused(keyInfoSwapped, 'MalformedSignature.SigningCertificateNotBound');
    expect(await xrd(['asic', 'verify', fileOf(keyInfoSwapped), '--conf', f.pki.globalConfDir])).toMatchObject({ code: 1, json: { error: { code: 'MalformedSignature.SigningCertificateNotBound' } } });
  });
});
