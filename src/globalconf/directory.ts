/**
 * The configuration directory as the reference's configuration client leaves it (pr-gconf,
 * VersionedConfigurationDirectory): `<dir>/instance-identifier`, and per instance a folder (the
 * identifier URL-encoded) with `shared-params.xml`, `private-params.xml` and any other parts, each
 * beside a `<file>.metadata` JSON naming its version and expiry. Every part is read with its own
 * version, so instances of different versions sit side by side; a part that cannot be read is
 * skipped and reported, not fatal, as the reference reads it.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { XrdError } from '../platform/errors.ts';
import { parsePrivateParameters, parseSharedParameters, type PartMetadata, type PrivateParameters, type SharedParameters } from './parameters.ts';

export const INSTANCE_IDENTIFIER_FILE = 'instance-identifier';
export const SHARED_PARAMETERS_FILE = 'shared-params.xml';
export const PRIVATE_PARAMETERS_FILE = 'private-params.xml';
export const METADATA_SUFFIX = '.metadata';

export interface ConfigurationDirectory {
  /** Our own instance, from `instance-identifier`. */
  readonly instanceIdentifier: string;
  /** Shared parameters by the instance identifier their content names (it wins over folder and metadata). */
  readonly shared: ReadonlyMap<string, SharedParameters>;
  readonly private: ReadonlyMap<string, PrivateParameters>;
  /** Parts that could not be read, each with why. */
  readonly skipped: readonly { readonly file: string; readonly error: XrdError }[];
}

/**
 * Reads every instance folder of `dir`.
 * @throws MalformedGlobalConf when `instance-identifier` is missing, unreadable or empty
 */
export function readConfigurationDirectory(dir: string): ConfigurationDirectory {
  const idFile = join(dir, INSTANCE_IDENTIFIER_FILE);
  const instanceIdentifier = readText(idFile).trim();
  if (!instanceIdentifier) throw new XrdError('MalformedGlobalConf', { file: idFile, reason: 'empty' });
  const shared = new Map<string, SharedParameters>();
  const privateParams = new Map<string, PrivateParameters>();
  const skipped: { file: string; error: XrdError }[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (!statSync(join(dir, name)).isDirectory()) continue;
    const read = <T extends { instanceIdentifier: string }>(fileName: string, parse: (xml: string, meta: PartMetadata, file: string) => T, into: Map<string, T>): void => {
      const file = join(dir, name, fileName);
      if (!existsSync(file)) return;
      try {
        const params = parse(readText(file), readMetadata(file), file);
        into.set(params.instanceIdentifier, params);
      } catch (err) {
        skipped.push({ file, error: err instanceof XrdError ? err : new XrdError('MalformedGlobalConf', { file, reason: (err as Error).message }, { cause: err }) });
      }
    };
    read(SHARED_PARAMETERS_FILE, parseSharedParameters, shared);
    read(PRIVATE_PARAMETERS_FILE, parsePrivateParameters, privateParams);
  }
  return { instanceIdentifier, shared, private: privateParams, skipped };
}

/** The reference's readiness states of a configuration directory (FSGlobalConfValidator). */
export type GlobalConfReadiness = 'READY_TO_INIT' | 'FAILURE_CONFIGURATION_ERROR' | 'FAILURE_MALFORMED' | 'FAILURE_MISSING_INSTANCE_IDENTIFIER';

/**
 * Whether `dir` can be loaded at all, checked in the reference's order: not a folder is a
 * configuration error; a folder without instance folders is malformed (nothing downloaded yet, or
 * a broken download); then `instance-identifier` must be there.
 */
export function globalConfReadiness(dir: string): GlobalConfReadiness {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return 'FAILURE_CONFIGURATION_ERROR';
  if (!readdirSync(dir, { withFileTypes: true }).some((e) => e.isDirectory())) return 'FAILURE_MALFORMED';
  if (!existsSync(join(dir, INSTANCE_IDENTIFIER_FILE))) return 'FAILURE_MISSING_INSTANCE_IDENTIFIER';
  return 'READY_TO_INIT';
}

/**
 * An instance identifier as a folder name, as Java's URLEncoder writes it (the reference's
 * escapeInstanceIdentifier): letters, digits and `.-*_` stay, a space becomes `+`, the rest %XX.
 */
export function instanceFolder(instanceIdentifier: string): string {
  return encodeURIComponent(instanceIdentifier)
    .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

/** `<file>.metadata`: JSON with `configurationVersion` and `expirationDate` (both optional). @throws MalformedGlobalConf */
export function readMetadata(file: string): PartMetadata {
  const metaFile = `${file}${METADATA_SUFFIX}`;
  if (!existsSync(metaFile)) return {};
  let json: { configurationVersion?: string | number | null; expirationDate?: string | null };
  try {
    json = JSON.parse(readText(metaFile));
  } catch (err) {
    throw new XrdError('MalformedGlobalConf', { file: metaFile, reason: (err as Error).message }, { cause: err });
  }
  const expiresAt = json.expirationDate ? new Date(json.expirationDate) : undefined;
  if (expiresAt && Number.isNaN(expiresAt.getTime())) throw new XrdError('MalformedGlobalConf', { file: metaFile, reason: `expirationDate "${json.expirationDate}" is not a date` });
  const version = json.configurationVersion === undefined || json.configurationVersion === null ? undefined : Number(json.configurationVersion);
  if (version !== undefined && !Number.isInteger(version)) throw new XrdError('MalformedGlobalConf', { file: metaFile, reason: `configurationVersion "${json.configurationVersion}" is not a number` });
  return { configurationVersion: version, expiresAt };
}

/** @throws MalformedGlobalConf */
export function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new XrdError('MalformedGlobalConf', { file, reason: (err as Error).message }, { cause: err });
  }
}
