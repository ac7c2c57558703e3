/**
 * A configuration source (pr-gconf §2.3–2.4) serving a configuration directory written by
 * `writeGlobalConf`: the signed directory at its download path and each file at its location. The
 * local instance uses it in place of a central server; tests use it to prove downloads.
 */
import { createHash, randomBytes, sign, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { buildMultipart } from '../protocol/multipart.ts';

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
      ['Content-location', `/${f.instance}/${f.name}`],
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
    const path = new URL(req.url ?? '/', 'http://source').pathname;
    if (req.method !== 'GET') return void res.writeHead(405).end();
    if (path === downloadPath) {
      const { contentType, body } = signedDirectory(options);
      return void res.writeHead(200, { 'Content-Type': contentType }).end(body);
    }
    const file = configurationFiles(options.dir).find((f) => `/${f.instance}/${f.name}` === path);
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(readFileSync(file.path));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

function configurationFiles(dir: string): { instance: string; name: string; kind: string; path: string }[] {
  const out: { instance: string; name: string; kind: string; path: string }[] = [];
  for (const instance of readdirSync(dir)) {
    if (!statSync(join(dir, instance)).isDirectory()) continue;
    for (const [name, kind] of [
      ['private-params.xml', 'PRIVATE-PARAMETERS'],
      ['shared-params.xml', 'SHARED-PARAMETERS'],
    ] as const) {
      const path = join(dir, instance, name);
      if (existsSync(path)) out.push({ instance, name, kind, path });
    }
  }
  return out;
}

function readVersion(dir: string): string {
  const instance = readFileSync(join(dir, 'instance-identifier'), 'utf8').trim();
  const meta = join(dir, instance, 'shared-params.xml.metadata');
  return existsSync(meta) ? String((JSON.parse(readFileSync(meta, 'utf8')) as { configurationVersion?: string }).configurationVersion ?? '3') : '3';
}
