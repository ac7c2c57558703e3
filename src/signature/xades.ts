/**
 * Building the X-Road message signature (MESS_08): `asic:XAdESSignatures` with one `ds:Signature`
 * in the reference's shape — data references by URI over raw bytes, a reference to the XAdES
 * SignedProperties (SigningTime, SigningCertificate, SignaturePolicyId, DataObjectFormat), KeyInfo
 * with the signing certificate, and unsigned properties carrying the CA certificates and OCSP
 * responses a verifier needs.
 *
 * The signed parts are written directly in canonical form (inclusive C14N of an element includes
 * the namespaces declared on the root), so their digests are taken over the text that goes into
 * the document: no parse, no canonicalisation at build time. A test keeps this equal to the
 * canonicaliser's output.
 */
import { createHash } from 'node:crypto';
import { certificateDerParts, rfc2253Name } from '../certificates/certificate.ts';
import { readIntegerHex, readTlv } from '../certificates/der.ts';
import { XrdError } from '../platform/errors.ts';
import { C14N_ALGORITHM, escapeAttribute } from '../xml/c14n.ts';
import { DIGEST_URIS, type DigestName, type SignatureMethod } from './algorithms.ts';

export const NS = {
  asic: 'http://uri.etsi.org/02918/v1.2.1#',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
  xades: 'http://uri.etsi.org/01903/v1.3.2#',
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
} as const;

export const SIGNED_PROPERTIES_TYPE = 'http://uri.etsi.org/01903#SignedProperties';
export const SIGNATURE_POLICY = {
  identifier: 'urn:oid:1.3.6.1.4.1.3516.16.2',
  description: 'Profile for High Performance Digital Signatures (version 1.2)',
  /** SHA-512 of the policy document, as the reference states it. */
  digest: 'BuO0EDNfkxSVlUbxCzmQPzX1AUF1/xx9ytWHk3/6SAOePxQiniEfDYk+90QeYb3lWpV3Izhuz9fKaYyE+lTcXw==',
  uri: 'https://repo.cyber.ee/dsig-profile-1.2.pdf',
} as const;

/** The namespace declarations of the root, which inclusive C14N copies onto each signed element. */
const ROOT_NAMESPACES = `xmlns:asic="${NS.asic}" xmlns:ds="${NS.ds}" xmlns:xades="${NS.xades}" xmlns:xsi="${NS.xsi}"`;

/** A data reference to put into SignedInfo (the verifier reads them back as `DataReference`). */
export interface ReferenceToSign {
  /** `/message.xml`, `/sig-hashchainresult.xml` or (X-Road 8 form) `/attachmentN`. */
  readonly uri: string;
  /** The referenced bytes' digest with the signature method's digest algorithm. */
  readonly digest: Buffer;
}

export interface SignatureRequest {
  readonly references: readonly ReferenceToSign[];
  /** DataObjectFormat MimeType of the first reference: `text/xml` or `application/hash-chain-result`. */
  readonly mimeType: string;
  readonly method: SignatureMethod;
  readonly signingCert: Buffer;
  /** CA certificates between the signing certificate and the approved CA's top certificate. */
  readonly intermediateCerts: readonly Buffer[];
  /** OCSP responses for the signing certificate and the intermediates (DER OCSPResponse). */
  readonly ocspResponses: readonly Buffer[];
  readonly signingTime: Date;
}

export interface PreparedSignature {
  /** What the signer signs: the digest of the canonical SignedInfo. */
  readonly signedInfoDigest: Buffer;
  /** The finished `signatures.xml` with the signature value (raw r‖s for ECDSA). */
  finish(signatureValue: Buffer, timestampToken?: Buffer): string;
}

