/**
 * Counts of the signer's `sign` requests by key and outcome, with a latency histogram per key, for
 * the `health` operation (the proxy's /metrics shows them). Kept in memory since the daemon started:
 * Prometheus reads a restart as a counter reset, which it handles.
 */
import { SIGNATURE_DURATION_BUCKETS, type KeySignatureStats } from '../signerapi/operations.ts';

interface KeyEntry {
  readonly results: Map<string, number>;
  /** Per-bucket counts (not cumulative); the last slot counts what exceeds every bound. */
  readonly buckets: number[];
  sum: number;
  count: number;
}

export class SignatureStats {
  private readonly keys = new Map<string, KeyEntry>();

  /** One request: `key` is the key id or `unknown`, `result` `success` or an error code. */
  record(key: string, result: string, seconds: number): void {
    let entry = this.keys.get(key);
    if (!entry) {
      entry = { results: new Map(), buckets: new Array<number>(SIGNATURE_DURATION_BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
      this.keys.set(key, entry);
    }
    entry.results.set(result, (entry.results.get(result) ?? 0) + 1);
    const i = SIGNATURE_DURATION_BUCKETS.findIndex((b) => seconds <= b);
    entry.buckets[i < 0 ? SIGNATURE_DURATION_BUCKETS.length : i]!++;
    entry.sum += seconds;
    entry.count++;
  }

  view(): { buckets: number[]; keys: KeySignatureStats[] } {
    return {
      buckets: [...SIGNATURE_DURATION_BUCKETS],
      keys: [...this.keys].map(([keyId, e]) => {
        let cumulative = 0;
        const counts = SIGNATURE_DURATION_BUCKETS.map((_, i) => (cumulative += e.buckets[i]!));
        return { keyId, results: Object.fromEntries(e.results), duration: { counts, sumSeconds: e.sum, count: e.count } };
      }),
    };
  }
}
