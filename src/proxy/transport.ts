/**
 * The proxies' view of a message between security servers: what was signed (the SOAP envelope or
 * the REST header part, and the attachments or REST body), the signature with its hash chain, and
 * the OCSP responses for the sender's authentication certificate. Encoding and decoding in the
 * reference's multipart/mixed layout is protocol/proxy-message.ts; this maps between the two.
 */
import { XrdError } from '../platform/errors.ts';
import { decodeProxyMessage, encodeProxyMessage, type EncodedProxyMessage, type ProxyContent, type TransportHeaders } from '../protocol/proxy-message.ts';
import type { ReceivedSoapFault } from '../protocol/faults.ts';
import { headerValue, parseRestHeaderPart } from '../protocol/rest-message.ts';
import type { SignedMessage } from '../signature/message-signer.ts';

export interface Attachment {
  readonly contentType: string;
  readonly body: Buffer;
  readonly contentId?: string;
}

export interface Envelope {
  readonly kind: 'soap' | 'rest';
  /** `/message.xml`: the SOAP envelope or the REST header part. */
  readonly message: Buffer;
  /** Content type of the SOAP envelope part. */
  readonly contentType?: string;
  readonly soapAction?: string;
  /** SOAP attachments, or the REST body as the only one. */
  readonly attachments: readonly Attachment[];
  readonly signed: SignedMessage;
  readonly ocspResponses: readonly Buffer[];
}

export function encodeEnvelope(envelope: Envelope): EncodedProxyMessage {
  const content: ProxyContent =
    envelope.kind === 'soap'
      ? {
          kind: 'soap',
          soap: envelope.message,
          contentType: envelope.contentType ?? 'text/xml; charset=UTF-8',
          attachments: envelope.attachments.map((a) => ({ contentType: a.contentType, headers: a.contentId ? [['content-id', a.contentId] as const] : [], body: a.body })),
        }
      : { kind: 'rest', role: /^[1-9]/.test(envelope.message.subarray(0, 1).toString('latin1')) ? 'response' : 'request', headerPart: envelope.message, body: envelope.attachments[0]?.body };
  return encodeProxyMessage({
    content,
    ocspResponses: envelope.ocspResponses,
    signature: { signatureXml: envelope.signed.signatureXml, hashChainResult: envelope.signed.hashChainResult, hashChain: envelope.signed.hashChain },
    originalSoapAction: envelope.soapAction,
  });
}

/**
 * @param direction 'request' on the server proxy (must be a signed message), 'response' on the
 *   client proxy (may be the provider's fault)
 * @throws InvalidContentType, InvalidMessage, MissingSignature, … (protocol/proxy-message.ts)
 */
export function decodeEnvelope(contentType: string, body: Buffer, headers: TransportHeaders, direction: 'request' | 'response'): Envelope | ReceivedSoapFault {
  const decoded = decodeProxyMessage(contentType, body, headers, { direction });
  if (decoded.fault) return decoded.fault;
  const { content, signature } = decoded;
  if (!content || !signature) throw new XrdError('MissingSignature', {});
  const signed = {
    signatureXml: signature.signatureXml.toString('utf8'),
    hashChainResult: signature.hashChainResult?.toString('utf8'),
    hashChain: signature.hashChain?.toString('utf8'),
  };
  if (content.kind === 'soap') {
    return {
      kind: 'soap',
      message: content.soap,
      contentType: content.contentType,
      soapAction: decoded.originalSoapAction,
      attachments: (content.attachments ?? []).map((a) => ({ contentType: a.contentType, body: a.body, contentId: headerValue(a.headers, 'content-id') })),
      signed,
      ocspResponses: decoded.ocspResponses,
    };
  }
  const bodyType = content.body !== undefined ? (headerValue(parseRestHeaderPart(content.headerPart).headers, 'content-type') ?? 'application/octet-stream') : undefined;
  return { kind: 'rest', message: content.headerPart, attachments: content.body !== undefined ? [{ contentType: bodyType!, body: content.body }] : [], signed, ocspResponses: decoded.ocspResponses };
}