export function prepareSignature(req: SignatureRequest): PreparedSignature {
  const digest = req.method.digest;
  const digestMethod = `<ds:DigestMethod Algorithm="${DIGEST_URIS[digest]}"></ds:DigestMethod>`;
  const signingCert = req.signingCert.toString('base64');
  const signedProperties = signedPropertiesContent(req, signingCert);
  const signedPropertiesDigest = hash(digest, `<xades:SignedProperties ${ROOT_NAMESPACES} Id="signed-properties">${signedProperties}</xades:SignedProperties>`);

  let references = '';
  req.references.forEach((ref, i) => {
    references += `<ds:Reference Id="signature-reference-${i}" URI="${escapeAttribute(ref.uri)}">\n${digestMethod}\n<ds:DigestValue>${ref.digest.toString('base64')}</ds:DigestValue>\n</ds:Reference>\n`;
  });
  references += `<ds:Reference Id="signature-reference-${req.references.length}" Type="${SIGNED_PROPERTIES_TYPE}" URI="#signed-properties">\n${digestMethod}\n<ds:DigestValue>${signedPropertiesDigest.toString('base64')}</ds:DigestValue>\n</ds:Reference>\n`;
  const signedInfo = `\n<ds:CanonicalizationMethod Algorithm="${C14N_ALGORITHM}"></ds:CanonicalizationMethod>\n<ds:SignatureMethod Algorithm="${req.method.uri}"></ds:SignatureMethod>\n${references}`;
  const signedInfoDigest = hash(digest, `<ds:SignedInfo ${ROOT_NAMESPACES}>${signedInfo}</ds:SignedInfo>`);

  return {
    signedInfoDigest,
    finish(signatureValue, timestampToken) {
      return (
        `<?xml version="1.0" encoding="UTF-8" standalone="no"?><asic:XAdESSignatures ${ROOT_NAMESPACES}><ds:Signature Id="signature">\n` +
        `<ds:SignedInfo>${signedInfo}</ds:SignedInfo>\n` +
        `<ds:SignatureValue Id="signature-value">${signatureValue.toString('base64')}</ds:SignatureValue>\n` +
        `<ds:KeyInfo>\n<ds:X509Data>\n<ds:X509Certificate>${signingCert}</ds:X509Certificate>\n</ds:X509Data>\n</ds:KeyInfo>\n` +
        `<ds:Object><xades:QualifyingProperties Target="#signature"><xades:SignedProperties Id="signed-properties">${signedProperties}</xades:SignedProperties>` +
        unsignedProperties(req, digest, timestampToken) +
        `</xades:QualifyingProperties></ds:Object>\n</ds:Signature></asic:XAdESSignatures>`
      );
    },
  };
}

function signedPropertiesContent(req: SignatureRequest, signingCert: string): string {
  const digest = req.method.digest;
  return (
    `<xades:SignedSignatureProperties><xades:SigningTime>${req.signingTime.toISOString()}</xades:SigningTime>` +
    `<xades:SigningCertificate>${certReference(req.signingCert, digest, '', signingCert)}</xades:SigningCertificate>` +
    `<xades:SignaturePolicyIdentifier><xades:SignaturePolicyId><xades:SigPolicyId><xades:Identifier Qualifier="OIDAsURN">${SIGNATURE_POLICY.identifier}</xades:Identifier>` +
    `<xades:Description>${SIGNATURE_POLICY.description}</xades:Description></xades:SigPolicyId>` +
    `<xades:SigPolicyHash><ds:DigestMethod Algorithm="${DIGEST_URIS.sha512}"></ds:DigestMethod><ds:DigestValue>${SIGNATURE_POLICY.digest}</ds:DigestValue></xades:SigPolicyHash>` +
    `<xades:SigPolicyQualifiers><xades:SigPolicyQualifier><xades:SPURI>${SIGNATURE_POLICY.uri}</xades:SPURI></xades:SigPolicyQualifier></xades:SigPolicyQualifiers>` +
    `</xades:SignaturePolicyId></xades:SignaturePolicyIdentifier></xades:SignedSignatureProperties>` +
    `<xades:SignedDataObjectProperties><xades:DataObjectFormat ObjectReference="#signature-reference-0"><xades:MimeType>${escape(req.mimeType)}</xades:MimeType></xades:DataObjectFormat></xades:SignedDataObjectProperties>`
  );
}

/**
 * The contents of `xades:Cert`s already spelt out, by digest and the certificate's base64: a member
 * signs with the same certificate and intermediates for months, and spelling one out (DER parse,
 * digest, RFC 2253 issuer name) was the larger part of building a signature. Cleared when full.
 */
