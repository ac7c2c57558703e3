/**
 * The authentication certificate registration request (pr-mserv §2.3, docs/management-requests.md):
 * the one management request a security server sends straight to the central server's management
 * service over HTTP(S), since without a registered authentication certificate it cannot send X-Road
 * messages yet. A `multipart/related` body of six parts: the X-Road SOAP request (`authCertReg` with
 * server, address, authCert), the SOAP bytes signed with the authentication key (proof of
 * possession) and with the owner's signing key, the authentication certificate, the owner's signing
 * certificate and that certificate's OCSP response. The central server answers with the request
 * echoed and its `requestId`, or a SOAP fault.
 *
 * Building and reading only: keys are the caller's (`ManagementRequestSigner`), and whether a
 * request can be trusted is `trust/management-request-verifier.ts`.
 */
import { X509Certificate, createHash, randomBytes, randomUUID } from 'node:crypto';
import { XrdError } from '../platform/errors.ts';
import { fetchBounded, type BoundedResponse } from '../platform/http-client.ts';
import { XmlError, child, childElements, parseXml, textOf, type XmlElement } from '../xml/xml-tree.ts';
import { escapeXml, readSoapFault } from './faults.ts';
import type { ClientId, SecurityServerId } from './identifiers.ts';
import { IDENTIFIERS_NS, SOAP_ENV_NS, XROAD_NS } from './namespaces.ts';
import { MultipartLimitError, boundaryOf, buildMultipart, parseMultipart, type MimePart } from './multipart.ts';
import { checkResponseHeader, parseSoapHeader, type SoapHeader } from './soap-message.ts';

export const AUTH_CERT_REG_SERVICE_CODE = 'authCertReg';
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

export interface AuthCertRegInput {
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
  /** The management service provider: private parameters' managementRequestServiceProviderId. */
  readonly managementService: ClientId;
  /** The SOAP header's `xroad:id`; a random UUID by default. */
  readonly requestId?: string;
}

