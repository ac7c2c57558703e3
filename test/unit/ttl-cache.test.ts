/**
 * Caches bounded in time and number (src/platform/ttl-cache.ts), on a pinned clock: the keys may
 * come from what others send, so no caller can grow one past its bound.
 */
import { describe, expect, it } from 'vitest';
import { ExpiringMap, TtlCache } from '../../src/platform/ttl-cache.ts';

describe('ExpiringMap', () => {
  it('callers naming ever new keys do not grow it past maxEntries: the oldest leave', () => {
    const map = new ExpiringMap<number, string>({ ttlMs: 60_000, maxEntries: 3, now: () => 0 });
    for (let i = 0; i < 1000; i++) map.set(i, `v${i}`);
    expect(map.size).toBe(3);
    expect([996, 997, 998, 999].map((k) => map.get(k))).toEqual([undefined, 'v997', 'v998', 'v999']);
  });

  it('an entry is gone after ttlMs; expired entries make room before live ones', () => {
    let now = 0;
    const map = new ExpiringMap<string, number>({ ttlMs: 1000, maxEntries: 3, now: () => now });
    map.set('a', 1);
    map.set('b', 2);
    now = 500;
    map.set('c', 3);
    // Set again: it lives from now, after c.
    map.set('a', 4);
    now = 999;
    expect(['a', 'b', 'c'].map((k) => map.get(k))).toEqual([4, 2, 3]);
    now = 1000;
    expect(map.get('b')).toBeUndefined();
    map.set('d', 5);
    // b (expired) left, not c or a.
    expect(map.size).toBe(3);
    expect(['a', 'c', 'd'].map((k) => map.get(k))).toEqual([4, 3, 5]);
    now = 1500;
    map.set('e', 6);
    // c and a expired at 1500: both leave, whatever the bound.
    expect(map.size).toBe(2);
  });

  it('refuses a bound below one', () => {
    expect(() => new ExpiringMap({ ttlMs: 1, maxEntries: 0 })).toThrow(RangeError);
  });
});

describe('TtlCache', () => {
  it('signing for many distinct members does not grow the key cache without bound (MemberSigning)', async () => {
    const keys = new TtlCache<string, string>(30_000, { maxEntries: 16, now: () => 0 });
    for (let i = 0; i < 500; i++) await keys.get(`LOCAL/COM/${i}`, async () => `key of ${i}`);
    expect(keys.size).toBe(16);
  });

  it('reuses a load for ttlMs; forgets a failed load so the next caller tries again', async () => {
    let now = 0;
    const cache = new TtlCache<string, number>(1000, { now: () => now });
    let loads = 0;
    const load = async () => ++loads;
    expect(await cache.get('k', load)).toBe(1);
    now = 999;
    expect(await cache.get('k', load)).toBe(1);
    now = 1000;
    expect(await cache.get('k', load)).toBe(2);
    await expect(cache.get('bad', () => Promise.reject(new Error('signer down')))).rejects.toThrow('signer down');
    expect(await cache.get('bad', load)).toBe(3);
  });
});
