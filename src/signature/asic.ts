/**
 * ASiC-E containers of logged messages (MESS_09/10): writing them in the reference's layout and
 * verifying them as its AsicContainerVerifier does — the signer is the message's client (request)
 * or service provider (response); the timestamp (embedded, or a batch timestamp over
 * `ts-hashchainresult.xml`) is verified first and its time is when the certificate path and OCSP
 * responses must have been valid.
 */
import { createHash } from 'node:crypto';
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError, type ErrorCode } from '../platform/errors.ts';
import { open } from 'node:fs/promises';
import { readZip, readZipFile, writeZip, zipChunks, ZipError, type ZipEntry, type ZipSource } from '../platform/zip.ts';
import { readMessageHeader, signerOf } from '../protocol/message-header.ts';
import { DIGEST_URIS, type DigestName } from './algorithms.ts';
import type { DigestSource } from './digest-source.ts';
import { verifyHashChain } from './hash-chain.ts';
import { verifyTimestamp, type VerifiedTimestamp } from './timestamp.ts';
import { HASH_CHAIN_RESULT_URI, MESSAGE_URI, parseSignature, verifySignature, type VerifiedSignature } from './verifier.ts';

export const ASIC_MIME_TYPE = 'application/vnd.etsi.asic-e+zip';
const SIGNATURES = 'META-INF/signatures.xml';
const TS_HASH_CHAIN_URI = '/ts-hashchain.xml';
const SIGNATURE_URI = `/${SIGNATURES}`;

export interface AsicContents {
  /** `message.xml`: the SOAP message or the REST header part. */
  readonly message: Buffer;
  readonly signatureXml: Buffer;
  readonly attachments: readonly Buffer[];
  readonly hashChainResult?: Buffer;
  readonly hashChain?: Buffer;
  /** Batch timestamp: the token over `ts-hashchainresult.xml`, and this record's chain to it. */
  readonly timestampToken?: Buffer;
  readonly tsHashChainResult?: Buffer;
  readonly tsHashChain?: Buffer;
}

/** A container read from a file (readAsicFile): attachments too large to hold are digest sources. */
export interface AsicFileContents extends Omit<AsicContents, 'attachments'> {
  readonly attachments: readonly (Buffer | DigestSource)[];
}

/** An attachment too large to hold (a logged attachment kept in a file): streamed into the container, stored. */
export interface AsicStreamedPart extends ZipSource {
  /** The bytes in memory, for `writeAsic`. */
  bytes(): Buffer;
}

/** What a container is written from: as read, except that attachments may be streamed parts. */
export interface AsicToWrite extends Omit<AsicContents, 'attachments'> {
  readonly attachments: readonly (Buffer | AsicStreamedPart)[];
}

/** Writes a container in memory (streamed parts are read in). @throws ZipTooLargeError past 4 GiB */
export function writeAsic(c: AsicToWrite, recordTime = new Date()): Buffer {
  return writeZip(
    asicEntries(c).map(({ name, data, stored }) => ({ name, stored, data: Buffer.isBuffer(data) ? data : data.bytes() })),
    recordTime,
  );
}

/**
 * The same container chunk by chunk, streamed parts read in chunks: memory stays small whatever
 * their size. Write each chunk before asking for the next. The bytes are those of `writeAsic`.
 * @throws ZipTooLargeError at once past 4 GiB; while iterating, as zipChunks
 */
export function asicChunks(c: AsicToWrite, recordTime = new Date()): AsyncIterable<Buffer> {
  return zipChunks(asicEntries(c), recordTime);
}

interface AsicEntry {
  readonly name: string;
  readonly data: Buffer | AsicStreamedPart;
  readonly stored?: boolean;
}

