/**
 * Whether the central server can accept an authentication certificate registration request
 * (pr-mserv §2.3), checked as the reference's AuthCertRegRequestDecoderCallback and
 * ManagementRequestCertVerifier do, plus what its central server checks when the request is added
 * (the owner is a member, the certificate is not registered yet). Used by the test PKI's
 * management-service stand-in; a real central server would do the same.
 */
import { X509Certificate, constants, verify, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { parseCertificate } from '../certificates/certificate.ts';
import { memberOfSigningCert } from '../certificates/certificate-profile.ts';
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError } from '../platform/errors.ts';
import { formatClientId, formatSecurityServerId, identifierPartProblem, javaClientId, type ClientId, type SecurityServerId } from '../protocol/identifiers.ts';
import { digestOfAlgorithm, type ManagementSignature, type ParsedAuthCertRegRequest } from '../protocol/management-request.ts';
import { isAuthCertificate, javaName, registeredServer } from './auth-cert.ts';
import { buildCertPath, type CertPath } from './cert-path.ts';
import { ocspPolicyFor, verifyOcspResponse } from './ocsp-verifier.ts';

export interface VerifiedAuthCertReg {
  readonly serverId: SecurityServerId;
  readonly owner: ClientId;
  readonly address: string;
  readonly authCert: Buffer;
}

/** The reference accepts these for the authentication key's proof of possession (pr-mserv §2.3). */
const AUTH_ALGORITHMS = /^SHA(256|384|512)with(RSA|ECDSA)$/;

/**
 * @throws in the reference's order: CannotCreateCertPath / InvalidCertPath / CertValidityTime /
 *   IncorrectCertificate (a certificate not from a CA the instance approves, or outside its
 *   validity), WrongCertUsage (not an authentication certificate; owner's not a signing
 *   certificate), UnsupportedSignAlgorithm, InvalidSignatureValue (`details.signature` auth or
 *   owner), IncorrectValidationInfo / CertValidation (the owner certificate's OCSP response),
 *   InvalidRequest (another management service, the sender not the server's owner, the owner
 *   certificate naming another member, a bad address or identifier), CertValidation (the attached
 *   certificate differs from the SOAP body's), UnknownMember, AuthCertAlreadyRegistered
 */
