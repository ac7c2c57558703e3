/**
 * `GET /verificationconf` on the client proxy (the reference's AsicContainerClientRequestProcessor
 * with its VerificationConfWriter): what `xrd asic verify` — or the reference's asicverifier —
 * needs to check exported message log containers offline, as one zip: every instance's shared
 * parameters of the global configuration directory, with metadata that keeps only the
 * configuration version, and the own instance's identifier.
 *
 *     verificationconf/<instance>/shared-params.xml
 *     verificationconf/<instance>/shared-params.xml.metadata   {"configurationVersion":"3"}
 *     verificationconf/instance-identifier
 *
 * As the reference, global configuration need not be valid (not expired) for this.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { INSTANCE_IDENTIFIER_FILE, METADATA_SUFFIX, SHARED_PARAMETERS_FILE, readText } from '../globalconf/directory.ts';
import { XrdError } from '../platform/errors.ts';
import { writeZip, type ZipEntry } from '../platform/zip.ts';

export const VERIFICATIONCONF = 'verificationconf';
export const VERIFICATIONCONF_HEADERS: [string, string][] = [
  ['content-type', 'application/zip'],
  ['content-disposition', 'filename="verificationconf.zip"'],
];

const PREFIX = 'verificationconf/';
const CONTENT_ID_SHARED_PARAMETERS = 'SHARED-PARAMETERS';

/** @throws MalformedGlobalConf (no instance-identifier, a metadata file that is not JSON) */
export function verificationConf(dir: string): Buffer {
  const own = readText(join(dir, INSTANCE_IDENTIFIER_FILE)).trim();
  const entries: ZipEntry[] = [];
  for (const folder of readdirSync(dir).sort()) {
    const file = join(dir, folder, SHARED_PARAMETERS_FILE);
    if (!statSync(join(dir, folder)).isDirectory() || !existsSync(file)) continue;
    const metadata = readMetadataJson(`${file}${METADATA_SUFFIX}`);
    // The reference takes the part that the metadata says is shared parameters, named by the metadata's instance.
    if (metadata.contentIdentifier !== undefined && metadata.contentIdentifier !== CONTENT_ID_SHARED_PARAMETERS) continue;
    const instance = typeof metadata.instanceIdentifier === 'string' ? metadata.instanceIdentifier : decodeFolder(folder);
    const path = `${PREFIX}${instance}/${SHARED_PARAMETERS_FILE}`;
    entries.push({ name: path, data: readFileSync(file) });
    // ConfigurationPartMetadata with only the version set, as its toJson writes it (the version as a string).
    const version = metadata.configurationVersion === undefined || metadata.configurationVersion === null ? {} : { configurationVersion: String(metadata.configurationVersion) };
    entries.push({ name: `${path}${METADATA_SUFFIX}`, data: Buffer.from(JSON.stringify(version), 'utf8') });
  }
  entries.push({ name: `${PREFIX}${INSTANCE_IDENTIFIER_FILE}`, data: Buffer.from(own, 'utf8') });
  return writeZip(entries);
}

function readMetadataJson(file: string): { contentIdentifier?: string; instanceIdentifier?: string; configurationVersion?: string | number | null } {
  if (!existsSync(file)) return {};
  let json: unknown;
  try {
    json = JSON.parse(readText(file));
  } catch (err) {
    throw new XrdError('MalformedGlobalConf', { file, reason: (err as Error).message }, { cause: err });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new XrdError('MalformedGlobalConf', { file, reason: 'not a JSON object' });
  return json as ReturnType<typeof readMetadataJson>;
}

/** An instance folder's name back to the identifier (directory.ts instanceFolder, Java's URLEncoder). */
function decodeFolder(folder: string): string {
  try {
    return decodeURIComponent(folder.replace(/\+/g, ' '));
  } catch {
    return folder;
  }
}
