/**
 * Downloading global configuration as the reference's configuration client does (pr-gconf §2.6,
 * ConfigurationClient and ConfigurationDownloader):
 *  1. Our instance's configuration from the anchor's locations and, from version 3, the central
 *     server nodes our stored shared parameters list (locations.ts), the one that worked last time
 *     first. At each location the version is negotiated: `?version=6`, and on 404 one lower, down to
 *     2; the first 200 answer is the signed directory. A `?version=` already in the URL is used
 *     as it is.
 *  2. The directory is parsed and verified (signed-directory.ts), then every listed part whose
 *     hash differs from the file we hold is downloaded, checked against its hash and, for private
 *     and shared parameters, parsed before anything is written.
 *  3. For each anchor in our new private parameters that the federation setting allows, that
 *     instance's shared parameters the same way (SHARED-PARAMETERS only). A federated download that
 *     fails is reported and its last good files stay.
 *  4. Files are replaced by renames (data, then metadata); files a new directory no longer lists
 *     are removed, and folders of instances no longer referenced.
 * Any failure before step 4 in our own instance's download leaves the configuration in place.
 * Every request is bounded by a byte cap and one deadline, connection to last byte
 * (platform/http-client.ts): a source that trickles cannot hold a download longer. HTTPS
 * certificates are checked against the system's trust store, as the reference's client does by
 * default; the configuration itself is trusted only through its signature.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { XrdError } from '../platform/errors.ts';
import { fetchBounded, type BoundedResponse } from '../platform/http-client.ts';
import type { ConfigurationAnchor } from './anchor.ts';
import { INSTANCE_IDENTIFIER_FILE, METADATA_SUFFIX, PRIVATE_PARAMETERS_FILE, SHARED_PARAMETERS_FILE, instanceFolder, readMetadata } from './directory.ts';
import { federationFilter } from './federation.ts';
import { loadGlobalConf, type GlobalConf } from './global-conf.ts';
import { preferHttps, sharedParametersLocations, unique, type ConfigurationLocation } from './locations.ts';
import { MINIMUM_VERSION, SUPPORTED_VERSIONS, parsePrivateParameters, parseSharedParameters, type PrivateParameters } from './parameters.ts';
import { CONTENT_ID_PRIVATE_PARAMETERS, CONTENT_ID_SHARED_PARAMETERS, parseSignedDirectory, type DirectoryPart, type SignedDirectory } from './signed-directory.ts';

export interface DownloadOptions {
  /** Ask for exactly this version (`?version=` set whatever the URL says) instead of negotiating. */
  readonly version?: number;
  /** Deadline of each request, connection to last byte (default 60 s). */
  readonly timeoutMs?: number;
  /** Largest signed directory accepted (default 1 MiB). */
  readonly maxDirectoryBytes?: number;
  /** Largest configuration part accepted (default 64 MiB). */
  readonly maxPartBytes?: number;
  /** Which federated instances to download (federation.ts; default NONE). */
  readonly allowedFederations?: string;
  /** The clock the directory's Expire-date is checked against. */
  readonly clock?: () => Date;
  /** Randomness for the order of locations. */
  readonly random?: () => number;
  /** Told of each location that failed before another was tried (the reference logs each). */
  readonly onLocationFailure?: (instance: string, url: string, error: XrdError) => void;
}

/** A part of a downloaded directory, as stored. */
export interface StoredPart {
  readonly contentIdentifier: string;
  readonly instance: string;
  /** Relative to the configuration directory: `<instance folder>/<file>`. */
  readonly file: string;
  /** False when the file we held already had the listed hash (only its metadata was renewed). */
  readonly downloaded: boolean;
}

export interface DownloadReport {
  readonly instanceIdentifier: string;
  /** The URL the directory came from, with its `?version=`. */
  readonly url: string;
  readonly expiresAt: Date;
  readonly version?: string;
  /** Parts stored from our instance's directory and the federated ones, in the order they came. */
  readonly parts: readonly StoredPart[];
  /** Each federated instance the setting allows, with where its configuration came from or why it failed. */
  readonly federated: readonly { readonly instance: string; readonly url?: string; readonly error?: XrdError }[];
}

