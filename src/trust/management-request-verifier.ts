/**
 * Whether the central server can accept a management request (pr-mserv §2), in two steps:
 *  - `verifyManagementRequest`: the message itself, as the reference's ManagementRequestVerifier
 *    and its decoder callbacks check it (signatures, certificates from approved CAs with good OCSP
 *    responses, the sender being the server's owner, the signer being the client's member, sane
 *    identifiers and addresses); authCertReg as AuthCertRegRequestDecoderCallback and
 *    ManagementRequestCertVerifier do.
 *  - `checkAgainstRegistry`: what the central server's request handlers check when the request is
 *    added, against the instance's global configuration (the server and client exist, the client is
 *    not registered yet, the new owner is a client, maintenance mode is not on already, …).
 * Used by the test PKI's management-service stand-in; a real central server would do the same.
 */
import { X509Certificate, constants, verify, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { parseCertificate } from '../certificates/certificate.ts';
import { memberOfSigningCert } from '../certificates/certificate-profile.ts';
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { XrdError } from '../platform/errors.ts';
import { formatClientId, formatSecurityServerId, identifierPartProblem, javaClientId, memberOf, sameClientId, type ClientId, type SecurityServerId } from '../protocol/identifiers.ts';
import { MANAGEMENT_REQUESTS, digestOfAlgorithm, type ManagementRequestBody, type ManagementSignature, type ParsedAuthCertRegRequest, type ParsedManagementRequest } from '../protocol/management-request.ts';
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

  const ownerPath = memberCertPath(parsed.ownerCert, parsed.ownerCertOcsp, conf, at);
  checkSignature(parsed.ownerSignature, parsed.ownerCert, parsed.soap, 'owner');

  checkManagementService(parsed.header, conf);
  const serverId = parsed.serverId;
  validateServerId(serverId);
  const owner = memberOf(serverId);
  if (formatClientId(parsed.header.client) !== formatClientId(owner)) throw new XrdError('InvalidRequest', { reason: 'Sender does not match server owner.' });
  if (!parsed.authCertPart.equals(parsed.authCert)) throw new XrdError('CertValidation', { reason: 'Authentication certificates do not match.' });

  const certMember = memberOfCert(parsed.ownerCert, ownerPath, conf);
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

/**
 * Any management request's message checks, in the order of the reference's decoder callbacks
 * (BaseSignedRequestCallback → BaseServerRequestCallback → BaseClientRequestCallback → the type's
 * own); authCertReg as `verifyAuthCertRegRequest`.
 * @returns the request's body, now trusted
 * @throws InvalidSignatureValue (`details.signature` client), UnsupportedSignAlgorithm, the
 *   certificate path and OCSP codes of `verifyAuthCertRegRequest`, WrongCertUsage (not a signing
 *   certificate), InvalidRequest (another management service; the sender not the server's owner;
 *   the signing certificate not the client's member — for owner-signed types not the owner's; a
 *   subsystem name for a member; a rename without a name; a bad address), InvalidClientIdentifier
 */
export function verifyManagementRequest(parsed: ParsedManagementRequest, conf: GlobalConf, at: Date): ManagementRequestBody {
  if (parsed.authCertReg) {
    verifyAuthCertRegRequest(parsed.authCertReg, conf, at);
    return parsed.body;
  }
  const body = parsed.body;
  const signedBy = MANAGEMENT_REQUESTS[body.type].signedBy;
  let signerMember: ClientId | undefined;
  if (signedBy !== 'none') {
    const signature = parsed.signature;
    if (!signature) throw new XrdError('InvalidRequest', { reason: 'Client signature is missing' });
    checkSignature(signature, signature.cert, parsed.soap, 'client');
    signerMember = memberOfCert(signature.cert, memberCertPath(signature.cert, signature.ocsp, conf, at), conf);
  }
  checkManagementService(parsed.header, conf);
  validateServerId(body.server, 'InvalidClientIdentifier');
  const owner = memberOf(body.server);
  if (!sameClientId(parsed.header.client, owner)) throw new XrdError('InvalidRequest', { reason: 'Sender does not match server owner.' });
  if (signerMember && 'client' in body && signedBy === 'client' && !sameClientId(signerMember, memberOf(body.client))) {
    throw new XrdError('InvalidRequest', { reason: `Subject identifier (${javaClientId(signerMember)}) in certificate does not match client's member identifier (${javaClientId(body.client)}) in request` });
  }
  // The reference relies on the X-Road message's authenticated sender here; the stand-in is reached
  // directly, so the owner's certificate must be the owner's.
  if (signerMember && signedBy === 'owner' && !sameClientId(signerMember, owner)) {
    throw new XrdError('InvalidRequest', { reason: `Subject identifier (${javaClientId(signerMember)}) in certificate does not match security server owner identifier (${javaClientId(owner)}) in request` });
  }
  if (body.type === 'clientReg' && body.subsystemName && body.client.subsystem === undefined) throw new XrdError('InvalidRequest', { reason: 'Only name of subsystem can be changed' });
  if (body.type === 'clientRename') {
    if (body.client.subsystem === undefined) throw new XrdError('InvalidRequest', { reason: 'Only name of subsystem can be changed' });
    if (!body.subsystemName.trim()) throw new XrdError('InvalidRequest', { reason: 'Invalid subsystem name' });
  }
  if (body.type === 'addressChange' && !validAddress(body.address)) throw new XrdError('InvalidRequest', { reason: 'Invalid server address' });
  return body;
}

/** What the central server knows beyond the global configuration it publishes. */
export interface CentralServerRegistry {
  /** The server's disabled clients: still registered, but left out of the configuration. */
  readonly disabledClients: readonly ClientId[];
  /**
   * For clientDeletion / authCertDeletion: a registration of that client / certificate on that
   * server is pending, so the deletion revokes it rather than needing a registered one.
   */
  readonly pendingRegistration: boolean;
}

/**
 * The checks of the reference central server's request handlers when a request from a security
 * server is added (ClientRegistrationRequestHandler, OwnerChangeRequestHandler, …), against the
 * instance's configuration. Where the reference would create a missing member or server at
 * approval, the stand-in cannot (it has no name for it) and refuses at once.
 * @throws CannotRegisterOwner, SecurityServerNotFound, UnknownMember, ClientAlreadyRegistered,
 *   ClientRegistrationNotFound, OwnerMustBeMember, OwnerMustBeClient, ClientAlreadyOwner,
 *   ServerCodeExists, InvalidAuthCertificate, ServerClientNotFound,
 *   ManagementServiceClientCannotBeDisabled, ManagementServiceMaintenanceForbidden,
 *   ServerAlreadyInMaintenanceMode, ServerNotInMaintenanceMode
 */
export function checkAgainstRegistry(body: ManagementRequestBody, conf: GlobalConf, registry: CentralServerRegistry): void {
  const server = conf.securityServer(body.server);
  const serverText = formatSecurityServerId(body.server);
  const existing = () => {
    if (!server) throw new XrdError('SecurityServerNotFound', { server: serverText });
    return server;
  };
  const isClient = (client: ClientId) => [...(server?.clients ?? []), ...registry.disabledClients].some((c) => sameClientId(c, client));
  const mustBeClient = (client: ClientId) => {
    if (!isClient(client)) throw new XrdError('ServerClientNotFound', { client: formatClientId(client), server: serverText });
  };
  const management = conf.privateParams?.managementService?.managementRequestServiceProviderId;
  switch (body.type) {
    case 'authCertReg':
      return;
    case 'clientReg':
      if (sameClientId(body.client, memberOf(body.server))) throw new XrdError('OwnerNotRegistrableAsClient', { client: formatClientId(body.client) });
      existing();
      if (!conf.member(memberOf(body.client))) throw new XrdError('UnknownMember', { reason: `${javaClientId(memberOf(body.client))} is not a member of ${conf.instanceIdentifier}` });
      if (isClient(body.client)) throw new XrdError('ClientAlreadyRegistered', { client: formatClientId(body.client), server: serverText });
      return;
    case 'clientDeletion':
      if (!isClient(body.client) && !registry.pendingRegistration) throw new XrdError('ClientRegistrationNotFound', { client: formatClientId(body.client), server: serverText });
      return;
    case 'ownerChange':
      if (body.client.subsystem !== undefined) throw new XrdError('OwnerMustBeMember', { client: formatClientId(body.client) });
      existing();
      if (!isClient(body.client)) throw new XrdError('OwnerMustBeClient', { client: formatClientId(body.client), server: serverText });
      if (sameClientId(body.client, memberOf(body.server))) throw new XrdError('ClientAlreadyOwner', { client: formatClientId(body.client), server: serverText });
      if (conf.securityServer({ ...body.client, serverCode: body.server.serverCode })) throw new XrdError('ServerCodeExists', { client: formatClientId(body.client), serverCode: body.server.serverCode });
      if (!conf.member(body.client)) throw new XrdError('UnknownMember', { reason: `${javaClientId(body.client)} is not a member of ${conf.instanceIdentifier}` });
      return;
    case 'authCertDeletion': {
      const registered = registeredServer(conf, body.authCert);
      const hash = parseCertificate(body.authCert).hash;
      if (registered && formatSecurityServerId(registered.serverId) !== serverText) throw new XrdError('SecurityServerNotFound', { server: serverText });
      if (!registered && !registry.pendingRegistration) throw new XrdError('InvalidAuthCertificate', { hash, server: serverText });
      return;
    }
    case 'addressChange':
      // The reference records the change even for a server it does not know (and changes nothing).
      return;
    case 'clientDisable':
      mustBeClient(body.client);
      if (management && sameClientId(body.client, management)) throw new XrdError('ManagementServiceClientCannotBeDisabled', { client: formatClientId(body.client) });
      return;
    case 'clientEnable':
    case 'clientRename':
      mustBeClient(body.client);
      return;
    case 'maintenanceModeEnable':
      if (management && server?.clients.some((c) => sameClientId(c, management))) throw new XrdError('ManagementServiceMaintenanceForbidden', { client: formatClientId(management), server: serverText });
      if (existing().maintenanceMode) throw new XrdError('ServerAlreadyInMaintenanceMode', { server: serverText });
      return;
    case 'maintenanceModeDisable':
      if (!existing().maintenanceMode) throw new XrdError('ServerNotInMaintenanceMode', { server: serverText });
      return;
  }
}

/** The request is for this instance's management service provider (private parameters). */
function checkManagementService(header: ParsedManagementRequest['header'], conf: GlobalConf): void {
  const management = conf.privateParams?.managementService?.managementRequestServiceProviderId;
  if (!management || formatClientId(management) !== formatClientId(header.service.provider) || header.client.instance !== conf.instanceIdentifier) {
    throw new XrdError('InvalidRequest', { reason: 'Invalid management service address. Contact central server administrator.' });
  }
}

/** A member's signing certificate from an approved CA, with a good OCSP response (ManagementRequestCertVerifier). */
function memberCertPath(cert: Buffer, ocsp: Buffer, conf: GlobalConf, at: Date): CertPath {
  const path = approvedPath(cert, conf, at);
  if (!(parseCertificate(cert).keyUsage ?? []).includes('nonRepudiation')) {
    throw new XrdError('WrongCertUsage', { usage: 'SIGNING', reason: 'Member (owner/client) sign certificate is invalid: keyUsage lacks nonRepudiation' });
  }
  verifyOcspResponse(ocsp, cert, path.certs[1]!, at, ocspPolicyFor(conf, path.certs[1]!));
  return path;
}

/** The member a signing certificate names, per its CA's certificate profile. */
function memberOfCert(cert: Buffer, path: CertPath, conf: GlobalConf): ClientId {
  const fromCert = memberOfSigningCert(cert, path.ca.certificateProfileInfo, conf.instanceIdentifier);
  return { instance: conf.instanceIdentifier, memberClass: fromCert.memberClass, memberCode: fromCert.memberCode };
}

/** A path up to a CA our own instance approves (the reference asks GlobalConf.getCaCert of its own instance). */
function approvedPath(cert: Buffer, conf: GlobalConf, at: Date): CertPath {
  const path = buildCertPath(cert, conf, [], at);
  if (!conf.own.approvedCas.includes(path.ca)) {
    throw new XrdError('CannotCreateCertPath', { subject: javaName(new X509Certificate(cert)), reason: `the issuing CA is not approved by ${conf.instanceIdentifier}` });
  }
  return path;
}

const SIGNATURE_FAILED = { auth: 'Auth signature verification failed', owner: 'Owner signature verification failed.', client: 'Client signature verification failed' };

function checkSignature(signature: ManagementSignature, cert: Buffer, soap: Buffer, which: 'auth' | 'owner' | 'client'): void {
  const digest = digestOfAlgorithm(signature.algorithmId);
  let key: KeyObject;
  try {
    key = new X509Certificate(cert).publicKey;
  } catch (err) {
    throw new XrdError('CertValidation', { reason: `Member (owner/client) sign certificate is invalid: ${(err as Error).message}` }, { cause: err });
  }
  const pss = signature.algorithmId.endsWith('andMGF1');
  let holds: boolean;
  try {
    holds = pss ? verify(digest, soap, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature.value) : verify(digest, soap, key, signature.value);
  } catch {
    // A signature of the wrong form for the key (e.g. not DER for ECDSA) is simply not valid.
    holds = false;
  }
  if (!holds) throw new XrdError('InvalidSignatureValue', { reason: SIGNATURE_FAILED[which], signature: which });
}

/**
 * As the reference's ManagementRequestVerificationUtils.validateServerId: InvalidClientIdentifier in
 * the reference today; authCertReg keeps InvalidRequest, as the 7.x reference reported it.
 */
function validateServerId(id: SecurityServerId, code: 'InvalidRequest' | 'InvalidClientIdentifier' = 'InvalidRequest'): void {
  for (const part of [id.instance, id.memberClass, id.memberCode, id.serverCode]) {
    if (identifierPartProblem(part) !== undefined) throw new XrdError(code, { reason: 'The management request contains an invalid identifier.' });
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