/** The entries in the reference's order, `mimetype` first and stored; streamed parts stored too. */
function asicEntries(c: AsicToWrite): AsicEntry[] {
  const entries: AsicEntry[] = [{ name: 'mimetype', data: Buffer.from(ASIC_MIME_TYPE), stored: true }];
  const add = (name: string, data: Buffer | undefined) => data && entries.push({ name, data });
  add('message.xml', c.message);
  add(SIGNATURES, c.signatureXml);
  add('sig-hashchainresult.xml', c.hashChainResult);
  add('sig-hashchain.xml', c.hashChain);
  add('ts-hashchainresult.xml', c.tsHashChainResult);
  add('ts-hashchain.xml', c.tsHashChain);
  const files = entries.filter((e) => e.name !== 'mimetype' && !e.name.startsWith('META-INF/'));
  add(
    'META-INF/manifest.xml',
    Buffer.from(
      `<?xml version="1.0" encoding="UTF-8"?>\n<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">\n` +
        `    <manifest:file-entry manifest:media-type="${ASIC_MIME_TYPE}" manifest:full-path="/"/>\n` +
        files.map((e) => `    <manifest:file-entry manifest:media-type="text/xml" manifest:full-path="${e.name}"/>\n`).join('') +
        c.attachments.map((_, i) => `    <manifest:file-entry manifest:media-type="application/octet-stream" manifest:full-path="attachment${i + 1}"/>\n`).join('') +
        `</manifest:manifest>\n`,
    ),
  );
  if (c.tsHashChainResult) {
    add(
      'META-INF/ASiCManifest.xml',
      Buffer.from(
        `<?xml version="1.0" encoding="utf-8"?>\n<asic:ASiCManifest xmlns:asic="http://uri.etsi.org/2918/v1.2.1#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">\n` +
          `<asic:SigReference URI="META-INF/timestamp.tst" MimeType="vnd.etsi.timestamp-token"/>\n<asic:DataObjectReference URI="ts-hashchainresult.xml" MimeType="text/xml">\n` +
          `<ds:DigestMethod Algorithm="${DIGEST_URIS.sha512}" />\n<ds:DigestValue>${createHash('sha512').update(c.tsHashChainResult).digest('base64')}</ds:DigestValue>\n</asic:DataObjectReference>\n</asic:ASiCManifest>`,
      ),
    );
    add('META-INF/timestamp.tst', c.timestampToken);
  }
  c.attachments.forEach((a, i) => entries.push({ name: `attachment${i + 1}`, data: a, stored: !Buffer.isBuffer(a) }));
  return entries;
}

const LOCAL_FILE_HEADER = Buffer.from('PK\x03\x04', 'latin1');
const ENTRIES = {
  mimetype: 'mimetype',
  message: 'message.xml',
  signature: SIGNATURES,
  sigHashChainResult: 'sig-hashchainresult.xml',
  sigHashChain: 'sig-hashchain.xml',
  tsHashChainResult: 'ts-hashchainresult.xml',
  tsHashChain: 'ts-hashchain.xml',
  manifest: 'META-INF/manifest.xml',
  asicManifest: 'META-INF/ASiCManifest.xml',
  timestamp: 'META-INF/timestamp.tst',
} as const;

/**
 * Reads a container as the reference's AsicContainer does: entries are found by their exact names
 * (its reader matches names case-insensitively but looks them up exactly), in any order and
 * compression; `attachmentN` entries are the attachments; checked in its order — mimetype, message,
 * signature and its hash-chain pair, timestamp and its hash-chain pair, manifests. A file that does
 * not start as a ZIP archive has no entries (as Java's ZipInputStream reads it), so it has no
 * mimetype. Stricter than the reference, so that a container holds what it claims and nothing
 * else: the ZIP archive must be consistent (readZip: no duplicate names, local headers that agree
 * with the central directory, nothing hidden), and once the reference's checks pass, every entry
 * must be one the reference writes (`checkLayout`).
 * @throws AsicMimeTypeNotFound, AsicInvalidMimeType, AsicMessageNotFound, AsicSignatureNotFound,
 *   AsicHashChainResultNotFound, AsicHashChainNotFound, AsicTimestampNotFound, AsicManifestNotFound,
 *   AsicUnexpectedEntry, MalformedContainer.Zip* (the ZIP archive's codes, see readZip)
 */
export function readAsic(zip: Buffer): AsicContents {
  let entries: ZipEntry[] = [];
  if (zip.subarray(0, 4).equals(LOCAL_FILE_HEADER)) {
    try {
      entries = readZip(zip);
    } catch (err) {
      throw malformedContainer(err);
    }
  }
  // Every entry is in memory here, so every attachment is bytes.
  return asicContentsOf(new Map(entries.map((e) => [e.name, e.data]))) as AsicContents;
}

function malformedContainer(err: unknown): XrdError {
  if (err instanceof ZipError) return err.within('MalformedContainer');
  return new XrdError('MalformedContainer', { reason: (err as Error).message }, { cause: err });
}

/** Entries larger than this are not read into memory: their digests are computed as they are read. */
const IN_MEMORY_ENTRY_BYTES = 16 * 1024 * 1024;

/**
 * `readAsic` for a container in a file of any size: attachments above 16 MiB are read once, as a
 * stream, into the digests a signature may use (SHA-256, -384, -512), never held whole.
 * @throws as readAsic, and IOError when the file cannot be read
 */
