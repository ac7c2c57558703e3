/** Bounded polling for end-to-end tests: what happens in other processes happens "soon", never at a known time. */

/**
 * Calls `check` every 300 ms until it returns a value, for at most `ms`; a throwing check counts as
 * "not yet". On timeout the error names `what` and the last exception seen.
 */
export async function eventually<T>(check: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`${what} did not happen within ${ms} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