const DEFAULTS = { timeoutMs: 60_000, maxDirectoryBytes: 1024 * 1024, maxPartBytes: 64 * 1024 * 1024 };

/** A part ready to be written: new content, or only new metadata for a file we hold. */
interface StagedPart {
  readonly part: DirectoryPart;
  readonly folder: string;
  readonly name: string;
  readonly content?: Buffer;
  readonly metadata: string;
}

interface Downloaded {
  readonly instance: string;
  readonly url: string;
  readonly directory: SignedDirectory;
  readonly staged: readonly StagedPart[];
}

/** Keeps the locations that worked, to try them first next time. */
export class ConfigurationDownloader {
  /** Each location that worked, by its URL as listed, with the URL (and version) it worked at. */
  private readonly remembered = new Map<string, string>();

  constructor(private readonly options: DownloadOptions = {}) {}

  /**
   * Downloads, verifies and installs the configuration of `anchor` and of the federated instances
   * it leads to into `dir`.
   * @throws the coded error of the last location tried for our own instance (GlobalConf* codes,
   *   OutdatedGlobalConf, MalformedGlobalConf for a part that does not parse); `dir` is unchanged then
   */
  async download(anchor: ConfigurationAnchor, dir: string): Promise<DownloadReport> {
    const own = anchor.instanceIdentifier;
    const main = await this.fetchConfiguration(anchor, dir);
    const allowed = federationFilter(this.options.allowedFederations, own);
    const anchors = (ownPrivateParameters(main, dir, own)?.configurationAnchors ?? []).filter((a) => allowed(a.instanceIdentifier));
    const legs: Downloaded[] = [main];
    const federated: { instance: string; url?: string; error?: XrdError }[] = [];
    for (const federatedAnchor of anchors) {
      try {
        const leg = await this.fetchConfiguration(federatedAnchor, dir, [CONTENT_ID_SHARED_PARAMETERS]);
        legs.push(leg);
        federated.push({ instance: federatedAnchor.instanceIdentifier, url: leg.url });
      } catch (err) {
        federated.push({ instance: federatedAnchor.instanceIdentifier, error: asXrdError(err) });
      }
    }
    install(dir, own, legs, {
      keep: new Set([own, ...anchors.map((a) => a.instanceIdentifier)].map(instanceFolder)),
      failed: new Set(federated.filter((f) => f.error).map((f) => instanceFolder(f.instance))),
    });
    return {
      instanceIdentifier: own,
      url: main.url,
      expiresAt: main.directory.expiresAt,
      version: main.directory.version,
      parts: legs.flatMap((l) => l.staged.map((s) => ({ contentIdentifier: s.part.contentIdentifier, instance: s.part.instance, file: join(s.folder, s.name), downloaded: s.content !== undefined }))),
      federated,
    };
  }

  /** One instance's directory and parts, from the first location that gives them. */
  private async fetchConfiguration(anchor: ConfigurationAnchor, dir: string, contentIdentifiers?: readonly string[]): Promise<Downloaded> {
    const instance = anchor.instanceIdentifier;
    let last: XrdError | undefined;
    for (const { location, baseUrl } of this.locations(anchor, dir)) {
      try {
        const { url, answer } = await this.fetchDirectory(location);
        const directory = parseSignedDirectory(answer.headers['content-type'] ?? '', answer.body, {
          instance,
          url,
          verificationCerts: location.verificationCerts,
          now: this.now(),
          contentIdentifiers,
        });
        const staged = await this.fetchParts(directory, url, dir, instance);
        this.remembered.set(baseUrl, url);
        return { instance, url, directory, staged };
      } catch (err) {
        last = asXrdError(err);
        if (this.remembered.get(baseUrl) === location.url) this.remembered.delete(baseUrl);
        this.options.onLocationFailure?.(instance, location.url, last);
      }
    }
    throw last ?? new XrdError('GlobalConfDownloadUrlConnectionFailure', { url: '-', reason: `the anchor of ${instance} names no location` });
  }

