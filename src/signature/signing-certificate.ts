/**
 * XAdES SigningCertificate / SigningCertificateV2 (EN 319 132-1 §5.2.2): what is signed must name
 * the certificate the signature verifies with, by its digest and, where given, its issuer and
 * serial number. Without that binding the certificate in KeyInfo, which no signature covers, could
 * be another than the one the signed properties claim. The reference does not check it (Santuario
 * takes KeyInfo as it is); every signature it and EU DSS write carries it, so nothing they send is
 * refused.
 */
import { createHash } from 'node:crypto';
import { certificateDerParts } from '../certificates/certificate.ts';
import { childrenOf, content, expectTag, readTlv, TAG, whole } from '../certificates/der.ts';
import { sameName, textNamesName } from '../certificates/distinguished-name.ts';
import { XrdError } from '../platform/errors.ts';
import { CERT_DIGESTS } from './algorithms.ts';

/** One `xades:Cert` of SigningCertificate(V2). */
export interface SigningCertRef {
  readonly digestMethod: string;
  readonly digestValue: Buffer;
  /**
   * `IssuerSerial` (SigningCertificate): X509IssuerName as written and X509SerialNumber in
   * decimal; or `IssuerSerialV2` (SigningCertificateV2): the DER of an IssuerSerial.
   */
  readonly issuerSerial?: { readonly issuerName: string; readonly serialNumber: string } | { readonly der: Buffer };
}

/**
 * The signed properties (`refs`, undefined when they have neither SigningCertificate nor
 * SigningCertificateV2) must name `certDer`: a Cert with its digest, whose issuer and serial
 * number, when given, are its own; and no Cert may give its issuer and serial number with
 * another digest.
 * @throws MalformedSignature.SigningCertificateNotBound
 */
export function checkSigningCertificate(refs: readonly SigningCertRef[] | undefined, certDer: Buffer): void {
  const notBound = (reason: string) => new XrdError('SigningCertificateNotBound', { reason }).within('MalformedSignature');
  if (!refs) throw notBound('they have no SigningCertificate or SigningCertificateV2');
  let named = false;
  for (const ref of refs) {
    const algorithm = CERT_DIGESTS[ref.digestMethod];
    const digestNames = algorithm !== undefined && createHash(algorithm).update(certDer).digest().equals(ref.digestValue);
    const issuerSerialNames = ref.issuerSerial && namesIssuerSerial(ref.issuerSerial, certDer);
    if (digestNames && issuerSerialNames === false) throw notBound('the issuer and serial number given with the digest of the certificate in KeyInfo are not its own');
    if (!digestNames && issuerSerialNames) throw notBound('a Cert gives the issuer and serial number of the certificate in KeyInfo with another digest');
    named ||= digestNames;
  }
  if (!named) throw notBound(`no Cert of their ${refs.length} has the digest of the certificate in KeyInfo`);
}

function namesIssuerSerial(given: NonNullable<SigningCertRef['issuerSerial']>, certDer: Buffer): boolean {
  const cert = certificateDerParts(certDer);
  const serial = content(cert.serialNumber, readTlv(cert.serialNumber, 0));
  if ('issuerName' in given) return /^-?\d+$/.test(given.serialNumber.trim()) && BigInt(given.serialNumber.trim()) === signedInteger(serial) && textNamesName(given.issuerName, cert.issuerName);
  try {
    // IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber INTEGER, issuerUID OPTIONAL }
    const der = given.der;
    const sequence = expectTag(readTlv(der, 0), TAG.SEQUENCE, 'IssuerSerial');
    if (sequence.end !== der.length) return false;
    const [names, number] = childrenOf(der, sequence);
    // GeneralNames of one directoryName, [4] EXPLICIT Name
    const generalNames = childrenOf(der, expectTag(names, TAG.SEQUENCE, 'GeneralNames'));
    if (generalNames.length !== 1 || generalNames[0]!.tag !== 0xa4) return false;
    const name = childrenOf(der, generalNames[0]!)[0];
    return name !== undefined && content(der, expectTag(number, TAG.INTEGER, 'serialNumber')).equals(serial) && sameName(whole(der, name), cert.issuerName);
  } catch {
    return false; // not an IssuerSerial: it names nothing
  }
}

/** A DER INTEGER's content as a two's-complement number. */
function signedInteger(bytes: Buffer): bigint {
  const value = BigInt(`0x${bytes.toString('hex') || '0'}`);
  return bytes.length > 0 && bytes[0]! & 0x80 ? value - (1n << BigInt(bytes.length * 8)) : value;
}
