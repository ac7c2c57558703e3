/**
 * Management requests (pr-mserv, docs/management-requests.md): the messages a security server sends
 * the central server's management service, built and read as the reference's
 * ManagementRequestBuilder / ManagementRequestSender / ManagementRequestVerifier do.
 *
 * Three shapes, one writer and one reader for all (`MANAGEMENT_REQUESTS` says which type has which):
 *  - `authCertReg`: POSTed straight to the management service (private parameters'
 *    authCertRegServiceAddress), since a server without a registered authentication certificate
 *    cannot send X-Road messages yet. `multipart/related` of six parts: the SOAP request, its
 *    signatures with the authentication key and the owner's signing key, the authentication
 *    certificate, the owner's signing certificate and its OCSP response.
 *  - `clientReg`, `clientRename`, `clientDisable`, `clientEnable`, `ownerChange` (signed by the
 *    client's member, for ownerChange the new owner) and `addressChange`, `maintenanceModeEnable`,
 *    `maintenanceModeDisable` (signed by the server's owner): `multipart/related` of four parts —
 *    the SOAP request, its signature, the signing certificate, its OCSP response — POSTed to the
 *    server's own client proxy, which sends it as an X-Road message to the management service
 *    provider (private parameters' managementRequestServiceProviderId).
 *  - `clientDeletion`, `authCertDeletion`: the SOAP request alone (`text/xml`), through the client proxy.
 * The sender (SOAP `client`) is always the server's owner; the service is the provider plus the
 * type as service code. The central server answers with the request's fields echoed and its
 * `requestId`, or a SOAP fault.
 *
 * Building and reading only: keys are the caller's (`ManagementRequestSigner`), and whether a
 * request can be trusted is `trust/management-request-verifier.ts`.
 */
import { X509Certificate, createHash, randomBytes, randomUUID } from 'node:crypto';
import { XrdError } from '../platform/errors.ts';
import { fetchBounded, type BoundedResponse } from '../platform/http-client.ts';
import { XmlError, child, childElements, parseXml, textOf, type XmlElement } from '../xml/xml-tree.ts';
import { escapeXml, readSoapFault } from './faults.ts';
import { memberOf, type ClientId, type SecurityServerId } from './identifiers.ts';
import { IDENTIFIERS_NS, SOAP_ENV_NS, XROAD_NS } from './namespaces.ts';
import { MultipartLimitError, boundaryOf, buildMultipart, parseMultipart, type MimePart } from './multipart.ts';
import { checkResponseHeader, clientIdOfElement, parseSoapHeader, type SoapHeader } from './soap-message.ts';

/** The reference's ManagementRequestType service codes: the SOAP body element and the service code. */
export const MANAGEMENT_REQUEST_TYPES = [
  'authCertReg',
  'clientReg',
  'ownerChange',
  'clientDeletion',
  'authCertDeletion',
  'addressChange',
  'clientDisable',
  'clientEnable',
  'clientRename',
  'maintenanceModeEnable',
  'maintenanceModeDisable',
] as const;
export type ManagementRequestType = (typeof MANAGEMENT_REQUEST_TYPES)[number];
export const AUTH_CERT_REG_SERVICE_CODE = 'authCertReg';

/**
 * How each type travels and whose signature it carries (pr-mserv §2, ManagementRequestSender):
 * `centralServer` = POSTed to authCertRegServiceAddress, `clientProxy` = POSTed to the server's own
 * client proxy as an X-Road message to the management service provider. `client` = the signing key
 * of the request's `client` member (the subsystem's member; the new owner for ownerChange), `owner`
 * = the server owner's signing key.
 */
export const MANAGEMENT_REQUESTS: Readonly<Record<ManagementRequestType, { readonly via: 'centralServer' | 'clientProxy'; readonly signedBy: 'authAndOwner' | 'client' | 'owner' | 'none' }>> = {
  authCertReg: { via: 'centralServer', signedBy: 'authAndOwner' },
  clientReg: { via: 'clientProxy', signedBy: 'client' },
  ownerChange: { via: 'clientProxy', signedBy: 'client' },
  clientDeletion: { via: 'clientProxy', signedBy: 'none' },
  authCertDeletion: { via: 'clientProxy', signedBy: 'none' },
  addressChange: { via: 'clientProxy', signedBy: 'owner' },
  clientDisable: { via: 'clientProxy', signedBy: 'client' },
  clientEnable: { via: 'clientProxy', signedBy: 'client' },
  clientRename: { via: 'clientProxy', signedBy: 'client' },
  maintenanceModeEnable: { via: 'clientProxy', signedBy: 'owner' },
  maintenanceModeDisable: { via: 'clientProxy', signedBy: 'owner' },
};