export interface BuiltManagementRequest {
  /** `multipart/related; type="application/octet-stream"; charset=UTF-8; boundary=…` */
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
 * The request as the reference's AuthCertRegRequest writes it, signed with both keys.
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
  const owner: ClientId = { instance: input.serverId.instance, memberClass: input.serverId.memberClass, memberCode: input.serverId.memberCode };
  const soap = Buffer.from(
    authCertRegSoap({ client: owner, service: input.managementService, id: input.requestId ?? randomUUID() }, 'authCertReg', input.serverId, input.address, input.authCert),
    'utf8',
  );
  const authSignature = await signWith(signers.auth, soap, 'authentication');
  const ownerSignature = await signWith(signers.owner, soap, 'owner');
  const boundary = `xrd${randomBytes(12).toString('hex')}`;
  const body = buildMultipart(boundary, [
    { headers: [['Content-Type', TEXT_XML_UTF8]], body: soap },
    { headers: [['Content-Type', BINARY], [SIGNATURE_ALGORITHM_HEADER, signers.auth.algorithmId]], body: authSignature },
    { headers: [['Content-Type', BINARY], [SIGNATURE_ALGORITHM_HEADER, signers.owner.algorithmId]], body: ownerSignature },
    { headers: [['Content-Type', BINARY]], body: input.authCert },
    { headers: [['Content-Type', BINARY]], body: input.ownerCert },
    { headers: [['Content-Type', BINARY]], body: input.ownerCertOcsp },
  ]);
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

function idFields(id: { instance: string; memberClass: string; memberCode: string }): string {
  return `<id:xRoadInstance>${escapeXml(id.instance)}</id:xRoadInstance><id:memberClass>${escapeXml(id.memberClass)}</id:memberClass><id:memberCode>${escapeXml(id.memberCode)}</id:memberCode>`;
}

/** The request (`authCertReg`) or the central server's answer (`authCertRegResponse` with requestId). */
function authCertRegSoap(header: HeaderFields, element: 'authCertReg' | 'authCertRegResponse', server: SecurityServerId, address: string | undefined, authCert: Buffer, requestId?: string): string {
  const client = `<xroad:client id:objectType="MEMBER">${idFields(header.client)}</xroad:client>`;
  const provider = header.service;
  const service =
    `<xroad:service id:objectType="SERVICE">${idFields(provider)}` +
    (provider.subsystem !== undefined ? `<id:subsystemCode>${escapeXml(provider.subsystem)}</id:subsystemCode>` : '') +
    `<id:serviceCode>${AUTH_CERT_REG_SERVICE_CODE}</id:serviceCode></xroad:service>`;
  const body =
    `<xroad:${element}>` +
    `<xroad:server id:objectType="SERVER">${idFields(server)}<id:serverCode>${escapeXml(server.serverCode)}</id:serverCode></xroad:server>` +
    (address !== undefined ? `<xroad:address>${escapeXml(address)}</xroad:address>` : '') +
    `<xroad:authCert>${authCert.toString('base64')}</xroad:authCert>` +
    (requestId !== undefined ? `<xroad:requestId>${escapeXml(requestId)}</xroad:requestId>` : '') +
    `</xroad:${element}>`;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<SOAP-ENV:Envelope xmlns:SOAP-ENV="${SOAP_ENV_NS}" xmlns:id="${IDENTIFIERS_NS}" xmlns:xroad="${XROAD_NS}">` +
    `<SOAP-ENV:Header>${client}${service}<xroad:id>${escapeXml(header.id)}</xroad:id><xroad:protocolVersion>4.0</xroad:protocolVersion></SOAP-ENV:Header>` +
    `<SOAP-ENV:Body>${body}</SOAP-ENV:Body></SOAP-ENV:Envelope>`
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

/**
 * Reads an authCertReg request's parts and SOAP message; nothing is verified yet.
 * @throws InvalidContentType, MessageTooLarge, MimeParsingFailed, InvalidRequest (a part missing or
 *   one too many, not an authCertReg request, a field missing), and parseSoapHeader's InvalidSoap,
 *   MissingHeaderField, InvalidProtocolVersion, InvalidClientIdentifier
 */
export function parseAuthCertRegRequest(contentType: string, body: Buffer): ParsedAuthCertRegRequest {
  if (!/^\s*multipart\/related\s*(;|$)/i.test(contentType)) throw new XrdError('InvalidContentType', { contentType });
  const boundary = boundaryOf(contentType);
  if (!boundary) throw new XrdError('InvalidContentType', { contentType });
  if (body.length > MAX_MANAGEMENT_REQUEST_BYTES) throw new XrdError('MessageTooLarge', { limit: MAX_MANAGEMENT_REQUEST_BYTES });
  let parts;
  try {
    parts = parseMultipart(body, boundary, { maxParts: 6 });
  } catch (err) {
    if (err instanceof MultipartLimitError) throw new XrdError('InvalidRequest', { reason: 'Unexpected content in multipart' }, { cause: err });
    throw new XrdError('MimeParsingFailed', { reason: (err as Error).message }, { cause: err });
  }
  const names = ['SOAP message', 'Auth signature', 'Owner signature', 'Auth certificate', 'Owner certificate', 'Owner certificate OCSP'];
  if (parts.length < names.length) throw new XrdError('InvalidRequest', { reason: `${names[parts.length]} is missing` });
  const [soapPart, authSig, ownerSig, authCertPart, ownerCert, ownerCertOcsp] = parts as [MimePart, MimePart, MimePart, MimePart, MimePart, MimePart];
  const soapType = soapPart.headers.get('content-type') ?? '';
  if (!/^\s*text\/xml\s*(;|$)/i.test(soapType)) throw new XrdError('InvalidRequest', { reason: `Request contains no SOAP message (first part is ${soapType || 'untyped'})` });
  const signature = (part: MimePart, which: string): ManagementSignature => {
    const algorithmId = part.headers.get(SIGNATURE_ALGORITHM_HEADER);
    if (!algorithmId) throw new XrdError('InvalidRequest', { reason: `${which} signature algorithm id is missing` });
    if (part.body.length === 0) throw new XrdError('InvalidRequest', { reason: `${which} signature is missing` });
    return { algorithmId, value: Buffer.from(part.body) };
  };
  for (const [i, part] of [authCertPart, ownerCert, ownerCertOcsp].entries()) {
    if (part.body.length === 0) throw new XrdError('InvalidRequest', { reason: `${names[i + 3]} is missing` });
  }
  const soap = Buffer.from(soapPart.body);
  const header = parseSoapHeader(soap);
  if (header.service.serviceCode !== AUTH_CERT_REG_SERVICE_CODE) {
    throw new XrdError('InvalidRequest', { reason: `service ${header.service.serviceCode} is not ${AUTH_CERT_REG_SERVICE_CODE}` });
  }
  const fields = readAuthCertRegBody(soap, 'authCertReg');
  return {
    soap,
    header,
    ...fields,
    authSignature: signature(authSig, 'Auth'),
    ownerSignature: signature(ownerSig, 'Owner'),
    authCertPart: Buffer.from(authCertPart.body),
    ownerCert: Buffer.from(ownerCert.body),
    ownerCertOcsp: Buffer.from(ownerCertOcsp.body),
  };
}

function readAuthCertRegBody(soap: Buffer, element: 'authCertReg' | 'authCertRegResponse'): { serverId: SecurityServerId; address: string | undefined; authCert: Buffer; requestId: string | undefined } {
  let envelope: XmlElement;
  try {
    envelope = parseXml(soap);
  } catch (err) {
    throw new XrdError('InvalidSoap', { reason: (err as XmlError).message }, { cause: err });
  }
  const bad = (reason: string) => new XrdError('InvalidRequest', { reason });
  const body = child(envelope, SOAP_ENV_NS, 'Body');
  const request = body ? childElements(body)[0] : undefined;
  if (!request || request.namespace !== XROAD_NS || request.localName !== element) throw bad(`the SOAP body holds no xroad:${element}`);
  const server = child(request, XROAD_NS, 'server');
  if (!server) throw bad(`${element} has no server`);
  const objectType = server.attributes.find((a) => a.localName === 'objectType' && a.namespace === IDENTIFIERS_NS)?.value;
  if (objectType !== 'SERVER') throw new XrdError('InvalidClientIdentifier', { reason: `server objectType must be SERVER, not ${objectType ?? 'missing'}` });
  const idText = (name: string) => {
    const e = child(server, IDENTIFIERS_NS, name);
    return e ? textOf(e).trim() : '';
  };
  const serverId: SecurityServerId = { instance: idText('xRoadInstance'), memberClass: idText('memberClass'), memberCode: idText('memberCode'), serverCode: idText('serverCode') };
  if (!serverId.instance || !serverId.memberClass || !serverId.memberCode || !serverId.serverCode) {
    throw new XrdError('InvalidClientIdentifier', { reason: 'server identifier is incomplete' });
  }
  const addressElement = child(request, XROAD_NS, 'address');
  const certElement = child(request, XROAD_NS, 'authCert');
  const certText = certElement ? textOf(certElement).replace(/\s+/g, '') : '';
  if (!certText) throw bad(`${element} has no authCert`);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(certText)) throw bad('authCert is not base64');
  const requestIdElement = child(request, XROAD_NS, 'requestId');
  return {
    serverId,
    address: addressElement ? textOf(addressElement).trim() : undefined,
    authCert: Buffer.from(certText, 'base64'),
    requestId: requestIdElement ? textOf(requestIdElement).trim() : undefined,
  };
}

/**
 * The central server's answer to a request it accepted: the request's header and fields echoed, with
 * `requestId` added (pr-mserv annex A.3).
 */
export function authCertRegResponse(request: ParsedAuthCertRegRequest, requestId: string): Buffer {
  const header = { client: request.header.client, service: request.header.service.provider, id: request.header.id };
  return Buffer.from(authCertRegSoap(header, 'authCertRegResponse', request.serverId, request.address, request.authCert, requestId), 'utf8');
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
}

const MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * POSTs a built request to the management service and reads its answer.
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
  let fields;
  try {
    responseHeader = parseSoapHeader(body);
    fields = readAuthCertRegBody(body, 'authCertRegResponse');
  } catch (err) {
    throw failed(`the response is not an authCertReg response: ${(err as Error).message}`);
  }
  if (request.soap) checkResponseHeader(parseSoapHeader(request.soap), responseHeader);
  if (!fields.requestId) throw failed('the response has no requestId');
  return { requestId: fields.requestId };
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
    });
  } catch (err) {
    // The caller's contract is NetworkError for anything on the way; the bound that was hit is the cause.
    throw err instanceof XrdError && err.code === 'NetworkError' ? err : new XrdError('NetworkError', { target: url, reason: (err as Error).message }, { cause: err });
  }
  return { status: answer.status, contentType: answer.headers['content-type'] ?? '', body: answer.body };
}
