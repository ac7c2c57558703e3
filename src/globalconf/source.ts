/**
 * A configuration source (pr-gconf §2.3–2.4) serving a configuration directory written by
 * `writeGlobalConf`: the signed directory at its download path and each file at its location. It
 * serves the one version the directory is in and answers 404 to `?version=` of any other
 * (pr-gconf §2.7), so clients negotiate down to it. The local instance uses it in place of a
 * central server; tests use it to prove downloads.
 */
import { createHash, randomBytes, sign, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { buildMultipart } from '../protocol/multipart.ts';
import { INSTANCE_IDENTIFIER_FILE, PRIVATE_PARAMETERS_FILE, SHARED_PARAMETERS_FILE, instanceFolder, readMetadata } from './directory.ts';
import { MINIMUM_VERSION } from './parameters.ts';
import { CONTENT_ID_PRIVATE_PARAMETERS, CONTENT_ID_SHARED_PARAMETERS } from './signed-directory.ts';

export interface ConfigurationSourceOptions {
  /** A directory as `writeGlobalConf` leaves it. */
  readonly dir: string;
  readonly signingKey: KeyObject;
  /** The certificate of `signingKey`, as the anchor lists it. */
  readonly signingCert: Buffer;
  /** How long each signed directory is valid. */
  readonly validitySeconds?: number;
  /** Path the anchor's download URL points at. */
  readonly path?: string;
}

const SHA512 = 'http://www.w3.org/2001/04/xmlenc#sha512';
const RSA_SHA512 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512';

/** The signed directory for the files in `dir` now: content type and body. */
export function signedDirectory(options: ConfigurationSourceOptions): { contentType: string; body: Buffer } {
  const inner = `inner-${randomBytes(8).toString('hex')}`;
  const outer = `outer-${randomBytes(8).toString('hex')}`;
  const expires = new Date(Date.now() + (options.validitySeconds ?? 600) * 1000);
  const entries = configurationFiles(options.dir).map((f) => ({
    headers: [
      ['Content-type', 'application/octet-stream'],
      ['Content-transfer-encoding', 'base64'],
      ['Content-identifier', `${f.kind}; instance="${f.instance}"`],
      ['Content-location', `/${f.folder}/${f.name}`],
      ['Hash-algorithm-id', SHA512],
    ] as [string, string][],
    body: Buffer.from(createHash('sha512').update(readFileSync(f.path)).digest('base64')),
  }));
  const version = readVersion(options.dir);
  const directory = buildMultipart(inner, [{ headers: [['Expire-date', expires.toISOString()], ['Version', version]], body: Buffer.alloc(0) }, ...entries]);
  const signature = sign('sha512', directory, options.signingKey).toString('base64');
  const certHash = createHash('sha512').update(options.signingCert).digest('base64');
  const body = buildMultipart(outer, [
    { headers: [['Content-type', `multipart/mixed; charset=UTF-8; boundary=${inner}`]], body: directory },
    {
      headers: [
        ['Content-type', 'application/octet-stream'],
        ['Content-transfer-encoding', 'base64'],
        ['Signature-algorithm-id', RSA_SHA512],
        ['Verification-certificate-hash', `${certHash}; hash-algorithm-id="${SHA512}"`],
      ],
      body: Buffer.from(signature),
    },
  ]);
  return { contentType: `multipart/related; charset=UTF-8; boundary=${outer}`, body };
}

export function startConfigurationSource(options: ConfigurationSourceOptions, host: string, port: number): Promise<Server> {
  const downloadPath = options.path ?? '/internalconf';
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://source');
    const path = url.pathname;
    if (req.method !== 'GET') return void res.writeHead(405).end();
    if (path === downloadPath) {
      const asked = url.searchParams.get('version');
      if (asked !== null && asked !== readVersion(options.dir)) return void res.writeHead(404).end();
      const { contentType, body } = signedDirectory(options);
      return void res.writeHead(200, { 'Content-Type': contentType }).end(body);
    }
    const file = configurationFiles(options.dir).find((f) => `/${f.folder}/${f.name}` === path);
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(readFileSync(file.path));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

function configurationFiles(dir: string): { instance: string; folder: string; name: string; kind: string; path: string }[] {
  const out: { instance: string; folder: string; name: string; kind: string; path: string }[] = [];
  for (const folder of readdirSync(dir)) {
    if (!statSync(join(dir, folder)).isDirectory()) continue;
    const instance = decodeURIComponent(folder.replace(/\+/g, ' '));
    for (const [name, kind] of [
      [PRIVATE_PARAMETERS_FILE, CONTENT_ID_PRIVATE_PARAMETERS],
      [SHARED_PARAMETERS_FILE, CONTENT_ID_SHARED_PARAMETERS],
    ] as const) {
      const path = join(dir, folder, name);
      if (existsSync(path)) out.push({ instance, folder, name, kind, path });
    }
  }
  return out;
}

/** The version of our own shared parameters: the one version this source serves. */
function readVersion(dir: string): string {
  const instance = readFileSync(join(dir, INSTANCE_IDENTIFIER_FILE), 'utf8').trim();
  return String(readMetadata(join(dir, instanceFolder(instance), SHARED_PARAMETERS_FILE)).configurationVersion ?? MINIMUM_VERSION);
}