/** A request's body fields (request.xsd); `server` is the security server it is about. */
export type ManagementRequestBody =
  | { readonly type: 'authCertReg'; readonly server: SecurityServerId; readonly address?: string; readonly authCert: Buffer }
  | { readonly type: 'authCertDeletion'; readonly server: SecurityServerId; readonly authCert: Buffer }
  | { readonly type: 'clientReg'; readonly server: SecurityServerId; readonly client: ClientId; readonly subsystemName?: string }
  | { readonly type: 'clientDeletion' | 'clientDisable' | 'clientEnable' | 'ownerChange'; readonly server: SecurityServerId; readonly client: ClientId }
  | { readonly type: 'clientRename'; readonly server: SecurityServerId; readonly client: ClientId; readonly subsystemName: string }
  | { readonly type: 'addressChange'; readonly server: SecurityServerId; readonly address: string }
  | { readonly type: 'maintenanceModeEnable'; readonly server: SecurityServerId; readonly message?: string }
  | { readonly type: 'maintenanceModeDisable'; readonly server: SecurityServerId };

/** The MIME header naming a signature part's algorithm (the reference's MimeUtils.HEADER_SIG_ALGO_ID). */
export const SIGNATURE_ALGORITHM_HEADER = 'signature-algorithm-id';
/** The reference's management service refuses larger requests (ManagementRequestSoapExecutor). */
export const MAX_MANAGEMENT_REQUEST_BYTES = 100_000;
const BINARY = 'application/octet-stream';
const TEXT_XML_UTF8 = 'text/xml; charset=UTF-8';

/**
 * Signs for a management request. `sign` gets the digest of the SOAP part made with the digest of
 * `algorithmId` (SHA-512 for `SHA512withRSA`, see `managementRequestDigest`) and returns the
 * signature as Java's `Signature` makes it: PKCS#1 v1.5 or PSS bytes for RSA, DER for ECDSA.
 */
export interface ManagementRequestSigner {
  /** e.g. SHA512withRSA (the reference's default digest is SHA-512), SHA512withRSAandMGF1, SHA512withECDSA. */
  readonly algorithmId: string;
  sign(digest: Buffer): Promise<Buffer>;
}

/** A member's signature for a four-part request: its signing key, that key's certificate and a good, fresh OCSP response for it. */
export interface MemberSigning {
  readonly signer: ManagementRequestSigner;
  /** DER of the member's signing certificate. */
  readonly cert: Buffer;
  /** DER OCSP response for `cert`. */
  readonly ocsp: Buffer;
}

/** The SOAP header every management request carries besides its body. */
export interface ManagementRequestAddressing {
  /** The management service provider: private parameters' managementRequestServiceProviderId. */
  readonly managementService: ClientId;
  /** The SOAP header's `xroad:id`; a random UUID by default. */
  readonly requestId?: string;
}

export interface AuthCertRegInput extends ManagementRequestAddressing {
  /** The security server the certificate is for; its owner sends the request. */
  readonly serverId: SecurityServerId;
  /** The server's DNS name or IP address, as other security servers will reach it. */
  readonly address: string;
  /** DER of the authentication certificate to register. */
  readonly authCert: Buffer;
  /** DER of the owner's signing certificate, whose key `signers.owner` uses. */
  readonly ownerCert: Buffer;
  /** DER OCSP response for `ownerCert` (good, fresh). */
  readonly ownerCertOcsp: Buffer;
}

export interface BuiltManagementRequest {
  /** `multipart/related; type="application/octet-stream"; charset=UTF-8; boundary=…`, or `text/xml; charset=UTF-8` for the unsigned ones */
  readonly contentType: string;
  readonly body: Buffer;
  /** The SOAP part as sent and signed. */
  readonly soap: Buffer;
}

const DIGEST_OF_ALGORITHM = /^SHA(256|384|512)with(RSA|RSAandMGF1|ECDSA)$/;

