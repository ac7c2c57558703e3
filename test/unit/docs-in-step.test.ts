/** The reference documents in docs/ list exactly what the code defines (fastify's docs test, here). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/platform/errors.ts';
import { OPCODES, PROTOCOL_VERSION, PROXY_OPERATIONS } from '../../src/signerapi/operations.ts';

const doc = (name: string) => readFileSync(new URL(`../../docs/${name}`, import.meta.url), 'utf8');

describe('docs in step with the code', () => {
  it('docs/errors.md lists every error code with its status and message, and nothing else', () => {
    const rows = [...doc('errors.md').matchAll(/^\| `(\w+)` \| (\d+) \| (.+) \|$/gm)].map((m) => [m[1], Number(m[2]), m[3]]);
    expect(rows).toEqual(Object.entries(ERROR_CODES).map(([code, spec]) => [code, spec.httpStatus, spec.message]));
  });

  it('docs/signer-protocol.md lists every operation with its opcode, and the protocol version', () => {
    const text = doc('signer-protocol.md');
    const rows = [...text.matchAll(/^\| (\d+) \| `(\w+)` \|/gm)].map((m) => [m[2], Number(m[1])]);
    expect(Object.fromEntries(rows)).toEqual(OPCODES);
    expect(text).toContain(`Protocol version: ${PROTOCOL_VERSION}`);
  });

  it('docs/signer-protocol.md marks exactly the operations the proxy socket serves', () => {
    const marked = [...doc('signer-protocol.md').matchAll(/^\| \d+ \| `(\w+)` \| proxy \|/gm)].map((m) => m[1]);
    expect(marked.sort()).toEqual([...PROXY_OPERATIONS].sort());
  });
});