  /** Shared parameters' nodes, then the anchor's URLs, https first; the last good one before all. */
  private locations(anchor: ConfigurationAnchor, dir: string): { location: ConfigurationLocation; baseUrl: string }[] {
    const random = this.options.random;
    const fromAnchor = anchor.sources.map((s) => ({ url: s.downloadUrl, verificationCerts: s.verificationCerts }));
    const list = unique([...preferHttps(sharedParametersLocations(anchor, storedSources(dir, anchor.instanceIdentifier)), random), ...preferHttps(fromAnchor, random)]);
    const candidates = list.map((location) => ({ location, baseUrl: location.url }));
    const worked = list.find((l) => this.remembered.has(l.url));
    return worked ? [{ location: { ...worked, url: this.remembered.get(worked.url)! }, baseUrl: worked.url }, ...candidates] : candidates;
  }

  /**
   * The signed directory at `location`, the version negotiated from the newest down: a 404 means
   * the source does not serve that version.
   * @throws GlobalConfGetVersionFailed (no answer while probing), GlobalConfDownloadUrlConnectionFailure
   */
  private async fetchDirectory(location: ConfigurationLocation): Promise<{ url: string; answer: BoundedResponse }> {
    let url: URL;
    try {
      url = new URL(location.url);
    } catch (err) {
      throw new XrdError('GlobalConfDownloadUrlConnectionFailure', { url: location.url, reason: 'not a URL' }, { cause: err });
    }
    const limits = { maxBytes: this.options.maxDirectoryBytes ?? DEFAULTS.maxDirectoryBytes, deadlineMs: this.options.timeoutMs ?? DEFAULTS.timeoutMs };
    // An enforced version, else the URL's own, else each version from the newest down.
    const versions: readonly (number | undefined)[] = this.options.version !== undefined ? [this.options.version] : url.searchParams.has('version') ? [undefined] : SUPPORTED_VERSIONS;
    for (const version of versions) {
      if (version !== undefined) url.searchParams.set('version', String(version));
      const probing = versions.length > 1 && version !== MINIMUM_VERSION;
      let answer: BoundedResponse;
      try {
        answer = await fetchBounded(url, limits);
      } catch (err) {
        throw new XrdError(probing ? 'GlobalConfGetVersionFailed' : 'GlobalConfDownloadUrlConnectionFailure', { url: url.toString(), reason: (err as Error).message }, { cause: err });
      }
      if (answer.status === 200) return { url: url.toString(), answer };
      if (!(answer.status === 404 && probing)) throw new XrdError('GlobalConfDownloadUrlConnectionFailure', { url: url.toString(), reason: `HTTP ${answer.status}` });
    }
    throw new XrdError('GlobalConfDownloadUrlConnectionFailure', { url: url.toString(), reason: 'no version served' });
  }

  /** Each listed part: the file we hold when its hash still matches, otherwise downloaded and checked. */
  private async fetchParts(directory: SignedDirectory, url: string, dir: string, instance: string): Promise<StagedPart[]> {
    const staged: StagedPart[] = [];
    for (const part of directory.parts) {
      // A part for no instance has no folder to go to (the reference would write it beside the folders).
      if (!part.instance) continue;
      const { folder, name } = partFile(part, instance);
      const metadata = JSON.stringify({
        contentIdentifier: part.contentIdentifier,
        instanceIdentifier: part.instance,
        expirationDate: directory.expiresAt.toISOString(),
        ...(part.contentFileName ? { contentFileName: part.contentFileName } : {}),
        contentLocation: part.contentLocation,
        ...(directory.version ? { configurationVersion: directory.version } : {}),
      });
      const held = join(dir, folder, name);
      if (existsSync(held) && createHash(part.hashAlgorithm).update(readFileSync(held)).digest().equals(part.hash)) {
        staged.push({ part, folder, name, metadata });
        continue;
      }
      const content = await this.fetchPart(part, url);
      checkContent(content, part, directory.version, instance);
      staged.push({ part, folder, name, content, metadata });
    }
    return staged;
  }

