/**
 * Where an instance's configuration can be downloaded (the reference's
 * SharedParametersConfigurationLocations and ConfigurationDownloadUtils): the anchor's download
 * URLs and, from version 3, every central server node the instance's shared parameters list as a
 * `<source>`, at the same path as the anchor's first http URL. HTTPS is tried first: each http URL
 * is also tried as https, before every http one; the order within each is random, so clients spread
 * over the nodes.
 */
import type { ConfigurationAnchor } from './anchor.ts';
import type { SharedConfigurationSource } from './parameters.ts';

export interface ConfigurationLocation {
  readonly url: string;
  /** DER certificates whose keys may sign the directory found there. */
  readonly verificationCerts: readonly Buffer[];
}

/**
 * The locations the shared parameters' sources give for `anchor`: https first, then http, one of
 * each per node, in the order the parameters list the nodes. Internal configuration (a path of
 * `internalconf`) is checked with the nodes' internal certificates, external (`externalconf`) with
 * the external ones, any other path with both. None when no anchor URL is a plain http URL.
 */
export function sharedParametersLocations(anchor: ConfigurationAnchor, sources: readonly SharedConfigurationSource[]): ConfigurationLocation[] {
  const firstHttp = anchor.sources.map((s) => s.downloadUrl).find((u) => u.startsWith('http://'));
  const host = firstHttp && /^http:\/\/[^/]*\//.exec(firstHttp);
  if (!host) return [];
  const path = firstHttp.slice(host[0].length);
  const certs = (s: SharedConfigurationSource): Buffer[] =>
    path === 'internalconf' ? [...s.internalVerificationCerts] : path === 'externalconf' ? [...s.externalVerificationCerts] : [...s.internalVerificationCerts, ...s.externalVerificationCerts];
  const https = sources.map((s) => ({ url: `https://${s.address}/${path}`, verificationCerts: certs(s) }));
  return [...https, ...https.map((l) => ({ ...l, url: `http://${l.url.slice('https://'.length)}` }))];
}

/**
 * `locations` in the order they are tried: every https location (the given ones and an https twin
 * of each http one) in random order, then the http ones in random order; each URL once.
 */
export function preferHttps(locations: readonly ConfigurationLocation[], random: () => number = Math.random): ConfigurationLocation[] {
  const https = locations.flatMap((l) => (l.url.startsWith('https://') ? [l] : l.url.startsWith('http://') ? [{ ...l, url: `https://${l.url.slice('http://'.length)}` }] : []));
  const http = locations.filter((l) => !l.url.startsWith('https://'));
  return unique([...shuffle(https, random), ...shuffle(http, random)]);
}

/** Each URL once, the first occurrence kept. */
export function unique(locations: readonly ConfigurationLocation[]): ConfigurationLocation[] {
  const seen = new Set<string>();
  return locations.filter((l) => !seen.has(l.url) && seen.add(l.url));
}

/** Fisher–Yates with the given source of randomness. */
function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
