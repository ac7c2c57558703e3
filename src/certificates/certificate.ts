/**
 * What the signer and the trust layer need to know about an X.509 certificate: hashes (SHA-256 as
 * its id, SHA-1 for OCSP lookups), names, validity, public key, key usages, basic constraints and
 * the DER pieces OCSP hashes. Node's X509Certificate does the parsing; what it does not expose is
 * read with the DER reader.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { XrdError } from '../platform/errors.ts';
import { TAG, childrenOf, content, contextTag, expectTag, readOid, readTlv, whole } from './der.ts';
import { DN_ATTRIBUTE_OIDS, type DnField, type KeyUsage } from './csr.ts';

export const KEY_USAGE_BITS = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsageBit = (typeof KEY_USAGE_BITS)[number];

const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export interface CertificateFacts {
  readonly der: Buffer;
  /** Upper-case hex SHA-256 of the DER: the certificate's id in the signer. */
  readonly hash: string;
  /** Lower-case hex SHA-1 of the DER, the key of OCSP responses (facts §2). */
  readonly sha1: string;
  readonly subject: string;
  readonly issuer: string;
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly publicKey: Buffer;
  readonly keyUsage: readonly KeyUsageBit[] | undefined;
  readonly extendedKeyUsage: readonly string[] | undefined;
  readonly isCa: boolean;
}

const facts = new Map<string, CertificateFacts>();

/**
 * The facts of a certificate; DER input is kept in a small cache, since the proxies see the same
 * signing and CA certificates in every message.
 * @throws IncorrectCertificate when the input is not one DER or PEM certificate
 */
export function parseCertificate(input: Buffer | string): CertificateFacts {
  if (typeof input === 'string') return readCertificate(input);
  const key = createHash('sha256').update(input).digest('base64');
  let found = facts.get(key);
  if (!found) {
    found = readCertificate(input);
    if (facts.size >= PARSED_LIMIT) facts.delete(facts.keys().next().value!);
    facts.set(key, found);
  }
  return found;
}

function readCertificate(input: Buffer | string): CertificateFacts {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(input);
  } catch (err) {
    throw new XrdError('IncorrectCertificate', { reason: `cannot parse certificate: ${(err as Error).message}` }, { cause: err });
  }
  const der = x509.raw;
  return {
    der,
    hash: createHash('sha256').update(der).digest('hex').toUpperCase(),
    sha1: createHash('sha1').update(der).digest('hex'),
    subject: oneLineName(x509.subject),
    issuer: oneLineName(x509.issuer),
    serialNumber: x509.serialNumber,
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    publicKey: x509.publicKey.export({ type: 'spki', format: 'der' }),
    keyUsage: readKeyUsage(der),
    // Node names the extendedKeyUsage OIDs `keyUsage`; undefined when the extension is absent.
    extendedKeyUsage: x509.keyUsage,
    isCa: x509.ca,
  };
}

/**
 * Checks that the certificate may serve the given key usage: signing certificates need
 * nonRepudiation, authentication certificates digitalSignature (and clientAuth when EKU is present).
 * @throws WrongCertUsage
 */
export function checkCertificateUsage(cert: CertificateFacts, usage: KeyUsage): void {
  const bits = cert.keyUsage ?? [];
  if (usage === 'SIGNING' && !bits.includes('nonRepudiation')) {
    throw new XrdError('WrongCertUsage', { usage, reason: 'keyUsage lacks nonRepudiation' });
  }
  if (usage === 'AUTHENTICATION') {
    if (!bits.includes('digitalSignature')) throw new XrdError('WrongCertUsage', { usage, reason: 'keyUsage lacks digitalSignature' });
    if (cert.extendedKeyUsage && !cert.extendedKeyUsage.includes(EKU_CLIENT_AUTH)) {
      throw new XrdError('WrongCertUsage', { usage, reason: 'extendedKeyUsage lacks clientAuth' });
    }
  }
}

/** Which usage a certificate was issued for, judged from its key usage bits. */
export function usageOfCertificate(cert: CertificateFacts): KeyUsage | undefined {
  if (cert.keyUsage?.includes('nonRepudiation')) return 'SIGNING';
  if (cert.keyUsage?.includes('digitalSignature')) return 'AUTHENTICATION';
  return undefined;
}

/** Node gives names one attribute per line, and no name at all for an empty one. */
export function oneLineName(multiline: string | undefined): string {
  return (multiline ?? '').split('\n').filter(Boolean).join(', ');
}

function readKeyUsage(der: Buffer): KeyUsageBit[] | undefined {
  const ext = extensionValue(der, '2.5.29.15');
  if (!ext) return undefined;
  const bits = expectTag(readTlv(ext, 0), TAG.BIT_STRING, 'KeyUsage');
  // The first content octet counts unused bits; the named bits follow, most significant first.
  const bytes = ext.subarray(bits.contentStart + 1, bits.end);
  return KEY_USAGE_BITS.filter((_, i) => ((bytes[i >> 3] ?? 0) >> (7 - (i & 7))) & 1);
}

/** The DER pieces of a certificate that OCSP needs (RFC 6960 CertID and ResponderID). */
export interface CertificateDerParts {
  /** DER of the serialNumber INTEGER. */
  readonly serialNumber: Buffer;
  /** DER of the issuer Name. */
  readonly issuerName: Buffer;
  /** DER of the subject Name. */
  readonly subjectName: Buffer;
  /** The subjectPublicKey BIT STRING's bits (without the unused-bits octet). */
  readonly publicKeyBits: Buffer;
}