export async function readAsicFile(file: string): Promise<AsicFileContents> {
  let head: Buffer;
  try {
    const handle = await open(file, 'r');
    try {
      head = Buffer.alloc(4);
      await handle.read(head, 0, 4, 0);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new XrdError('IOError', { reason: `cannot read ${file}: ${(err as Error).message}` }, { cause: err });
  }
  if (!head.equals(LOCAL_FILE_HEADER)) return asicContentsOf(new Map());
  const byName = new Map<string, Buffer | DigestSource>();
  try {
    for (const entry of await readZipFile(file, { inMemoryBytes: IN_MEMORY_ENTRY_BYTES })) {
      if (entry.data) byName.set(entry.name, entry.data);
      else if (ATTACHMENT.test(entry.name)) byName.set(entry.name, await streamedDigests(entry.size, entry.chunks!()));
      else throw new ZipError('ZipLimitExceeded', { reason: `${entry.name} of ${entry.size} bytes is more than a container's ${entry.name} may hold` });
    }
  } catch (err) {
    throw malformedContainer(err);
  }
  return asicContentsOf(byName);
}

/** Every digest a signature may ask of a part, from one pass over its bytes. */
async function streamedDigests(size: number, chunks: AsyncIterable<Buffer>): Promise<DigestSource> {
  const names = Object.keys(DIGEST_URIS) as DigestName[];
  const hashes = names.map((n) => createHash(n));
  for await (const chunk of chunks) for (const h of hashes) h.update(chunk);
  const digests = new Map(names.map((n, i) => [n, hashes[i]!.digest()]));
  return { size, digest: (algorithm) => digests.get(algorithm)! };
}

/**
 * The container's parts, checked as the reference's AsicContainer loads them: mimetype, message,
 * signature (and its hash chain pair), timestamp, manifests. Small parts are bytes; attachments
 * may be digest sources.
 */
function asicContentsOf(byName: ReadonlyMap<string, Buffer | DigestSource>): AsicFileContents {
  const bytesOf = (name: string): Buffer | undefined => {
    const data = byName.get(name);
    return data === undefined || Buffer.isBuffer(data) ? data : undefined;
  };
  // The reference reads entries as text: an entry of only whitespace is as good as none.
  const blank = (data: Buffer | undefined) => data === undefined || data.toString('utf8').trim() === '';
  const found = (name: string) => {
    const data = bytesOf(name);
    return blank(data) ? undefined : data;
  };
  const notFound = (code: ErrorCode, name: string) => new XrdError(code, { entry: name });
  const mimetype = found(ENTRIES.mimetype);
  if (!mimetype) throw notFound('AsicMimeTypeNotFound', ENTRIES.mimetype);
  if (mimetype.toString('utf8').toLowerCase() !== ASIC_MIME_TYPE) throw new XrdError('AsicInvalidMimeType', { mimeType: mimetype.toString('utf8') });
  const message = found(ENTRIES.message);
  if (!message) throw notFound('AsicMessageNotFound', ENTRIES.message);
  const signatureXml = found(ENTRIES.signature);
  if (!signatureXml) throw notFound('AsicSignatureNotFound', ENTRIES.signature);
  const pair = (resultName: string, chainName: string): [Buffer | undefined, Buffer | undefined] => {
    const [result, chain] = [found(resultName), found(chainName)];
    if (!result && chain) throw notFound('AsicHashChainResultNotFound', resultName);
    if (result && !chain) throw notFound('AsicHashChainNotFound', chainName);
    return [result, chain];
  };
  const [hashChainResult, hashChain] = pair(ENTRIES.sigHashChainResult, ENTRIES.sigHashChain);
  const timestampToken = bytesOf(ENTRIES.timestamp);
  if (timestampToken?.length === 0) throw notFound('AsicTimestampNotFound', ENTRIES.timestamp);
  const [tsHashChainResult, tsHashChain] = pair(ENTRIES.tsHashChainResult, ENTRIES.tsHashChain);
  if (tsHashChainResult && !timestampToken) throw notFound('AsicTimestampNotFound', ENTRIES.timestamp);
  for (const name of [ENTRIES.manifest, ENTRIES.asicManifest]) if (byName.has(name) && blank(bytesOf(name))) throw notFound('AsicManifestNotFound', name);
  const attachments: (Buffer | DigestSource)[] = [];
  for (let i = 1; byName.has(`attachment${i}`); i++) attachments.push(byName.get(`attachment${i}`)!);
  checkLayout(byName, attachments.length);
  return { message, signatureXml, attachments, hashChainResult, hashChain, timestampToken, tsHashChainResult, tsHashChain };
}

/** `attachment1`, `attachment2`, … as the reference numbers them (AsicHelper.write). */
const ATTACHMENT = /^attachment[1-9]\d*$/;
const LAYOUT = new Set<string>(Object.values(ENTRIES));

/**
 * Every entry must be one the reference writes: the fixed names, `attachment1` to `attachmentN`
 * without a gap (`attachments` of them were found from 1 on), and the empty `META-INF/` folder
 * that zip tools add (the reference's own test containers have it). The reference ignores any
 * other entry; a container carrying one holds what no verifier checked.
 * @throws AsicUnexpectedEntry
 */
function checkLayout(byName: ReadonlyMap<string, Buffer | DigestSource>, attachments: number): void {
  for (const [name, data] of byName) {
    if (LAYOUT.has(name) || (name === 'META-INF/' && Buffer.isBuffer(data) && data.length === 0)) continue;
    if (!ATTACHMENT.test(name)) throw new XrdError('AsicUnexpectedEntry', { entry: name, reason: 'the reference writes no such entry' });
    if (Number(name.slice('attachment'.length)) > attachments) throw new XrdError('AsicUnexpectedEntry', { entry: name, reason: `attachment${attachments + 1} is missing` });
  }
}

export interface AsicVerification extends VerifiedSignature {
  /** The batch timestamp, when the container has one (else `timestamp` is the embedded one). */
  readonly batchTimestamp: VerifiedTimestamp | undefined;
  /** Whether a timestamp (batch or embedded) fixed the time the certificates were checked for. */
  readonly stamped: boolean;
  readonly queryId: string;
  readonly isResponse: boolean;
}

export interface AsicVerifyOptions {
  /**
   * Verify a container without a timestamp, its certificates as of the signing time the signer
   * wrote (which nothing vouches for). The reference refuses such a container; an administrator
   * may ask for it (`xrd asic verify --allow-unstamped`), e.g. for a record exported before it
   * was stamped.
   */
  readonly allowUnstamped?: boolean;
}

/**
 * Verifies a container against a global configuration.
 * @throws MissingTimestamp (no timestamp, and `allowUnstamped` not set), the codes of readAsic,
 *   and every code of verifySignature
 */
export function verifyAsic(zip: Buffer, conf: GlobalConf, options: AsicVerifyOptions = {}): AsicVerification {
  return verifyAsicContents(readAsic(zip), conf, options);
}

/** `verifyAsic` for a container in a file of any size (readAsicFile). */
export async function verifyAsicFile(file: string, conf: GlobalConf, options: AsicVerifyOptions = {}): Promise<AsicVerification> {
  return verifyAsicContents(await readAsicFile(file), conf, options);
}

function verifyAsicContents(c: AsicFileContents, conf: GlobalConf, options: AsicVerifyOptions): AsicVerification {
  const header = readMessageHeader(c.message);
  const sig = parseSignature(c.signatureXml);
  if (!sig.dataReferences.some((r) => r.uri === MESSAGE_URI || r.uri === HASH_CHAIN_RESULT_URI)) {
    throw new XrdError('MalformedSignature', { reason: "Signature does not reference '/message.xml' or '/sig-hashchainresult.xml'" });
  }
  const batch = c.tsHashChainResult && c.tsHashChain && c.timestampToken ? { result: c.tsHashChainResult, chain: c.tsHashChain, token: c.timestampToken } : undefined;
  const stamped = batch !== undefined || sig.timestamp !== undefined;
  if (!stamped && !options.allowUnstamped) {
    throw new XrdError('MissingTimestamp', { reason: 'the container has neither a batch timestamp nor one in its signature, so its certificates could only be checked as of the signing time its signer claims' });
  }
  let batchTimestamp: VerifiedTimestamp | undefined;
  if (batch) {
    try {
      // As the reference: the signature document is an input to look up in the container.
      const resources = new Map([[TS_HASH_CHAIN_URI, batch.chain], [SIGNATURE_URI, c.signatureXml]]);
      verifyHashChain(batch.result, resources, new Map([[SIGNATURE_URI, null]]), { trustUnresolved: true });
    } catch (err) {
      throw new XrdError('MalformedSignature', { reason: `Failed to verify time-stamp hash chain: ${(err as Error).message}` }, { cause: err });
    }
    batchTimestamp = verifyTimestamp(batch.token, batch.result, conf.tsaCertificates());
  }
  const verified = verifySignature(
    sig,
    { message: c.message, attachments: c.attachments, hashChainResult: c.hashChainResult, hashChain: c.hashChain },
    { conf, signer: signerOf(header), at: batchTimestamp?.genTime, allowMissingParts: true },
  );
  return { ...verified, batchTimestamp, stamped, queryId: header.queryId, isResponse: header.isResponse };
}
