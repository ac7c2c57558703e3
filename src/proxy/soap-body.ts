/**
 * A SOAP message on the HTTP hops to and from information systems: `text/xml`, or SOAP with
 * attachments as `multipart/related` whose first part is the envelope (the reference accepts and
 * produces both on the client side and towards services).
 */
import { randomUUID } from 'node:crypto';
import { XrdError, type FaultPrefix } from '../platform/errors.ts';
import { TEXT_XML_UTF8 } from '../protocol/faults.ts';
import { boundaryOf, buildMultipart, parseMultipart } from '../protocol/multipart.ts';
import type { Attachment } from './transport.ts';

export interface SoapBody {
  readonly message: Buffer;
  /** Content type of the envelope itself. */
  readonly contentType: string;
  readonly attachments: readonly Attachment[];
}

/** @throws InvalidContentType (neither text/xml nor multipart/related), InvalidSoap (no envelope part) */
export function readSoapBody(contentType: string | undefined, body: Buffer, prefix: FaultPrefix): SoapBody {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'text/xml') return { message: body, contentType: contentType!, attachments: [] };
  if (type !== 'multipart/related') throw new XrdError('InvalidContentType', { contentType: contentType || '(none)' }, { prefix });
  const boundary = boundaryOf(contentType!);
  let parts;
  try {
    if (!boundary) throw new Error('no boundary');
    parts = parseMultipart(body, boundary);
  } catch (err) {
    throw new XrdError('InvalidContentType', { contentType: `${contentType} (${(err as Error).message})` }, { prefix });
  }
  const [soap, ...rest] = parts;
  if (!soap) throw new XrdError('InvalidSoap', { reason: 'the multipart message has no SOAP part' }, { prefix });
  return {
    message: soap.body,
    contentType: soap.headers.get('content-type') ?? TEXT_XML_UTF8,
    attachments: rest.map((p) => ({ contentType: p.headers.get('content-type') ?? 'application/octet-stream', body: p.body, contentId: p.headers.get('content-id') })),
  };
}

export function writeSoapBody(soap: SoapBody): { contentType: string; body: Buffer } {
  if (soap.attachments.length === 0) return { contentType: soap.contentType, body: soap.message };
  const boundary = `xroad-${randomUUID()}`;
  const parts = [
    { headers: [['Content-Type', soap.contentType]] as [string, string][], body: soap.message },
    ...soap.attachments.map((a) => ({ headers: [['Content-Type', a.contentType], ...(a.contentId ? [['Content-ID', a.contentId]] : [])] as [string, string][], body: a.body })),
  ];
  return { contentType: `multipart/related; type="text/xml"; boundary="${boundary}"`, body: buildMultipart(boundary, parts) };
}
