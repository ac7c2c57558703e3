/**
 * Downloading global configuration from a source named by an anchor (pr-gconf §2.6): the signed
 * directory (multipart/related: a multipart/mixed directory and its signature), its signature
 * checked with a verification certificate of the anchor, then every file it lists, each checked
 * against the hash in the directory. Everything is fetched and checked into a temporary folder and
 * loaded once before it replaces the configuration in place, so a failed download leaves the last
 * good configuration untouched.
 */
import { X509Certificate, createHash, verify } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname, join } from 'node:path';
import { XrdError } from '../platform/errors.ts';
import type { ConfigurationAnchor } from './anchor.ts';
import { loadGlobalConf, type GlobalConf } from './global-conf.ts';
import { boundaryOf, parseMultipart, type MimePart } from '../protocol/multipart.ts';

export const HASH_URIS: Record<string, string> = {
  'http://www.w3.org/2000/09/xmldsig#sha1': 'sha1',
  'http://www.w3.org/2001/04/xmlenc#sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#sha384': 'sha384',
  'http://www.w3.org/2001/04/xmlenc#sha512': 'sha512',
};

export const SIGNATURE_URIS: Record<string, string> = {
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512': 'sha512',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512': 'sha512',
};

export interface DownloadOptions {
  /** Configuration version asked for with `?version=` (our loader reads 2 and 3+). */
  readonly version?: number;
  readonly timeoutMs?: number;
}

/**
 * Downloads, verifies and installs the configuration of `anchor` into `dir`.
 * @returns the configuration now in `dir`
 * @throws NetworkError (source unreachable), MalformedGlobalConf (bad directory, signature, hash
 *   or content); `dir` keeps its previous contents then
 */
export async function downloadGlobalConf(anchor: ConfigurationAnchor, dir: string, options: DownloadOptions = {}): Promise<GlobalConf> {
  const failures: string[] = [];
  for (const source of anchor.sources) {
    try {
      return await downloadFrom(source.downloadUrl, source.verificationCerts, anchor.instanceIdentifier, dir, options);
    } catch (err) {
      if (err instanceof XrdError && err.code === 'MalformedGlobalConf') throw err;
      failures.push(`${source.downloadUrl}: ${(err as Error).message}`);
    }
  }
  throw new XrdError('NetworkError', { target: anchor.sources.map((s) => s.downloadUrl).join(', '), reason: failures.join('; ') });
}

