/**
 * Administrator actions as JSON lines (time, event, what it touched, outcome). Callers pass the
 * fields explicitly; PINs are never among them. Each line is one append, so a crash loses at most
 * the line being written.
 */
import { appendFileSync } from 'node:fs';

export type AuditFields = Record<string, string | number | boolean | null | undefined>;

export interface AuditLog {
  record(event: string, fields: AuditFields, outcome: { error?: string }): void;
}

export function fileAuditLog(path: string): AuditLog {
  return {
    record(event, fields, outcome) {
      const line = { time: new Date().toISOString(), event, ...fields, result: outcome.error ? 'failure' : 'success', error: outcome.error };
      appendFileSync(path, JSON.stringify(line) + '\n', { mode: 0o600 });
    },
  };
}
