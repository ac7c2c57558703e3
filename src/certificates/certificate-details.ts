/**
 * A certificate as an administrator sees it: the reference admin API's CertificateDetails (its
 * CertificateDetailsConverter), field for field, so that API clients written for the reference read
 * ours. Names are written as Java's X500Principal.toString() writes them (most specific first,
 * `CN=…, O=…, C=…`); the hash is the upper-case hex SHA-256 of the DER, the certificate's id here.
 */
import { TAG, childrenOf, content, expectTag, readOid, readTlv } from './der.ts';
import { KEY_USAGE_BITS, parseCertificate, x509Of } from './certificate.ts';

/** The reference's KeyUsage enum, in the bit order of RFC 5280 KeyUsage. */
const KEY_USAGES = ['DIGITAL_SIGNATURE', 'NON_REPUDIATION', 'KEY_ENCIPHERMENT', 'DATA_ENCIPHERMENT', 'KEY_AGREEMENT', 'KEY_CERT_SIGN', 'CRL_SIGN', 'ENCIPHER_ONLY', 'DECIPHER_ONLY'] as const;

/** Java's signature algorithm names (X509Certificate.getSigAlgName) for the OIDs X-Road meets. */
const SIGNATURE_ALGORITHMS: Record<string, string> = {
  '1.2.840.113549.1.1.5': 'SHA1withRSA',
  '1.2.840.113549.1.1.10': 'RSASSA-PSS',
  '1.2.840.113549.1.1.11': 'SHA256withRSA',
  '1.2.840.113549.1.1.12': 'SHA384withRSA',
  '1.2.840.113549.1.1.13': 'SHA512withRSA',
  '1.2.840.10045.4.3.2': 'SHA256withECDSA',
  '1.2.840.10045.4.3.3': 'SHA384withECDSA',
  '1.2.840.10045.4.3.4': 'SHA512withECDSA',
  '1.3.101.112': 'Ed25519',
};

/** The reference's CertificateDetails (snake_case as on its wire). */
export interface CertificateDetails {
  readonly issuer_distinguished_name: string;
  readonly issuer_common_name: string | null;
  readonly subject_distinguished_name: string;
  readonly subject_common_name: string | null;
  readonly not_before: string;
  readonly not_after: string;
  /** Decimal, as Java's BigInteger.toString(). */
  readonly serial: string;
  readonly version: number;
  readonly signature_algorithm: string;
  /** Lower-case hex of the signature's bits. */
  readonly signature: string;
  readonly public_key_algorithm: string;
  readonly rsa_public_key_modulus?: string;
  readonly rsa_public_key_exponent?: number;
  readonly ec_public_parameters?: string;
  readonly ec_public_key_point?: string;
  readonly hash: string;
  readonly key_usages: string[];
  readonly subject_alternative_names: string | null;
}

/** @throws IncorrectCertificate when `cert` is not one PEM or DER certificate */
export function certificateDetails(cert: Buffer | string): CertificateDetails {
  const facts = parseCertificate(cert);
  const x509 = x509Of(facts.der);
  const { algorithmOid, signature, version } = signatureParts(facts.der);
  const key = x509.publicKey;
  const jwk = key.export({ format: 'jwk' });
  const unsigned = (base64url: string): bigint => BigInt(`0x${Buffer.from(base64url, 'base64url').toString('hex')}`);
  const publicKey =
    key.asymmetricKeyType === 'rsa'
      ? { public_key_algorithm: 'RSA', rsa_public_key_modulus: unsigned(jwk.n!).toString(16), rsa_public_key_exponent: Number(unsigned(jwk.e!)) }
      : key.asymmetricKeyType === 'ec'
        ? { public_key_algorithm: 'EC', ec_public_parameters: key.asymmetricKeyDetails?.namedCurve ?? 'unknown', ec_public_key_point: Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]).toString('hex') }
        : { public_key_algorithm: (key.asymmetricKeyType ?? 'unknown').toUpperCase() };
  return {
    issuer_distinguished_name: javaName(x509.issuer),
    issuer_common_name: commonName(x509.issuer),
    subject_distinguished_name: javaName(x509.subject),
    subject_common_name: commonName(x509.subject),
    not_before: facts.notBefore.toISOString(),
    not_after: facts.notAfter.toISOString(),
    serial: BigInt(`0x${facts.serialNumber}`).toString(10),
    version,
    signature_algorithm: SIGNATURE_ALGORITHMS[algorithmOid] ?? algorithmOid,
    signature: signature.toString('hex'),
    ...publicKey,
    hash: facts.hash,
    key_usages: KEY_USAGES.filter((_, i) => facts.keyUsage?.includes(KEY_USAGE_BITS[i]!)),
    subject_alternative_names: x509.subjectAltName ?? null,
  };
}

/** Certificate ::= SEQUENCE { tbsCertificate (version [0] first when not v1), signatureAlgorithm, signatureValue BIT STRING }. */
function signatureParts(der: Buffer): { algorithmOid: string; signature: Buffer; version: number } {
  const [tbs, algorithm, value] = childrenOf(der, expectTag(readTlv(der, 0), TAG.SEQUENCE, 'Certificate'));
  const first = childrenOf(der, expectTag(tbs, TAG.SEQUENCE, 'TBSCertificate'))[0]!;
  // [0] EXPLICIT Version: INTEGER 0 (v1), 1 (v2), 2 (v3); absent means v1.
  const version = first.tag === 0xa0 ? der[childrenOf(der, first)[0]!.contentStart]! + 1 : 1;
  const bits = content(der, expectTag(value, TAG.BIT_STRING, 'signatureValue'));
  return { algorithmOid: readOid(der, childrenOf(der, expectTag(algorithm, TAG.SEQUENCE, 'signatureAlgorithm'))[0]!), signature: bits.subarray(1), version };
}

/** Node writes a name one attribute per line in DER order; Java's X500Principal.toString() most specific first, `, ` between. */
export function javaName(multiline: string): string {
  return multiline.split('\n').filter(Boolean).reverse().join(', ');
}

function commonName(multiline: string): string | null {
  const cn = multiline.split('\n').filter((line) => line.startsWith('CN=')).pop();
  return cn ? cn.slice(3) : null;
}
