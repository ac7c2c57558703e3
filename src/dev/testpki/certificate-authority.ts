/**
 * A certification authority for local instances and tests (issue 3's test PKI): a root and
 * intermediates with software keys, issuing X-Road sign and auth certificates from the signer's
 * CSRs with the right key usages. Certificates are encoded with our DER writer and signed with
 * Node's crypto (SHA-256 with RSA). Never for production: the keys are files.
 */
import { X509Certificate, createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { certificateDerParts, type KeyUsageBit, KEY_USAGE_BITS } from '../../certificates/certificate.ts';
import { encodeDn, type DnField } from '../../certificates/csr.ts';
import { TAG, childrenOf, encodeOid, encodeTlv, encodeUnsignedInteger, expectTag, readOid, readTlv, whole } from '../../certificates/der.ts';
import { XrdError } from '../../platform/errors.ts';

export interface CertificateProfile {
  /** CA certificates get basicConstraints CA:TRUE (with `pathLen` when set) and keyCertSign/cRLSign. */
  readonly ca?: boolean;
  readonly pathLen?: number;
  readonly keyUsage?: readonly KeyUsageBit[];
  /** Extended key usage OIDs, e.g. id-kp-clientAuth 1.3.6.1.5.5.7.3.2. */
  readonly extendedKeyUsage?: readonly string[];
  /** RFC 3161 wants a TSA's extendedKeyUsage critical. */
  readonly criticalExtendedKeyUsage?: boolean;
  readonly validDays?: number;
}

export interface Authority {
  readonly cert: Buffer;
  readonly privateKey: KeyObject;
}

export const EKU = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  timeStamping: '1.3.6.1.5.5.7.3.8',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
} as const;

const SHA256_WITH_RSA = encodeTlv(TAG.SEQUENCE, encodeOid('1.2.840.113549.1.1.11'), encodeTlv(TAG.NULL, Buffer.alloc(0)));

/** A self-signed root CA with a new RSA-2048 key. */
export function createRootCa(subject: readonly DnField[], validDays = 3650): Authority {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const name = encodeDn(subject);
  return { cert: assemble({ issuerName: name, subjectName: name, spki, issuerSpki: spki, profile: { ca: true, validDays }, privateKey }), privateKey };
}

/** An authority (intermediate CA, OCSP responder, TSA) with a new RSA-2048 key, issued by `issuer`. */
export function createAuthority(issuer: Authority, subject: readonly DnField[], profile: CertificateProfile): Authority {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { cert: issueCertificate(issuer, encodeDn(subject), publicKey.export({ type: 'spki', format: 'der' }), profile), privateKey };
}

/** Issues a certificate for a subject Name (DER) and public key (SPKI DER). */
export function issueCertificate(issuer: Authority, subjectName: Buffer, spki: Buffer, profile: CertificateProfile): Buffer {
  const issuerSpki = new X509Certificate(issuer.cert).publicKey.export({ type: 'spki', format: 'der' });
  return assemble({ issuerName: certificateDerParts(issuer.cert).subjectName, subjectName, spki, issuerSpki, profile, privateKey: issuer.privateKey });
}

/**
 * The subject and public key of a PKCS#10 request whose signature holds.
 * @throws IncorrectCertificate when the request is malformed or its signature does not verify
 */
export function readCsr(der: Buffer): { subjectName: Buffer; spki: Buffer } {
  try {
    const [info, algorithm, signature] = childrenOf(der, expectTag(readTlv(der, 0), TAG.SEQUENCE, 'CertificationRequest'));
    const [, subject, spki] = childrenOf(der, expectTag(info, TAG.SEQUENCE, 'CertificationRequestInfo'));
    const oid = readOid(der, childrenOf(der, expectTag(algorithm, TAG.SEQUENCE, 'signatureAlgorithm'))[0]!);
    const digest = CSR_DIGESTS[oid];
    const bits = expectTag(signature, TAG.BIT_STRING, 'signature');
    const key = createPublicKey({ key: whole(der, expectTag(spki, TAG.SEQUENCE, 'SubjectPublicKeyInfo')), format: 'der', type: 'spki' });
    if (!digest || !verify(digest, whole(der, info!), key, der.subarray(bits.contentStart + 1, bits.end))) throw new XrdError('IncorrectCertificate', { reason: 'not a valid certificate request: its signature does not verify' });
    return { subjectName: whole(der, expectTag(subject, TAG.SEQUENCE, 'subject')), spki: whole(der, spki!) };
  } catch (err) {
    if (err instanceof XrdError && err.code === 'IncorrectCertificate') throw err;
    throw new XrdError('IncorrectCertificate', { reason: `not a valid certificate request: ${(err as Error).message}` }, { cause: err });
  }
}