/**
 * The Node digest name an algorithm id signs with.
 * @throws UnsupportedSignAlgorithm
 */
export function digestOfAlgorithm(algorithmId: string): 'sha256' | 'sha384' | 'sha512' {
  const m = DIGEST_OF_ALGORITHM.exec(algorithmId);
  if (!m) throw new XrdError('UnsupportedSignAlgorithm', { algorithm: algorithmId, keyId: 'a management request' });
  return `sha${m[1]}` as 'sha256' | 'sha384' | 'sha512';
}

/** What a `ManagementRequestSigner` signs: the digest of the SOAP part's bytes. @throws UnsupportedSignAlgorithm */
export function managementRequestDigest(algorithmId: string, soap: Buffer): Buffer {
  return createHash(digestOfAlgorithm(algorithmId)).update(soap).digest();
}

/**
 * The authCertReg request as the reference's AuthCertRegRequest writes it, signed with both keys.
 * @throws CertValidation (the authentication certificate is unreadable or outside its validity),
 *   UnsupportedSignAlgorithm, and the signers' own errors reported under CannotCreateSignature
 */
export async function buildAuthCertRegRequest(
  input: AuthCertRegInput,
  signers: { readonly auth: ManagementRequestSigner; readonly owner: ManagementRequestSigner },
): Promise<BuiltManagementRequest> {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(input.authCert);
  } catch (err) {
    throw new XrdError('CertValidation', { reason: `Authentication certificate is invalid: ${(err as Error).message}` }, { cause: err });
  }
  const now = Date.now();
  if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) {
    throw new XrdError('CertValidation', { reason: `Authentication certificate is invalid: not valid now (valid from ${cert.validFrom} to ${cert.validTo})` });
  }
  const soap = requestSoap({ type: 'authCertReg', server: input.serverId, address: input.address, authCert: input.authCert }, input);
  const authSignature = await signWith(signers.auth, soap, 'authentication');
  const ownerSignature = await signWith(signers.owner, soap, 'owner');
  return multipartRequest([
    { headers: [['Content-Type', TEXT_XML_UTF8]], body: soap },
    { headers: [['Content-Type', BINARY], [SIGNATURE_ALGORITHM_HEADER, signers.auth.algorithmId]], body: authSignature },
    { headers: [['Content-Type', BINARY], [SIGNATURE_ALGORITHM_HEADER, signers.owner.algorithmId]], body: ownerSignature },
    { headers: [['Content-Type', BINARY]], body: input.authCert },
    { headers: [['Content-Type', BINARY]], body: input.ownerCert },
    { headers: [['Content-Type', BINARY]], body: input.ownerCertOcsp },
  ], soap);
}

/**
 * Any request but authCertReg, as the reference's ManagementRequestSender writes it: the SOAP
 * message alone for the deletions, otherwise the four-part multipart signed by `signing` (whose
 * key `MANAGEMENT_REQUESTS[type].signedBy` says). Send it to the server's own client proxy.
 * @throws InvalidRequest (a signature for a type without one, or none for a type that needs one),
 *   UnsupportedSignAlgorithm, and the signer's own errors reported under CannotCreateSignature
 */
export async function buildManagementRequest(body: Exclude<ManagementRequestBody, { type: 'authCertReg' }>, addressing: ManagementRequestAddressing, signing?: MemberSigning): Promise<BuiltManagementRequest> {
  const signed = MANAGEMENT_REQUESTS[body.type].signedBy !== 'none';
  if (signed !== (signing !== undefined)) throw new XrdError('InvalidRequest', { reason: signed ? `${body.type} must be signed by a member's signing key` : `${body.type} carries no signature` });
  const soap = requestSoap(body, addressing);
  if (!signing) return { contentType: TEXT_XML_UTF8, body: soap, soap };
  const signature = await signWith(signing.signer, soap, 'member');
  return multipartRequest([
    { headers: [['Content-Type', TEXT_XML_UTF8]], body: soap },
    { headers: [['Content-Type', BINARY], [SIGNATURE_ALGORITHM_HEADER, signing.signer.algorithmId]], body: signature },
    { headers: [['Content-Type', BINARY]], body: signing.cert },
    { headers: [['Content-Type', BINARY]], body: signing.ocsp },
  ], soap);
}

