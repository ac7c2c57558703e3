/**
 * Values kept for a while, bounded in number: the proxies ask the signer for the same key facts
 * and OCSP responses for every message, and the trust layer keeps verified OCSP statuses. Keys may
 * come from what others send (a member named in a request, a certificate), so a cache never grows
 * past `maxEntries`: expired entries leave first, then the oldest.
 *
 * Every entry lives the same `ttlMs` from when it was set, and a key set again moves to the end, so
 * the map's order is the order entries expire in: making room looks only at its front.
 */
export interface ExpiringMapOptions {
  readonly ttlMs: number;
  /** Most entries kept. */
  readonly maxEntries: number;
  /** Clock (Unix ms) for tests. Default Date.now. */
  readonly now?: () => number;
}

export class ExpiringMap<K, V> {
  private readonly entries = new Map<K, { readonly value: V; readonly until: number }>();
  private readonly now: () => number;

  constructor(private readonly options: ExpiringMapOptions) {
    if (!(options.maxEntries >= 1)) throw new RangeError(`maxEntries must be at least 1, not ${options.maxEntries}`);
    this.now = options.now ?? Date.now;
  }

  /** The value set for `key` less than `ttlMs` ago. */
  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    return entry && entry.until > this.now() ? entry.value : undefined;
  }

  set(key: K, value: V): void {
    const now = this.now();
    this.entries.delete(key);
    for (const [k, e] of this.entries) {
      if (e.until > now && this.entries.size < this.options.maxEntries) break;
      this.entries.delete(k);
    }
    this.entries.set(key, { value, until: now + this.options.ttlMs });
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  /** Entries held, expired ones not yet made room for included. */
  get size(): number {
    return this.entries.size;
  }
}

/**
 * Promises of values reused for `ttlMs`. A load that fails is forgotten (only if it is still the
 * entry: a late failure must not evict a newer value), so the next caller tries again.
 */
export class TtlCache<K, V> {
  private readonly entries: ExpiringMap<K, Promise<V>>;

  /** `maxEntries` defaults to 1024. */
  constructor(ttlMs: number, options: { readonly maxEntries?: number; readonly now?: () => number } = {}) {
    this.entries = new ExpiringMap({ ttlMs, maxEntries: options.maxEntries ?? 1024, now: options.now });
  }

  get(key: K, load: () => Promise<V>): Promise<V> {
    const kept = this.entries.get(key);
    if (kept) return kept;
    const value = load();
    this.entries.set(key, value);
    value.catch(() => {
      if (this.entries.get(key) === value) this.entries.delete(key);
    });
    return value;
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  /** Entries held (for tests and monitoring). */
  get size(): number {
    return this.entries.size;
  }
}