const CSR_DIGESTS: Record<string, string> = {
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

function assemble(o: { issuerName: Buffer; subjectName: Buffer; spki: Buffer; issuerSpki: Buffer; profile: CertificateProfile; privateKey: KeyObject }): Buffer {
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + (o.profile.validDays ?? 365) * 86_400_000);
  const tbs = encodeTlv(
    TAG.SEQUENCE,
    encodeTlv(0xa0, encodeTlv(TAG.INTEGER, Buffer.from([2]))),
    // A random positive serial, minimally encoded (a zero first byte would be illegal DER padding).
    encodeUnsignedInteger(randomBytes(16)),
    SHA256_WITH_RSA,
    o.issuerName,
    encodeTlv(TAG.SEQUENCE, utcTime(notBefore), utcTime(notAfter)),
    o.subjectName,
    o.spki,
    encodeTlv(0xa3, encodeTlv(TAG.SEQUENCE, ...extensions(o.profile, o.spki, o.issuerSpki))),
  );
  const signature = sign('sha256', tbs, o.privateKey);
  return encodeTlv(TAG.SEQUENCE, tbs, SHA256_WITH_RSA, encodeTlv(TAG.BIT_STRING, Buffer.from([0]), signature));
}

function extensions(profile: CertificateProfile, spki: Buffer, issuerSpki: Buffer): Buffer[] {
  const ext = (oid: string, critical: boolean, value: Buffer): Buffer =>
    encodeTlv(TAG.SEQUENCE, encodeOid(oid), ...(critical ? [encodeTlv(TAG.BOOLEAN, Buffer.from([0xff]))] : []), encodeTlv(TAG.OCTET_STRING, value));
  const keyId = (key: Buffer): Buffer => createHash('sha1').update(publicKeyBits(key)).digest();
  const out = [
    ext('2.5.29.19', true, encodeTlv(TAG.SEQUENCE, ...(profile.ca ? [encodeTlv(TAG.BOOLEAN, Buffer.from([0xff])), ...(profile.pathLen !== undefined ? [encodeTlv(TAG.INTEGER, Buffer.from([profile.pathLen]))] : [])] : []))),
    ext('2.5.29.15', true, keyUsageBits(profile.ca ? ['keyCertSign', 'cRLSign'] : (profile.keyUsage ?? []))),
    ext('2.5.29.14', false, encodeTlv(TAG.OCTET_STRING, keyId(spki))),
    ext('2.5.29.35', false, encodeTlv(TAG.SEQUENCE, encodeTlv(0x80, keyId(issuerSpki)))),
  ];
  if (profile.extendedKeyUsage?.length) out.push(ext('2.5.29.37', profile.criticalExtendedKeyUsage ?? false, encodeTlv(TAG.SEQUENCE, ...profile.extendedKeyUsage.map(encodeOid))));
  return out;
}

/** DER BIT STRING of named key usage bits, trailing zero bits dropped as DER requires. */
function keyUsageBits(bits: readonly KeyUsageBit[]): Buffer {
  const bytes = Buffer.alloc(2);
  let highest = -1;
  for (const bit of bits) {
    const i = KEY_USAGE_BITS.indexOf(bit);
    bytes[i >> 3]! |= 0x80 >> (i & 7);
    highest = Math.max(highest, i);
  }
  const length = highest < 8 ? 1 : 2;
  const used = bytes.subarray(0, length);
  const last = used[length - 1]!;
  const unused = last === 0 ? 0 : Math.min(7, Math.log2(last & -last));
  return encodeTlv(TAG.BIT_STRING, Buffer.from([unused]), used);
}

function publicKeyBits(spki: Buffer): Buffer {
  const [, bits] = childrenOf(spki, readTlv(spki, 0));
  return spki.subarray(bits!.contentStart + 1, bits!.end);
}

function utcTime(d: Date): Buffer {
  const text = d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  return encodeTlv(TAG.UTC_TIME, Buffer.from(text, 'latin1'));
}
