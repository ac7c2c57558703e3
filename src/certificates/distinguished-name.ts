/**
 * Whether two X.501 Names are the same name, one of them possibly written as text (RFC 4514/2253,
 * as XAdES X509IssuerName carries it). Writers differ in spacing, keywords, escapes and string
 * types — the reference writes Java's `X500Principal.getName()` form (`CN=Test CA,O=Test`), others
 * `CN=Test CA, O=Test` or `2.5.4.3=#0c07…` — so names are compared as X.500 compares them, not
 * as text: RDN by RDN in order, attribute types by OID, values as strings with case, Unicode form
 * and runs of spaces folded (caseIgnoreMatch, roughly), the attributes of a multi-valued RDN in
 * any order.
 */
import { childrenOf, content, readOid, readTlv, whole, type Tlv } from './der.ts';

/** Attribute type keywords of RFC 4514 and those Java, OpenSSL and EU DSS write. */
const KEYWORDS: Record<string, string> = {
  CN: '2.5.4.3',
  SN: '2.5.4.4',
  SURNAME: '2.5.4.4',
  SERIALNUMBER: '2.5.4.5',
  C: '2.5.4.6',
  L: '2.5.4.7',
  ST: '2.5.4.8',
  S: '2.5.4.8',
  STREET: '2.5.4.9',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  T: '2.5.4.12',
  TITLE: '2.5.4.12',
  POSTALCODE: '2.5.4.17',
  GIVENNAME: '2.5.4.42',
  GN: '2.5.4.42',
  INITIALS: '2.5.4.43',
  GENERATIONQUALIFIER: '2.5.4.44',
  DNQUALIFIER: '2.5.4.46',
  ORGANIZATIONIDENTIFIER: '2.5.4.97',
  DC: '0.9.2342.19200300.100.1.25',
  UID: '0.9.2342.19200300.100.1.1',
  E: '1.2.840.113549.1.9.1',
  EMAILADDRESS: '1.2.840.113549.1.9.1',
};

/** An RDN as compared: each attribute as `oid=value`, the value folded, or `#hex` when it is not a string. */
type Rdn = string[];

/** Whether the text names the DER Name. An unreadable text names nothing. */
export function textNamesName(text: string, nameDer: Buffer): boolean {
  // Every message verified asks this of the same few issuer names (XAdES IssuerSerial against the
  // signing certificate's issuer): remembered, by the whole text and the whole DER.
  const key = `${text}\u0000${nameDer.toString('latin1')}`;
  let named = textNames.get(key);
  if (named === undefined) {
    const rdns = parseTextName(text);
    named = rdns !== undefined && sameRdns(rdns.reverse(), derRdns(nameDer));
    if (textNames.size >= TEXT_NAMES_LIMIT) textNames.delete(textNames.keys().next().value!);
    textNames.set(key, named);
  }
  return named;
}

const TEXT_NAMES_LIMIT = 256;
const textNames = new Map<string, boolean>();

/** Whether two DER Names are the same name. */
export function sameName(a: Buffer, b: Buffer): boolean {
  return a.equals(b) || sameRdns(derRdns(a), derRdns(b));
}

function sameRdns(a: readonly Rdn[], b: readonly Rdn[]): boolean {
  const key = (rdns: readonly Rdn[]) => JSON.stringify(rdns.map((rdn) => [...rdn].sort()));
  return key(a) === key(b);
}

/** The RDNs of a DER Name, first (least specific) first. */
function derRdns(nameDer: Buffer): Rdn[] {
  return childrenOf(nameDer, readTlv(nameDer, 0)).map((rdn) =>
    childrenOf(nameDer, rdn).map((atv) => {
      const [type, value] = childrenOf(nameDer, atv) as [Tlv, Tlv];
      return `${readOid(nameDer, type)}=${comparable(whole(nameDer, value))}`;
    }),
  );
}

/** A DER attribute value as a folded string when it is one of the string types, else `#hex`. */
function comparable(value: Buffer): string {
  const tlv = readTlv(value, 0);
  const text = content(value, tlv);
  if (tlv.end !== value.length) return `#${value.toString('hex')}`;
  switch (tlv.tag) {
    case 0x0c: // UTF8String
      return fold(text.toString('utf8'));
    case 0x13: // PrintableString
    case 0x14: // TeletexString, read as Latin-1 as most readers do
    case 0x16: // IA5String
      return fold(text.toString('latin1'));
    case 0x1e: // BMPString: UTF-16, big-endian
      return text.length % 2 === 0 ? fold(Buffer.from(text).swap16().toString('utf16le')) : `#${value.toString('hex')}`;
    default:
      return `#${value.toString('hex')}`;
  }
}

function fold(s: string): string {
  return s.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase();
}

/**
 * The RDNs of an RFC 4514 string, as written (most specific first); `+` joins the attributes of one
 * RDN, `,` or `;` separates RDNs; values may be `#hex` (a DER value), quoted, or escaped with `\`
 * and a character or two hex digits (bytes of UTF-8). Undefined when it is not such a string.
 */
function parseTextName(text: string): Rdn[] | undefined {
  const rdns: Rdn[] = [];
  let rdn: Rdn = [];
  let i = 0;
  const skipSpaces = () => {
    while (text[i] === ' ') i++;
  };
  skipSpaces();
  if (i === text.length) return rdns;
  for (;;) {
    const eq = text.indexOf('=', i);
    if (eq < 0) return undefined;
    const type = text.slice(i, eq).trim();
    const oid = KEYWORDS[type.toUpperCase()] ?? /^(?:oid\.)?(\d+(?:\.\d+)+)$/i.exec(type)?.[1];
    if (!oid) return undefined;
    i = eq + 1;
    skipSpaces();
    let value: string;
    if (text[i] === '#') {
      const hex = /^#((?:[0-9a-fA-F]{2})+)/.exec(text.slice(i));
      if (!hex) return undefined;
      i += hex[0].length;
      try {
        value = comparable(Buffer.from(hex[1]!, 'hex'));
      } catch {
        return undefined; // not one DER value
      }
    } else {
      const bytes: number[] = [];
      const quoted = text[i] === '"';
      if (quoted) i++;
      for (; i < text.length; i++) {
        const c = text[i]!;
        if (quoted ? c === '"' : c === ',' || c === '+' || c === ';') break;
        if (c !== '\\') {
          bytes.push(...Buffer.from(c, 'utf8'));
          continue;
        }
        const pair = /^[0-9a-fA-F]{2}/.exec(text.slice(i + 1));
        if (pair) {
          bytes.push(parseInt(pair[0], 16));
          i += 2;
        } else if (i + 1 < text.length) bytes.push(...Buffer.from(text[++i]!, 'utf8'));
        else return undefined;
      }
      if (quoted) {
        if (text[i] !== '"') return undefined;
        i++;
      }
      value = fold(Buffer.from(bytes).toString('utf8'));
    }
    rdn.push(`${oid}=${value}`);
    skipSpaces();
    if (i === text.length) break;
    const separator = text[i++];
    if (separator !== '+') {
      if (separator !== ',' && separator !== ';') return undefined;
      rdns.push(rdn);
      rdn = [];
    }
    skipSpaces();
  }
  rdns.push(rdn);
  return rdns;
}