const certReferences = new Map<string, string>();
const CERT_REFERENCES_LIMIT = 256;

/** `xades:Cert`: the certificate's digest and its issuer and serial number. */
function certReference(cert: Buffer, digest: DigestName, attributes = '', base64 = cert.toString('base64')): string {
  const key = `${digest} ${base64}`;
  let content = certReferences.get(key);
  if (content === undefined) {
    const parts = certificateDerParts(cert);
    const serial = BigInt(`0x${readIntegerHex(parts.serialNumber, readTlv(parts.serialNumber, 0))}`);
    content =
      `<xades:CertDigest><ds:DigestMethod Algorithm="${DIGEST_URIS[digest]}"></ds:DigestMethod><ds:DigestValue>${hash(digest, cert).toString('base64')}</ds:DigestValue></xades:CertDigest>` +
      `<xades:IssuerSerial><ds:X509IssuerName>${escape(rfc2253Name(parts.issuerName))}</ds:X509IssuerName><ds:X509SerialNumber>${serial}</ds:X509SerialNumber></xades:IssuerSerial>`;
    if (certReferences.size >= CERT_REFERENCES_LIMIT) certReferences.clear();
    certReferences.set(key, content);
  }
  return `<xades:Cert${attributes}>${content}</xades:Cert>`;
}

function unsignedProperties(req: SignatureRequest, digest: DigestName, timestampToken: Buffer | undefined): string {
  let out = timestampToken ? signatureTimestamp(timestampToken) : '';
  // Numbered from 1, as the reference numbers them.
  if (req.intermediateCerts.length > 0) {
    const certs = req.intermediateCerts.map((c) => c.toString('base64'));
    out += `<xades:CompleteCertificateRefs Id="complete-certificate-refs"><xades:CertRefs>${req.intermediateCerts.map((c, i) => certReference(c, digest, ` URI="#encapsulated-cert-${i + 1}"`, certs[i])).join('')}</xades:CertRefs></xades:CompleteCertificateRefs>`;
    out += `<xades:CertificateValues>${certs.map((c, i) => `<xades:EncapsulatedX509Certificate Id="encapsulated-cert-${i + 1}">${c}</xades:EncapsulatedX509Certificate>`).join('')}</xades:CertificateValues>`;
  }
  out += `<xades:RevocationValues><xades:OCSPValues>${req.ocspResponses.map((r, i) => `<xades:EncapsulatedOCSPValue Id="ocsp-response-${i + 1}">${r.toString('base64')}</xades:EncapsulatedOCSPValue>`).join('')}</xades:OCSPValues></xades:RevocationValues>`;
  return `<xades:UnsignedProperties><xades:UnsignedSignatureProperties>${out}</xades:UnsignedSignatureProperties></xades:UnsignedProperties>`;
}

function signatureTimestamp(token: Buffer): string {
  return `<xades:SignatureTimeStamp><xades:EncapsulatedTimeStamp>${token.toString('base64')}</xades:EncapsulatedTimeStamp></xades:SignatureTimeStamp>`;
}

const UNSIGNED_SIGNATURE_PROPERTIES = '<xades:UnsignedSignatureProperties>';

/**
 * Adds a single-message timestamp to a signature this module built (MESS_10): the token goes first
 * among the unsigned signature properties, which the signature value does not cover.
 * @throws MalformedSignature when the XML was not built here
 */
export function addSignatureTimestamp(signatureXml: string, token: Buffer): string {
  const at = signatureXml.indexOf(UNSIGNED_SIGNATURE_PROPERTIES);
  if (at < 0 || signatureXml.includes('<xades:SignatureTimeStamp>')) throw new XrdError('MalformedSignature', { reason: 'no place for a timestamp, or one is there already' });
  const end = at + UNSIGNED_SIGNATURE_PROPERTIES.length;
  return signatureXml.slice(0, end) + signatureTimestamp(token) + signatureXml.slice(end);
}

function hash(digest: DigestName, data: string | Buffer): Buffer {
  return createHash(digest).update(data).digest();
}

/** Text content as canonical XML writes it. */
function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#xD;');
}
