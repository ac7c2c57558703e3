/**
 * An independent MIME reader for conformance checks: Python's `email` package (compat32, the
 * lenient reader Python itself uses for mail), not our multipart parser. It gives each part's
 * headers as sent, its exact body bytes (Content-Transfer-Encoding not applied: X-Road signs the
 * bytes on the wire) and its nested parts, and lists what Python found defective.
 */
import { execFile } from 'node:child_process';

export interface PyMimePart {
  /** Header names as sent, values unfolded. */
  readonly headers: readonly (readonly [string, string])[];
  /** The Content-Type's media type, lower case ('' when there is none). */
  readonly type: string;
  /** Python's defect classes for this part (e.g. StartBoundaryNotFoundDefect). */
  readonly defects: readonly string[];
  /** A leaf's bytes, exactly as between its header block and the next delimiter. */
  readonly body?: Buffer;
  /** A multipart's parts. */
  readonly parts?: readonly PyMimePart[];
}

const SCRIPT = `
import sys, re, json, base64, email, email.policy
msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.compat32)
def raw(text):
    # message_from_bytes read the bytes as ASCII with surrogateescape: this gives them back unchanged.
    return text.encode('ascii', 'surrogateescape') if isinstance(text, str) else bytes(text or b'')
def walk(p):
    headers = [[k, re.sub(r'\\r?\\n[ \\t]+', ' ', str(v))] for k, v in p.items()]
    ctype = next((v for k, v in headers if k.lower() == 'content-type'), '')
    out = {'headers': headers, 'type': ctype.split(';')[0].strip().lower(), 'defects': [type(d).__name__ for d in p.defects]}
    if p.is_multipart():
        out['parts'] = [walk(c) for c in p.get_payload()]
    else:
        # The stored payload: get_payload() would re-decode it by charset or Content-Transfer-Encoding.
        out['body'] = base64.b64encode(raw(p._payload)).decode('ascii')
    return out
print(json.dumps(walk(msg)))
`;

interface RawPart {
  headers: [string, string][];
  type: string;
  defects: string[];
  body?: string;
  parts?: RawPart[];
}

/** Reads `body` as the entity of `contentType` (whose own header is the first of the result). */
export function readMimeWithPython(contentType: string, body: Buffer): Promise<PyMimePart> {
  const input = Buffer.concat([Buffer.from(`Content-Type: ${contentType}\r\n\r\n`, 'latin1'), body]);
  return new Promise((resolve, reject) => {
    const child = execFile('python3', ['-c', SCRIPT], { maxBuffer: 256 * 1024 * 1024, timeout: 30_000, encoding: 'utf8' }, (err, stdout) => {
      if (err) return reject(err);
      resolve(convert(JSON.parse(stdout) as RawPart));
    });
    child.stdin!.end(input);
  });
}

function convert(p: RawPart): PyMimePart {
  return {
    headers: p.headers,
    type: p.type,
    defects: p.defects,
    ...(p.body !== undefined ? { body: Buffer.from(p.body, 'base64') } : {}),
    ...(p.parts ? { parts: p.parts.map(convert) } : {}),
  };
}

/** The first value of a header, by case-insensitive name. */
export const headerOf = (part: { readonly headers: readonly (readonly [string, string])[] }, name: string): string | undefined =>
  part.headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];

/**
 * A package's parts for comparing two packages: header lines with names in lower case, sorted
 * (the reference keeps a part's headers in a HashMap, so their order changes on the way), and bytes.
 */
export async function comparableParts(contentType: string, body: Buffer): Promise<{ headers: string[]; body?: Buffer }[]> {
  const read = await readMimeWithPython(contentType, body);
  return (read.parts ?? []).map((p) => ({ headers: p.headers.map(([n, v]) => `${n.toLowerCase()}: ${v}`).sort(), ...(p.body ? { body: p.body } : {}) }));
}