  /** @throws GlobalConfPartDownloadFailure, GlobalConfPartDownloadedFileIntegrityFailure */
  private async fetchPart(part: DirectoryPart, directoryUrl: string): Promise<Buffer> {
    const failure = (reason: string, cause?: unknown) => new XrdError('GlobalConfPartDownloadFailure', { location: part.contentLocation, url: directoryUrl, reason }, { cause });
    let target: string;
    try {
      target = new URL(part.contentLocation, directoryUrl).toString();
    } catch (err) {
      throw failure('not a URL', err);
    }
    let answer: BoundedResponse;
    try {
      answer = await fetchBounded(target, { maxBytes: this.options.maxPartBytes ?? DEFAULTS.maxPartBytes, deadlineMs: this.options.timeoutMs ?? DEFAULTS.timeoutMs });
    } catch (err) {
      throw failure((err as Error).message, err);
    }
    if (answer.status !== 200) throw failure(`HTTP ${answer.status}`);
    if (!createHash(part.hashAlgorithm).update(answer.body).digest().equals(part.hash)) throw new XrdError('GlobalConfPartDownloadedFileIntegrityFailure', { location: part.contentLocation });
    return answer.body;
  }

  private now(): Date {
    return this.options.clock?.() ?? new Date();
  }
}

/**
 * Downloads and installs the configuration of `anchor` (and allowed federated instances) into `dir`.
 * @returns the configuration now in `dir`
 * @throws as ConfigurationDownloader.download; MalformedGlobalConf when what is installed does not
 *   load (e.g. a directory that lists no shared parameters for our instance)
 */
export async function downloadGlobalConf(anchor: ConfigurationAnchor, dir: string, options: DownloadOptions = {}): Promise<GlobalConf> {
  await new ConfigurationDownloader(options).download(anchor, dir);
  return loadGlobalConf(dir, { clock: options.clock });
}

/** The `<source>` nodes of the shared parameters we hold for `instance` (none before version 3). */
function storedSources(dir: string, instance: string) {
  const file = join(dir, instanceFolder(instance), SHARED_PARAMETERS_FILE);
  if (!existsSync(file)) return [];
  try {
    return parseSharedParameters(readFileSync(file, 'utf8'), readMetadata(file), file).sources ?? [];
  } catch {
    // Unreadable parameters give no extra locations; the anchor's remain (as in the reference).
    return [];
  }
}

/** Our private parameters as the new directory has them: downloaded now, or the file we hold. */
function ownPrivateParameters(main: Downloaded, dir: string, own: string): PrivateParameters | undefined {
  const staged = main.staged.find((s) => s.part.contentIdentifier === CONTENT_ID_PRIVATE_PARAMETERS && s.part.instance === own);
  if (!staged) return undefined;
  const file = join(dir, staged.folder, staged.name);
  return parsePrivateParameters((staged.content ?? readFileSync(file)).toString('utf8'), { configurationVersion: versionNumber(main.directory.version) }, file);
}

/**
 * Where a part is stored, as the reference names it (FileNameProviderImpl): private and shared
 * parameters by their fixed names, other parts by Content-file-name or the last segment of
 * Content-location, in the instance's folder. Names that would leave the folder or take another
 * part's place are refused.
 * @throws GlobalConfHeaderFieldWrongValue
 */