function requestSoap(body: ManagementRequestBody, addressing: ManagementRequestAddressing): Buffer {
  const header = { client: memberOf(body.server), service: addressing.managementService, id: addressing.requestId ?? randomUUID() };
  return Buffer.from(managementSoap(header, body), 'utf8');
}

function multipartRequest(parts: Parameters<typeof buildMultipart>[1], soap: Buffer): BuiltManagementRequest {
  const boundary = `xrd${randomBytes(12).toString('hex')}`;
  const body = buildMultipart(boundary, parts);
  return { contentType: `multipart/related; type="${BINARY}"; charset=UTF-8; boundary=${boundary}`, body, soap };
}

async function signWith(signer: ManagementRequestSigner, soap: Buffer, which: string): Promise<Buffer> {
  const digest = managementRequestDigest(signer.algorithmId, soap);
  let signature: Buffer;
  try {
    signature = await signer.sign(digest);
  } catch (err) {
    if (err instanceof XrdError) throw err.within('CannotCreateSignature');
    throw new XrdError('CannotCreateSignature', { reason: `${which} signature: ${(err as Error).message}` }, { cause: err });
  }
  if (!Buffer.isBuffer(signature) || signature.length === 0) throw new XrdError('CannotCreateSignature', { reason: `${which} signature: the signer returned nothing` });
  return signature;
}

interface HeaderFields {
  readonly client: ClientId;
  readonly service: ClientId;
  readonly id: string;
}

function idFields(id: ClientId | SecurityServerId): string {
  return `<id:xRoadInstance>${escapeXml(id.instance)}</id:xRoadInstance><id:memberClass>${escapeXml(id.memberClass)}</id:memberClass><id:memberCode>${escapeXml(id.memberCode)}</id:memberCode>`;
}

const optionalElement = (name: string, value: string | undefined): string => (value !== undefined ? `<xroad:${name}>${escapeXml(value)}</xroad:${name}>` : '');

/**
 * The request (`<type>`) or the central server's answer (`<type>Response` with requestId). The
 * fields in request.xsd's order; no type has two of address, authCert, subsystemName and message
 * in another order, so one sequence serves all.
 */
