/**
 * Promises of values reused for a while: the proxies ask the signer for the same key facts and
 * OCSP responses for every message. A load that fails is forgotten (only if it is still the entry:
 * a late failure must not evict a newer value), so the next caller tries again.
 */
export class TtlCache<K, V> {
  private readonly entries = new Map<K, { value: Promise<V>; until: number }>();

  constructor(private readonly ttlMs: number) {}

  get(key: K, load: () => Promise<V>): Promise<V> {
    const entry = this.entries.get(key);
    if (entry && entry.until > Date.now()) return entry.value;
    const value = load();
    const fresh = { value, until: Date.now() + this.ttlMs };
    this.entries.set(key, fresh);
    value.catch(() => {
      if (this.entries.get(key) === fresh) this.entries.delete(key);
    });
    return value;
  }

  delete(key: K): void {
    this.entries.delete(key);
  }
}