async function downloadFrom(url: string, certs: readonly Buffer[], instance: string, dir: string, options: DownloadOptions): Promise<GlobalConf> {
  const location = new URL(url);
  location.searchParams.set('version', String(options.version ?? 3));
  const signed = await get(location.toString(), options.timeoutMs);
  const malformed = (reason: string) => new XrdError('MalformedGlobalConf', { file: url, reason });

  const outer = boundaryOf(signed.contentType);
  if (!outer) throw malformed(`content type "${signed.contentType}" is not multipart`);
  const [directoryPart, signaturePart] = parseMultipart(signed.body, outer);
  if (!directoryPart || !signaturePart) throw malformed('expected a directory part and a signature part');
  checkSignature(directoryPart, signaturePart, certs, malformed);

  const inner = boundaryOf(directoryPart.headers.get('content-type') ?? '');
  if (!inner) throw malformed('the directory part is not multipart/mixed');
  const [header, ...entries] = parseMultipart(directoryPart.body, inner);
  const expireDate = header?.headers.get('expire-date');
  if (!expireDate || Number.isNaN(Date.parse(expireDate))) throw malformed('the directory has no valid Expire-date');
  const version = header!.headers.get('version') ?? String(options.version ?? 3);

  mkdirSync(dirname(dir), { recursive: true });
  const staging = mkdtempSync(join(dirname(dir), '.globalconf-download-'));
  try {
    writeFileSync(join(staging, 'instance-identifier'), instance);
    for (const entry of entries) {
      const identifier = /^\s*([A-Z-]+)\s*;\s*instance="?([^";]+)"?/i.exec(entry.headers.get('content-identifier') ?? '');
      const contentLocation = entry.headers.get('content-location');
      const hash = HASH_URIS[entry.headers.get('hash-algorithm-id') ?? ''];
      if (!contentLocation || !hash) throw malformed('a directory entry lacks Content-location or a known Hash-algorithm-id');
      const file = await get(new URL(contentLocation, url).toString(), options.timeoutMs);
      const expected = Buffer.from(entry.body.toString('latin1').replace(/\s+/g, ''), 'base64');
      if (!createHash(hash).update(file.body).digest().equals(expected)) throw malformed(`${contentLocation} does not match its hash in the directory`);
      const name = identifier?.[1]?.toUpperCase() === 'PRIVATE-PARAMETERS' ? 'private-params.xml' : identifier?.[1]?.toUpperCase() === 'SHARED-PARAMETERS' ? 'shared-params.xml' : undefined;
      if (!name) continue; // Parts of other kinds (monitoring parameters …) are not used here.
      mkdirSync(join(staging, identifier![2]!), { recursive: true });
      writeFileSync(join(staging, identifier![2]!, name), file.body);
      writeFileSync(join(staging, identifier![2]!, `${name}.metadata`), JSON.stringify({ contentIdentifier: identifier![1], instanceIdentifier: identifier![2], contentLocation, expirationDate: new Date(expireDate).toISOString(), configurationVersion: version }));
    }
    loadGlobalConf(staging); // refuse to install what would not load
    install(staging, dir);
    return loadGlobalConf(dir);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function checkSignature(directory: MimePart, signature: MimePart, certs: readonly Buffer[], malformed: (reason: string) => XrdError): void {
  const digest = SIGNATURE_URIS[signature.headers.get('signature-algorithm-id') ?? ''];
  if (!digest) throw malformed(`unknown Signature-algorithm-id "${signature.headers.get('signature-algorithm-id')}"`);
  const certHeader = signature.headers.get('verification-certificate-hash') ?? '';
  const [certHashText, ...params] = certHeader.split(';');
  const hashUri = /hash-algorithm-id="?([^";]+)"?/i.exec(params.join(';'))?.[1];
  const certHashAlg = HASH_URIS[hashUri ?? 'http://www.w3.org/2001/04/xmlenc#sha512'];
  const wanted = Buffer.from((certHashText ?? '').trim(), 'base64');
  const cert = certs.find((c) => certHashAlg && createHash(certHashAlg).update(c).digest().equals(wanted));
  if (!cert) throw malformed('the directory is signed with a certificate the anchor does not name');
  const value = Buffer.from(signature.body.toString('latin1').replace(/\s+/g, ''), 'base64');
  if (!verify(digest, directory.body, new X509Certificate(cert).publicKey, value)) throw malformed('the signature of the configuration directory is not valid');
}

/** Moves every file of the verified staging folder into `dir`, each by an atomic rename. */
function install(staging: string, dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const entry of readdirSync(staging, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      mkdirSync(join(dir, entry.name), { recursive: true });
      // Data files first, metadata after: a reader never pairs new metadata with an old file.
      const files = readdirSync(join(staging, entry.name)).sort((a, b) => Number(a.endsWith('.metadata')) - Number(b.endsWith('.metadata')));
      for (const file of files) renameSync(join(staging, entry.name, file), join(dir, entry.name, file));
    } else {
      renameSync(join(staging, entry.name), join(dir, entry.name));
    }
  }
}

function get(url: string, timeoutMs = 30_000): Promise<{ contentType: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, { method: 'GET' });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`HTTP ${res.statusCode} for ${url}`));
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ contentType: res.headers['content-type'] ?? '', body: Buffer.concat(chunks) }));
    });
    req.end();
  });
}
