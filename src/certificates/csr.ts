/**
 * PKCS#10 certification requests whose signature is made elsewhere (on the token): we encode the
 * CertificationRequestInfo, the caller signs its digest, and `assembleCsr` wraps the result.
 */
import * as asn1js from 'asn1js';
import { createHash } from 'node:crypto';
import type { ClientId, SecurityServerId } from '../protocol/identifiers.ts';
import { XrdError } from '../platform/errors.ts';

export type KeyUsage = 'SIGNING' | 'AUTHENTICATION';

/** Distinguished-name attribute types administrators may give, by their usual short names. */
export const DN_ATTRIBUTE_OIDS: Record<string, string> = {
  C: '2.5.4.6',
  ST: '2.5.4.8',
  L: '2.5.4.7',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  CN: '2.5.4.3',
  serialNumber: '2.5.4.5',
  givenName: '2.5.4.42',
  surname: '2.5.4.4',
};

export type DnField = readonly [type: string, value: string];

/**
 * The subject X-Road's FI certificate profile expects (as in the shared vectors:
 * `C=FI, O=Test client, CN=4321, serialNumber=DEV/ss2/COM`); fields the administrator gives replace
 * the defaults of the same type or are added.
 */
export function defaultSubject(
  usage: KeyUsage,
  id: { member?: ClientId; server?: SecurityServerId },
  given: readonly DnField[] = [],
): DnField[] {
  const fields: DnField[] = [];
  if (usage === 'SIGNING' && id.member) {
    const m = id.member;
    // INSTANCE/SERVERCODE/MEMBERCLASS: verifiers read the instance and class from it and the code
    // from CN; without a server code the member code takes its place.
    fields.push(['O', m.memberCode], ['CN', m.memberCode], ['serialNumber', `${m.instance}/${id.server?.serverCode ?? m.memberCode}/${m.memberClass}`]);
  } else if (usage === 'AUTHENTICATION' && id.server) {
    const s = id.server;
    fields.push(['O', s.memberCode], ['CN', s.serverCode], ['serialNumber', `${s.instance}/${s.serverCode}/${s.memberClass}`]);
  }
  for (const [type, value] of given) {
    const i = fields.findIndex(([t]) => t === type);
    if (i >= 0) fields[i] = [type, value];
    else fields.push([type, value]);
  }
  // Country first, as issuers order it.
  return [...fields.filter(([t]) => t === 'C'), ...fields.filter(([t]) => t !== 'C')];
}

/**
 * Parses `C=FI,O=Acme Oy,CN=1234` (commas inside values escaped as `\,`).
 * @throws InvalidDistinguishedName
 */
export function parseDn(text: string): DnField[] {
  if (text.trim() === '') return [];
  return text.split(/(?<!\\),/).map((part) => {
    const eq = part.indexOf('=');
    if (eq < 0) throw invalidDn(`"${part.trim()}" is not TYPE=value`);
    const type = part.slice(0, eq).trim();
    if (!DN_ATTRIBUTE_OIDS[type]) throw invalidDn(`unknown DN attribute "${type}" (known: ${Object.keys(DN_ATTRIBUTE_OIDS).join(', ')})`);
    return [type, part.slice(eq + 1).trim().replaceAll('\\,', ',')] as const;
  });
}

function invalidDn(reason: string): XrdError {
  return new XrdError('InvalidDistinguishedName', { reason, referenceCode: 'invalid_distinguished_name' });
}

export function formatDn(fields: readonly DnField[]): string {
  return fields.map(([t, v]) => `${t}=${v.replaceAll(',', '\\,')}`).join(', ');
}

function encodeName(fields: readonly DnField[]): asn1js.Sequence {
  return new asn1js.Sequence({
    value: fields.map(([type, value]) => {
      const printable = /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(value);
      const str =
        (type === 'C' || type === 'serialNumber') && printable
          ? new asn1js.PrintableString({ value })
          : new asn1js.Utf8String({ value });
      return new asn1js.Set({ value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: DN_ATTRIBUTE_OIDS[type]! }), str] })] });
    }),
  });
}

/** DER of an X.501 Name with these fields, in order. */
export function encodeDn(fields: readonly DnField[]): Buffer {
  return Buffer.from(encodeName(fields).toBER(false));
}

function fromDer(der: Buffer): asn1js.AsnType {
  const parsed = asn1js.fromBER(new Uint8Array(der));
  // Only DER this program made (a key's SPKI, the request info) comes here.
  if (parsed.offset === -1) throw new XrdError('InternalError', { reason: 'malformed DER' });
  return parsed.result;
}

/** DER of CertificationRequestInfo { version 0, subject, subjectPKInfo, attributes [0] {} }. */
export function certificationRequestInfo(subject: readonly DnField[], spki: Buffer): Buffer {
  const info = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 0 }),
      encodeName(subject),
      fromDer(spki),
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [] }),
    ],
  });
  return Buffer.from(info.toBER(false));
}

export interface CsrSignature {
  /** Signer algorithm id, e.g. SHA256withRSA or SHA256withECDSA. */
  readonly algorithm: 'SHA256withRSA' | 'SHA256withECDSA';
  readonly digest: Buffer;
}

/** What to sign for a CSR over `info` with a key of this algorithm. */
export function csrSignatureInput(info: Buffer, keyAlgorithm: 'RSA' | 'EC'): CsrSignature {
  return {
    algorithm: keyAlgorithm === 'RSA' ? 'SHA256withRSA' : 'SHA256withECDSA',
    digest: createHash('sha256').update(info).digest(),
  };
}

/** CertificationRequest { info, signatureAlgorithm, signature } with a DER ECDSA or PKCS#1 value. */
export function assembleCsr(info: Buffer, algorithm: CsrSignature['algorithm'], signature: Buffer): Buffer {
  const algId =
    algorithm === 'SHA256withRSA'
      ? new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: '1.2.840.113549.1.1.11' }), new asn1js.Null()] })
      : new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: '1.2.840.10045.4.3.2' })] });
  const csr = new asn1js.Sequence({ value: [fromDer(info), algId, new asn1js.BitString({ valueHex: new Uint8Array(signature) })] });
  return Buffer.from(csr.toBER(false));
}

export function toPem(der: Buffer, label: 'CERTIFICATE REQUEST' | 'CERTIFICATE'): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