export function verifyAuthCertRegRequest(parsed: ParsedAuthCertRegRequest, conf: GlobalConf, at: Date): VerifiedAuthCertReg {
  approvedPath(parsed.authCert, conf, at);
  if (!isAuthCertificate(parsed.authCert)) throw new XrdError('WrongCertUsage', { usage: 'AUTHENTICATION', reason: 'Authentication certificate is not valid: it is not an authentication certificate' });
  if (!AUTH_ALGORITHMS.test(parsed.authSignature.algorithmId)) throw new XrdError('UnsupportedSignAlgorithm', { algorithm: parsed.authSignature.algorithmId, keyId: 'the authentication key' });
  checkSignature(parsed.authSignature, parsed.authCert, parsed.soap, 'auth');

  const ownerPath = approvedPath(parsed.ownerCert, conf, at);
  if (!(parseCertificate(parsed.ownerCert).keyUsage ?? []).includes('nonRepudiation')) {
    throw new XrdError('WrongCertUsage', { usage: 'SIGNING', reason: 'Member (owner/client) sign certificate is invalid: keyUsage lacks nonRepudiation' });
  }
  verifyOcspResponse(parsed.ownerCertOcsp, parsed.ownerCert, ownerPath.certs[1]!, at, ocspPolicyFor(conf, ownerPath.certs[1]!));
  checkSignature(parsed.ownerSignature, parsed.ownerCert, parsed.soap, 'owner');

  const management = conf.privateParams?.managementService?.managementRequestServiceProviderId;
  if (!management || formatClientId(management) !== formatClientId(parsed.header.service.provider) || parsed.header.client.instance !== conf.instanceIdentifier) {
    throw new XrdError('InvalidRequest', { reason: 'Invalid management service address. Contact central server administrator.' });
  }
  const serverId = parsed.serverId;
  validateServerId(serverId);
  const owner: ClientId = { instance: serverId.instance, memberClass: serverId.memberClass, memberCode: serverId.memberCode };
  if (formatClientId(parsed.header.client) !== formatClientId(owner)) throw new XrdError('InvalidRequest', { reason: 'Sender does not match server owner.' });
  if (!parsed.authCertPart.equals(parsed.authCert)) throw new XrdError('CertValidation', { reason: 'Authentication certificates do not match.' });

  const fromCert = memberOfSigningCert(parsed.ownerCert, ownerPath.ca.certificateProfileInfo, conf.instanceIdentifier);
  const certMember: ClientId = { instance: conf.instanceIdentifier, memberClass: fromCert.memberClass, memberCode: fromCert.memberCode };
  if (formatClientId(certMember) !== formatClientId(owner)) {
    throw new XrdError('InvalidRequest', { reason: `Subject identifier (${javaClientId(certMember)}) in certificate does not match security server owner identifier (${javaClientId(owner)}) in request` });
  }
  const address = parsed.address;
  if (address === undefined || !validAddress(address)) throw new XrdError('InvalidRequest', { reason: 'Invalid server address' });

  if (!conf.member(owner)) throw new XrdError('UnknownMember', { reason: `Security server owner ${javaClientId(owner)} is not a member of ${conf.instanceIdentifier}` });
  const registered = registeredServer(conf, parsed.authCert);
  if (registered) throw new XrdError('AuthCertAlreadyRegistered', { hash: parseCertificate(parsed.authCert).hash, server: formatSecurityServerId(registered.serverId) });
  return { serverId, owner, address, authCert: parsed.authCert };
}

/** A path up to a CA our own instance approves (the reference asks GlobalConf.getCaCert of its own instance). */
function approvedPath(cert: Buffer, conf: GlobalConf, at: Date): CertPath {
  const path = buildCertPath(cert, conf, [], at);
  if (!conf.own.approvedCas.includes(path.ca)) {
    throw new XrdError('CannotCreateCertPath', { subject: javaName(new X509Certificate(cert)), reason: `the issuing CA is not approved by ${conf.instanceIdentifier}` });
  }
  return path;
}

function checkSignature(signature: ManagementSignature, cert: Buffer, soap: Buffer, which: 'auth' | 'owner'): void {
  const digest = digestOfAlgorithm(signature.algorithmId);
  const key: KeyObject = new X509Certificate(cert).publicKey;
  const pss = signature.algorithmId.endsWith('andMGF1');
  let holds: boolean;
  try {
    holds = pss ? verify(digest, soap, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature.value) : verify(digest, soap, key, signature.value);
  } catch {
    // A signature of the wrong form for the key (e.g. not DER for ECDSA) is simply not valid.
    holds = false;
  }
  if (!holds) throw new XrdError('InvalidSignatureValue', { reason: which === 'auth' ? 'Auth signature verification failed' : 'Owner signature verification failed.', signature: which });
}

/** As the reference's ManagementRequestVerificationUtils.validateServerId. */
function validateServerId(id: SecurityServerId): void {
  for (const part of [id.instance, id.memberClass, id.memberCode, id.serverCode]) {
    if (identifierPartProblem(part) !== undefined) throw new XrdError('InvalidRequest', { reason: 'The management request contains an invalid identifier.' });
  }
}

/** An IP address or a valid (internationalised) domain name, as the reference's assertAddress. */
function validAddress(address: string): boolean {
  if (isIP(address)) return true;
  const ascii = domainToASCII(address);
  if (!ascii || ascii.length > 253) return false;
  const labels = ascii.replace(/\.$/, '').split('.');
  return labels.every((l) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l)) && !/^\d+$/.test(labels[labels.length - 1]!);
}