/** @throws IncorrectCertificate when the DER is not a certificate */
export function certificateDerParts(der: Buffer): CertificateDerParts {
  try {
    const cert = expectTag(readTlv(der, 0), TAG.SEQUENCE, 'Certificate');
    const tbs = childrenOf(der, expectTag(childrenOf(der, cert)[0], TAG.SEQUENCE, 'TBSCertificate'));
    const fields = tbs[0]?.tag === contextTag(0) ? tbs.slice(1) : tbs;
    const [serial, , issuer, , subject, spki] = fields;
    const bitString = expectTag(childrenOf(der, expectTag(spki, TAG.SEQUENCE, 'SubjectPublicKeyInfo'))[1], TAG.BIT_STRING, 'subjectPublicKey');
    return {
      serialNumber: whole(der, expectTag(serial, TAG.INTEGER, 'serialNumber')),
      issuerName: whole(der, expectTag(issuer, TAG.SEQUENCE, 'issuer')),
      subjectName: whole(der, expectTag(subject, TAG.SEQUENCE, 'subject')),
      publicKeyBits: der.subarray(bitString.contentStart + 1, bitString.end),
    };
  } catch (err) {
    if (err instanceof XrdError) throw err;
    throw new XrdError('IncorrectCertificate', { reason: `cannot read certificate DER: ${(err as Error).message}` }, { cause: err });
  }
}

/** basicConstraints: whether the certificate is a CA, and its pathLenConstraint when set. */
export function basicConstraints(der: Buffer): { ca: boolean; pathLen?: number } {
  const ext = extensionValue(der, '2.5.29.19');
  if (!ext) return { ca: false };
  const fields = childrenOf(ext, expectTag(readTlv(ext, 0), TAG.SEQUENCE, 'BasicConstraints'));
  const ca = fields[0]?.tag === TAG.BOOLEAN && ext[fields[0].contentStart] !== 0;
  const len = fields.find((f) => f.tag === TAG.INTEGER);
  return { ca, pathLen: len ? ext.readUIntBE(len.contentStart, len.end - len.contentStart) : undefined };
}

/** The extnValue octets of an extension, or undefined when the certificate lacks it. */
function extensionValue(der: Buffer, oid: string): Buffer | undefined {
  const cert = readTlv(der, 0);
  const tbs = childrenOf(der, childrenOf(der, cert)[0]!);
  const wrapper = tbs.find((t) => t.tag === contextTag(3));
  if (!wrapper) return undefined;
  for (const ext of childrenOf(der, childrenOf(der, wrapper)[0]!)) {
    const parts = childrenOf(der, ext);
    if (readOid(der, parts[0]!) === oid) return der.subarray(parts[parts.length - 1]!.contentStart, parts[parts.length - 1]!.end);
  }
  return undefined;
}

/** Attribute types Java's X500Principal writes by keyword in RFC 2253 names; others are `OID=#hex`. */
const RFC2253_KEYWORDS: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'STREET',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '0.9.2342.19200300.100.1.25': 'DC',
  '0.9.2342.19200300.100.1.1': 'UID',
};

/**
 * A DER Name as RFC 2253 text, the way Java's `X500Principal.getName()` writes it (XAdES
 * X509IssuerName in the reference): last RDN first, `CN=Test CA,O=Test`.
 */
export function rfc2253Name(nameDer: Buffer): string {
  const rdns = childrenOf(nameDer, expectTag(readTlv(nameDer, 0), TAG.SEQUENCE, 'Name')).map((rdn) =>
    childrenOf(nameDer, rdn)
      .map((atv) => {
        const [type, value] = childrenOf(nameDer, atv);
        const oid = readOid(nameDer, type!);
        const keyword = RFC2253_KEYWORDS[oid];
        if (!keyword) return `${oid}=#${whole(nameDer, value!).toString('hex')}`;
        return `${keyword}=${escapeRfc2253(content(nameDer, value!).toString(value!.tag === 0x1e ? 'utf16le' : 'utf8'))}`;
      })
      .join('+'),
  );
  return rdns.reverse().join(',');
}

function escapeRfc2253(value: string): string {
  return value.replace(/[,+"\\<>;]/g, '\\$&').replace(/^[#\s]/, '\\$&').replace(/\s$/, '\\ ');
}

/** The attributes of a DER Name in order, types by their short names (CN, O, serialNumber, …) or OID. */
export function nameFields(nameDer: Buffer): DnField[] {
  const names = (shortNames ??= new Map(Object.entries(DN_ATTRIBUTE_OIDS).map(([short, oid]) => [oid, short])));
  return childrenOf(nameDer, expectTag(readTlv(nameDer, 0), TAG.SEQUENCE, 'Name')).flatMap((rdn) =>
    childrenOf(nameDer, rdn).map((atv): DnField => {
      const [type, value] = childrenOf(nameDer, atv);
      const oid = readOid(nameDer, type!);
      return [names.get(oid) ?? oid, content(nameDer, value!).toString(value!.tag === 0x1e ? 'utf16le' : 'utf8')];
    }),
  );
}

/** OID → short name of DN_ATTRIBUTE_OIDS, made at first use. */
let shortNames: Map<string, string> | undefined;

// Certificates repeat from one message or OCSP response to the next and parsing one costs more than
// verifying a signature with it, so parsed certificates are kept (bounded, by content hash — anything
// less than the whole content could be forged).
const PARSED_LIMIT = 256;
const parsed = new Map<string, X509Certificate>();

/** Node's parsed certificate for a DER, from a small cache. */
export function x509Of(der: Buffer): X509Certificate {
  const key = createHash('sha256').update(der).digest('base64');
  let cert = parsed.get(key);
  if (!cert) {
    cert = new X509Certificate(der);
    if (parsed.size >= PARSED_LIMIT) parsed.delete(parsed.keys().next().value!);
    parsed.set(key, cert);
  }
  return cert;
}