function partFile(part: DirectoryPart, instance: string): { folder: string; name: string } {
  const folder = instanceFolder(part.instance);
  if (folder === '.' || folder === '..') throw new XrdError('GlobalConfHeaderFieldWrongValue', { instance, field: 'Content-identifier', value: part.instance, reason: 'not an instance identifier' });
  if (part.contentIdentifier === CONTENT_ID_PRIVATE_PARAMETERS) return { folder, name: PRIVATE_PARAMETERS_FILE };
  if (part.contentIdentifier === CONTENT_ID_SHARED_PARAMETERS) return { folder, name: SHARED_PARAMETERS_FILE };
  const field = part.contentFileName ? 'Content-file-name' : 'Content-location';
  const source = part.contentFileName ?? part.contentLocation.split(/[?#]/)[0]!;
  const name = source.slice(source.lastIndexOf('/') + 1);
  if (!name || name === '.' || name === '..' || /[\\\0]/.test(name) || name.endsWith(METADATA_SUFFIX) || name === PRIVATE_PARAMETERS_FILE || name === SHARED_PARAMETERS_FILE) {
    throw new XrdError('GlobalConfHeaderFieldWrongValue', { instance, field, value: source, reason: 'not a file name a configuration part may take' });
  }
  return { folder, name };
}

/**
 * New private or shared parameters must parse in the directory's version and describe the instance
 * the directory says (the reference's ContentHandler).
 * @throws MalformedGlobalConf, GlobalConfPartInvalidInstanceIdentifier
 */
function checkContent(content: Buffer, part: DirectoryPart, version: string | undefined, instance: string): void {
  const parse = part.contentIdentifier === CONTENT_ID_PRIVATE_PARAMETERS ? parsePrivateParameters : part.contentIdentifier === CONTENT_ID_SHARED_PARAMETERS ? parseSharedParameters : undefined;
  if (!parse) return;
  const label = `${part.contentLocation} of ${instance}`;
  const params = parse(content.toString('utf8'), { configurationVersion: versionNumber(version) }, label);
  if (params.instanceIdentifier !== part.instance) throw new XrdError('GlobalConfPartInvalidInstanceIdentifier', { location: part.contentLocation, actual: params.instanceIdentifier, expected: part.instance });
}

function versionNumber(version: string | undefined): number | undefined {
  return version === undefined ? undefined : Number(version);
}

/**
 * Writes every staged part (data, then metadata, each by a rename), removes the files a successful
 * download no longer lists in its instance's folder (not where a download for the folder failed:
 * its last good files stay), then the folders of instances no longer referenced.
 * @throws GlobalConfPartFileSaveFailure
 */
function install(dir: string, own: string, legs: readonly Downloaded[], folders: { keep: ReadonlySet<string>; failed: ReadonlySet<string> }): void {
  const put = (file: string, content: Buffer | string): void => {
    const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      writeFileSync(temp, content);
      renameSync(temp, file);
    } catch (err) {
      rmSync(temp, { force: true });
      throw new XrdError('GlobalConfPartFileSaveFailure', { file, reason: (err as Error).message }, { cause: err });
    }
  };
  mkdirSync(dir, { recursive: true });
  const listed = new Map<string, Set<string>>();
  for (const { staged } of legs) {
    for (const s of staged) {
      mkdirSync(join(dir, s.folder), { recursive: true });
      if (s.content) put(join(dir, s.folder, s.name), s.content);
      put(join(dir, s.folder, s.name + METADATA_SUFFIX), s.metadata);
      const names = listed.get(s.folder) ?? new Set<string>();
      listed.set(s.folder, names.add(s.name).add(s.name + METADATA_SUFFIX));
    }
  }
  for (const folder of new Set(legs.map((l) => instanceFolder(l.instance)))) {
    const path = join(dir, folder);
    if (folders.failed.has(folder) || !existsSync(path)) continue;
    const names = listed.get(folder) ?? new Set<string>();
    for (const name of readdirSync(path)) if (!names.has(name)) rmSync(join(path, name), { recursive: true, force: true });
  }
  for (const name of readdirSync(dir)) {
    if (!folders.keep.has(name) && statSync(join(dir, name)).isDirectory()) rmSync(join(dir, name), { recursive: true, force: true });
  }
  put(join(dir, INSTANCE_IDENTIFIER_FILE), own);
}

function asXrdError(err: unknown): XrdError {
  return err instanceof XrdError ? err : new XrdError('InternalError', { reason: (err as Error).message }, { cause: err });
}
