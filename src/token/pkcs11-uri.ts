/**
 * RFC 7512 `pkcs11:` URIs, so administrators can name tokens and keys the way p11-kit, OpenSSL and
 * pkcs11-tool do. Only path attributes are used; a `pin-value` query attribute is refused because a
 * PIN must never travel inside a URI.
 */
import { XrdError } from '../platform/errors.ts';

export interface Pkcs11UriParts {
  token?: string;
  serial?: string;
  manufacturer?: string;
  model?: string;
  /** CKA_ID as raw bytes (the URI percent-encodes them). */
  id?: Buffer;
  object?: string;
  type?: 'private' | 'public' | 'cert' | 'secret' | 'data';
}

const PATH_ATTRIBUTES = ['token', 'manufacturer', 'model', 'serial', 'object', 'type', 'id'] as const;

export function parsePkcs11Uri(uri: string): Pkcs11UriParts {
  if (!uri.toLowerCase().startsWith('pkcs11:')) throw new XrdError('InvalidIdentifier', { value: uri, reason: 'not a pkcs11: URI' });
  const rest = uri.slice('pkcs11:'.length);
  const [path = '', query = ''] = rest.split('?', 2);
  if (/(^|&)pin-(value|source)=/.test(query)) throw new XrdError('InvalidIdentifier', { value: `${uri.slice(0, uri.indexOf('?'))}?…`, reason: 'PINs are not accepted in pkcs11: URIs' });
  const out: Pkcs11UriParts = {};
  for (const pair of path.split(';').filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq < 0) throw new XrdError('InvalidIdentifier', { value: uri, reason: `pkcs11: URI attribute "${pair}" has no value` });
    const name = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    switch (name) {
      case 'id':
        out.id = percentDecodeBytes(raw);
        break;
      case 'type':
        if (!['private', 'public', 'cert', 'secret', 'data'].includes(raw)) throw new XrdError('InvalidIdentifier', { value: uri, reason: `unknown object type "${raw}"` });
        out.type = raw as Pkcs11UriParts['type'];
        break;
      case 'token':
      case 'serial':
      case 'manufacturer':
      case 'model':
      case 'object':
        out[name] = percentDecodeBytes(raw).toString('utf8');
        break;
      default:
        // RFC 7512 §2.3: unknown path attributes must make the URI unusable rather than be ignored.
        if (!name.startsWith('x-')) throw new XrdError('InvalidIdentifier', { value: uri, reason: `unknown pkcs11: URI attribute "${name}"` });
    }
  }
  return out;
}

export function formatPkcs11Uri(parts: Pkcs11UriParts): string {
  const attrs: string[] = [];
  for (const name of PATH_ATTRIBUTES) {
    const value = parts[name];
    if (value === undefined) continue;
    attrs.push(`${name}=${Buffer.isBuffer(value) ? percentEncodeAll(value) : percentEncodeText(value)}`);
  }
  return `pkcs11:${attrs.join(';')}`;
}

function percentDecodeBytes(s: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%') {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new XrdError('InvalidIdentifier', { value: s, reason: `bad percent-encoding in "${s}"` });
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(s[i]!, 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

function percentEncodeAll(b: Buffer): string {
  return [...b].map((x) => '%' + x.toString(16).padStart(2, '0').toUpperCase()).join('');
}

function percentEncodeText(s: string): string {
  // RFC 7512 pchar minus ';' (separator) — everything else percent-encoded.
  return [...Buffer.from(s, 'utf8')]
    .map((x) => {
      const c = String.fromCharCode(x);
      return /[A-Za-z0-9\-._~:[\]@!$'()*+,=&]/.test(c) && x < 0x80 ? c : '%' + x.toString(16).padStart(2, '0').toUpperCase();
    })
    .join('');
}