function managementSoap(header: HeaderFields, body: ManagementRequestBody, requestId?: string): string {
  const element = requestId === undefined ? body.type : `${body.type}Response`;
  const provider = header.service;
  const service =
    `<xroad:service id:objectType="SERVICE">${idFields(provider)}` +
    (provider.subsystem !== undefined ? `<id:subsystemCode>${escapeXml(provider.subsystem)}</id:subsystemCode>` : '') +
    `<id:serviceCode>${body.type}</id:serviceCode></xroad:service>`;
  const client = 'client' in body ? body.client : undefined;
  const fields =
    `<xroad:server id:objectType="SERVER">${idFields(body.server)}<id:serverCode>${escapeXml(body.server.serverCode)}</id:serverCode></xroad:server>` +
    (client
      ? `<xroad:client id:objectType="${client.subsystem !== undefined ? 'SUBSYSTEM' : 'MEMBER'}">${idFields(client)}` +
        (client.subsystem !== undefined ? `<id:subsystemCode>${escapeXml(client.subsystem)}</id:subsystemCode>` : '') +
        '</xroad:client>'
      : '') +
    optionalElement('address', 'address' in body ? body.address : undefined) +
    ('authCert' in body ? `<xroad:authCert>${body.authCert.toString('base64')}</xroad:authCert>` : '') +
    optionalElement('subsystemName', 'subsystemName' in body ? body.subsystemName : undefined) +
    optionalElement('message', 'message' in body ? body.message : undefined) +
    optionalElement('requestId', requestId);
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<SOAP-ENV:Envelope xmlns:SOAP-ENV="${SOAP_ENV_NS}" xmlns:id="${IDENTIFIERS_NS}" xmlns:xroad="${XROAD_NS}">` +
    `<SOAP-ENV:Header><xroad:client id:objectType="MEMBER">${idFields(header.client)}</xroad:client>${service}<xroad:id>${escapeXml(header.id)}</xroad:id><xroad:protocolVersion>4.0</xroad:protocolVersion></SOAP-ENV:Header>` +
    `<SOAP-ENV:Body><xroad:${element}>${fields}</xroad:${element}></SOAP-ENV:Body></SOAP-ENV:Envelope>`
  );
}

// ---- reading (the central server's side) -------------------------------------------------------

export interface ManagementSignature {
  readonly algorithmId: string;
  readonly value: Buffer;
}

export interface ParsedAuthCertRegRequest {
  /** The SOAP part's exact bytes: what both signatures cover. */
  readonly soap: Buffer;
  readonly header: SoapHeader;
  readonly serverId: SecurityServerId;
  readonly address: string | undefined;
  /** The certificate the SOAP body names (`authCert`). */
  readonly authCert: Buffer;
  readonly authSignature: ManagementSignature;
  readonly ownerSignature: ManagementSignature;
  /** The certificate sent as the fourth part; must equal `authCert`. */
  readonly authCertPart: Buffer;
  readonly ownerCert: Buffer;
  readonly ownerCertOcsp: Buffer;
}

/** Any management request as read; for authCertReg, `authCertReg` holds its six parts. */
export interface ParsedManagementRequest {
  /** The SOAP part's exact bytes: what the signatures cover. */
  readonly soap: Buffer;
  readonly header: SoapHeader;
  readonly body: ManagementRequestBody;
  /** The member's signature with its certificate and OCSP response (the four-part requests). */
  readonly signature?: ManagementSignature & { readonly cert: Buffer; readonly ocsp: Buffer };
  readonly authCertReg?: ParsedAuthCertRegRequest;
}

/**
 * Reads any management request: `text/xml` (the deletions) or `multipart/related` (the SOAP part and
 * as many further parts as the type carries). Nothing is verified yet.
 * @throws InvalidContentType, MessageTooLarge, MimeParsingFailed, InvalidRequest (an unknown service
 *   code, a part missing or one too many, a field missing), and parseSoapHeader's InvalidSoap,
 *   MissingHeaderField, InvalidProtocolVersion, InvalidClientIdentifier
 */
export function parseManagementRequest(contentType: string, body: Buffer): ParsedManagementRequest {
  if (body.length > MAX_MANAGEMENT_REQUEST_BYTES) throw new XrdError('MessageTooLarge', { limit: MAX_MANAGEMENT_REQUEST_BYTES });
  if (/^\s*text\/xml\s*(;|$)/i.test(contentType)) {
    const header = parseSoapHeader(body);
    const type = typeOf(header);
    if (MANAGEMENT_REQUESTS[type].signedBy !== 'none') throw new XrdError('InvalidRequest', { reason: type === 'authCertReg' ? 'Auth signature is missing' : 'Client signature is missing' });
    return { soap: Buffer.from(body), header, body: readManagementBody(body, type) };
  }
  const parts = multipartOf(contentType, body, 6);
  const soap = soapPartOf(parts);
  const header = parseSoapHeader(soap);
  const type = typeOf(header);
  if (type === 'authCertReg') {
    const parsed = authCertRegOf(parts, soap, header);
    return { soap, header, body: { type, server: parsed.serverId, ...(parsed.address !== undefined ? { address: parsed.address } : {}), authCert: parsed.authCert }, authCertReg: parsed };
  }
  const read = readManagementBody(soap, type);
  if (MANAGEMENT_REQUESTS[type].signedBy === 'none') {
    if (parts.length > 1) throw new XrdError('InvalidRequest', { reason: `Unexpected content in multipart while reading request of type ${type}` });
    return { soap, header, body: read };
  }
  const names = ['SOAP message', 'Client signature', 'Client certificate', 'Client certificate OCSP'];
  if (parts.length < names.length) throw new XrdError('InvalidRequest', { reason: `${names[parts.length]} is missing` });
  if (parts.length > names.length) throw new XrdError('InvalidRequest', { reason: `Unexpected content in multipart while reading request of type ${type}` });
  const [, signaturePart, cert, ocsp] = parts as [MimePart, MimePart, MimePart, MimePart];
  for (const [i, part] of [cert, ocsp].entries()) if (part.body.length === 0) throw new XrdError('InvalidRequest', { reason: `${names[i + 2]} is missing` });
  return { soap, header, body: read, signature: { ...signatureOf(signaturePart, 'Client'), cert: Buffer.from(cert.body), ocsp: Buffer.from(ocsp.body) } };
}

/**
 * Reads an authCertReg request's parts and SOAP message; nothing is verified yet.
 * @throws as parseManagementRequest, and InvalidRequest for another type
 */
export function parseAuthCertRegRequest(contentType: string, body: Buffer): ParsedAuthCertRegRequest {
  if (!/^\s*multipart\/related\s*(;|$)/i.test(contentType)) throw new XrdError('InvalidContentType', { contentType });
  const parsed = parseManagementRequest(contentType, body);
  if (!parsed.authCertReg) throw new XrdError('InvalidRequest', { reason: `service ${parsed.header.service.serviceCode} is not ${AUTH_CERT_REG_SERVICE_CODE}` });
  return parsed.authCertReg;
}

function typeOf(header: SoapHeader): ManagementRequestType {
  // The reference's ManagementRequestType.getByServiceCode compares ignoring case.
  const code = header.service.serviceCode.toLowerCase();
  const type = MANAGEMENT_REQUEST_TYPES.find((t) => t.toLowerCase() === code);
  if (!type) throw new XrdError('InvalidRequest', { reason: `Unknown service code '${header.service.serviceCode.slice(0, 20)}'` });
  return type;
}

function multipartOf(contentType: string, body: Buffer, maxParts: number): MimePart[] {
  if (!/^\s*multipart\/related\s*(;|$)/i.test(contentType)) throw new XrdError('InvalidContentType', { contentType });
  const boundary = boundaryOf(contentType);
  if (!boundary) throw new XrdError('InvalidContentType', { contentType });
  try {
    return parseMultipart(body, boundary, { maxParts });
  } catch (err) {
    if (err instanceof MultipartLimitError) throw new XrdError('InvalidRequest', { reason: 'Unexpected content in multipart' }, { cause: err });
    throw new XrdError('MimeParsingFailed', { reason: (err as Error).message }, { cause: err });
  }
}

function soapPartOf(parts: MimePart[]): Buffer {
  const soapPart = parts[0];
  const soapType = soapPart?.headers.get('content-type') ?? '';
  if (!soapPart || !/^\s*text\/xml\s*(;|$)/i.test(soapType)) throw new XrdError('InvalidRequest', { reason: `Request contains no SOAP message (first part is ${soapType || 'untyped'})` });
  return Buffer.from(soapPart.body);
}

function signatureOf(part: MimePart, which: string): ManagementSignature {
  const algorithmId = part.headers.get(SIGNATURE_ALGORITHM_HEADER);
  if (!algorithmId) throw new XrdError('InvalidRequest', { reason: `${which} signature algorithm id is missing` });
  if (part.body.length === 0) throw new XrdError('InvalidRequest', { reason: `${which} signature is missing` });
  return { algorithmId, value: Buffer.from(part.body) };
}

function authCertRegOf(parts: MimePart[], soap: Buffer, header: SoapHeader): ParsedAuthCertRegRequest {
  const names = ['SOAP message', 'Auth signature', 'Owner signature', 'Auth certificate', 'Owner certificate', 'Owner certificate OCSP'];
  if (parts.length < names.length) throw new XrdError('InvalidRequest', { reason: `${names[parts.length]} is missing` });
  const [, authSig, ownerSig, authCertPart, ownerCert, ownerCertOcsp] = parts as [MimePart, MimePart, MimePart, MimePart, MimePart, MimePart];
  const authSignature = signatureOf(authSig, 'Auth');
  const ownerSignature = signatureOf(ownerSig, 'Owner');
  for (const [i, part] of [authCertPart, ownerCert, ownerCertOcsp].entries()) {
    if (part.body.length === 0) throw new XrdError('InvalidRequest', { reason: `${names[i + 3]} is missing` });
  }
  const body = readManagementBody(soap, 'authCertReg') as Extract<ManagementRequestBody, { type: 'authCertReg' }>;
  return {
    soap,
    header,
    serverId: body.server,
    address: body.address,
    authCert: body.authCert,
    authSignature,
    ownerSignature,
    authCertPart: Buffer.from(authCertPart.body),
    ownerCert: Buffer.from(ownerCert.body),
    ownerCertOcsp: Buffer.from(ownerCertOcsp.body),
  };
}

/**
 * The body of a request: the fields request.xsd gives the type, each required one present.
 * @throws InvalidSoap, InvalidRequest, InvalidClientIdentifier
 */
function readManagementBody(soap: Buffer, type: ManagementRequestType): ManagementRequestBody {
  let envelope: XmlElement;
  try {
    envelope = parseXml(soap);
  } catch (err) {
    throw new XrdError('InvalidSoap', { reason: (err as XmlError).message }, { cause: err });
  }
  const bad = (reason: string) => new XrdError('InvalidRequest', { reason });
  const soapBody = child(envelope, SOAP_ENV_NS, 'Body');
  const request = soapBody ? childElements(soapBody)[0] : undefined;
  if (!request || request.namespace !== XROAD_NS || request.localName !== type) throw bad(`the SOAP body holds no xroad:${type}`);
  const serverElement = child(request, XROAD_NS, 'server');
  if (!serverElement) throw bad(`${type} has no server`);
  const objectType = serverElement.attributes.find((a) => a.localName === 'objectType' && a.namespace === IDENTIFIERS_NS)?.value;
  if (objectType !== 'SERVER') throw new XrdError('InvalidClientIdentifier', { reason: `server objectType must be SERVER, not ${objectType ?? 'missing'}` });
  const idText = (name: string) => {
    const e = child(serverElement, IDENTIFIERS_NS, name);
    return e ? textOf(e).trim() : '';
  };
  const server: SecurityServerId = { instance: idText('xRoadInstance'), memberClass: idText('memberClass'), memberCode: idText('memberCode'), serverCode: idText('serverCode') };
  if (!server.instance || !server.memberClass || !server.memberCode || !server.serverCode) throw new XrdError('InvalidClientIdentifier', { reason: 'server identifier is incomplete' });
  const text = (name: string): string | undefined => {
    const e = child(request, XROAD_NS, name);
    return e ? textOf(e).trim() : undefined;
  };
  const required = (name: string): string => {
    const value = text(name);
    if (!value) throw bad(`${type} has no ${name}`);
    return value;
  };
  const authCert = (): Buffer => {
    const b64 = required('authCert').replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw bad('authCert is not base64');
    return Buffer.from(b64, 'base64');
  };
  const client = (): ClientId => {
    const e = child(request, XROAD_NS, 'client');
    if (!e) throw bad(`${type} has no client`);
    return clientIdOfElement(e, 'client');
  };
  const subsystemName = text('subsystemName');
  let body: ManagementRequestBody;
  switch (type) {
    case 'authCertReg': {
      const address = text('address');
      body = { type, server, ...(address !== undefined ? { address } : {}), authCert: authCert() };
      break;
    }
    case 'authCertDeletion':
      body = { type, server, authCert: authCert() };
      break;
    case 'clientReg':
      body = { type, server, client: client(), ...(subsystemName ? { subsystemName } : {}) };
      break;
    case 'clientRename':
      // Present but possibly blank: the verifier refuses a blank name as the reference does.
      body = { type, server, client: client(), subsystemName: subsystemName ?? '' };
      break;
    case 'clientDeletion':
    case 'clientDisable':
    case 'clientEnable':
    case 'ownerChange':
      body = { type, server, client: client() };
      break;
    case 'addressChange':
      body = { type, server, address: text('address') ?? '' };
      break;
    case 'maintenanceModeEnable': {
      const message = text('message');
      body = { type, server, ...(message !== undefined ? { message } : {}) };
      break;
    }
    case 'maintenanceModeDisable':
      body = { type, server };
      break;
  }
  return body;
}

/**
 * The answer's `xroad:requestId`, wherever the body's element holds it: the reference's
 * ManagementRequestSender looks for it alone and reads nothing else of the echoed fields.
 * @throws InvalidSoap
 */
function requestIdOf(soap: Buffer): string | undefined {
  let envelope: XmlElement;
  try {
    envelope = parseXml(soap);
  } catch (err) {
    throw new XrdError('InvalidSoap', { reason: (err as XmlError).message }, { cause: err });
  }
  const soapBody = child(envelope, SOAP_ENV_NS, 'Body');
  const answer = soapBody ? childElements(soapBody)[0] : undefined;
  const requestId = answer && child(answer, XROAD_NS, 'requestId');
  return requestId ? textOf(requestId).trim() : undefined;
}

/**
 * The central server's answer to a request it accepted: the request's header and fields echoed,
 * with `requestId` added (pr-mserv annex A).
 */
export function managementRequestResponse(request: { readonly header: SoapHeader; readonly body: ManagementRequestBody }, requestId: string): Buffer {
  const header = { client: request.header.client, service: request.header.service.provider, id: request.header.id };
  return Buffer.from(managementSoap(header, request.body, requestId), 'utf8');
}

/** `managementRequestResponse` for an authCertReg request as `parseAuthCertRegRequest` reads it. */
export function authCertRegResponse(request: ParsedAuthCertRegRequest, requestId: string): Buffer {
  return managementRequestResponse({ header: request.header, body: { type: 'authCertReg', server: request.serverId, ...(request.address !== undefined ? { address: request.address } : {}), authCert: request.authCert } }, requestId);
}

// ---- sending ----------------------------------------------------------------------------------

export interface SendOptions {
  /** The whole exchange; 60 s by default. */
  readonly timeoutMs?: number;
  /**
   * For an https URL: the TLS certificate the management service must present (private parameters'
   * authCertRegServiceCert, pr-mserv §2.3), compared byte for byte as the reference does. Without
   * it the certificate must chain to a CA Node trusts.
   */
  readonly serverCert?: Buffer;
  /** For an https URL: the TLS client certificate and key to present (the internal TLS key, to the server's own client proxy). */
  readonly clientTls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
}

const MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * POSTs a built request and reads the management service's answer: authCertReg to the management
 * service's address, every other type to the server's own client proxy (`MANAGEMENT_REQUESTS[type].via`),
 * which forwards it as an X-Road message and returns the answer.
 * @returns the central server's request id
 * @throws NetworkError (cannot connect, no answer in time, wrong TLS certificate),
 *   ManagementRequestFailed (a SOAP fault — its code and text in `details.faultCode`,
 *   `details.faultString` — or an answer that is not a SOAP response with a requestId),
 *   InconsistentResponse (the answer's header is not the request's)
 */
export async function sendManagementRequest(url: string, request: { readonly contentType: string; readonly body: Buffer; readonly soap?: Buffer }, options: SendOptions = {}): Promise<{ requestId: string }> {
  const { status, contentType, body } = await post(url, request, options);
  const failed = (reason: string, extra: Record<string, string> = {}) => new XrdError('ManagementRequestFailed', { url, reason, ...extra });
  const fault = readSoapFault(body);
  if (fault) throw failed(`${fault.faultCode}: ${fault.faultString}`, { faultCode: fault.faultCode, faultString: fault.faultString, ...(fault.detail ? { faultDetail: fault.detail } : {}) });
  if (status !== 200) throw failed(`HTTP ${status}${body.length ? `: ${body.subarray(0, 200).toString('utf8')}` : ''}`);
  if (!/^\s*text\/xml\s*(;|$)/i.test(contentType)) throw failed(`Unexpected or no content type (${contentType || 'none'}) in response`);
  let responseHeader: SoapHeader;
  let requestId: string | undefined;
  try {
    responseHeader = parseSoapHeader(body);
    requestId = requestIdOf(body);
  } catch (err) {
    throw failed(`the response is not a management request response: ${(err as Error).message}`);
  }
  if (request.soap) checkResponseHeader(parseSoapHeader(request.soap), responseHeader);
  if (!requestId) throw failed('the response has no requestId');
  return { requestId };
}

async function post(url: string, request: { contentType: string; body: Buffer }, options: SendOptions): Promise<{ status: number; contentType: string; body: Buffer }> {
  // The pinned certificate is for an https URL; over plain HTTP there is none to check.
  const pinnedCert = options.serverCert && /^https:/i.test(url) ? options.serverCert : undefined;
  let answer: BoundedResponse;
  try {
    answer = await fetchBounded(url, {
      method: 'POST',
      headers: { 'content-type': request.contentType, 'content-length': String(request.body.length) },
      body: request.body,
      deadlineMs: options.timeoutMs ?? 60_000,
      maxBytes: MAX_RESPONSE_BYTES,
      pinnedCert,
      ...(options.clientTls ? { clientTls: options.clientTls } : {}),
    });
  } catch (err) {
    // The caller's contract is NetworkError for anything on the way; the bound that was hit is the cause.
    throw err instanceof XrdError && err.code === 'NetworkError' ? err : new XrdError('NetworkError', { target: url, reason: (err as Error).message }, { cause: err });
  }
  return { status: answer.status, contentType: answer.headers['content-type'] ?? '', body: answer.body };
}
