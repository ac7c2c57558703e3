/**
 * A SOAP message on the HTTP hops to and from information systems (pr-mess §2.4; the reference's
 * SoapMessageDecoder and ProxyMessage.writeSoapContent): a bare envelope as `text/xml` (or
 * `application/xop+xml`), or a package — SOAP with attachments or MTOM — as `multipart/related`
 * whose first part is the envelope.
 *
 * Reading keeps what the package was: the envelope's part headers, each attachment's headers and
 * exact bytes (nested multiparts are read down to their leaf parts, as the reference does), and
 * the package's Content-Type, which travels to the other side as `x-original-content-type`.
 * Writing rebuilds the package with that Content-Type and its boundary, so the service (and, on
 * the way back, the information system) gets the multipart as it was sent, not a repackaged one.
 * Attachments go to the spool as they arrive; the envelope is held in memory, bounded.
 */
import { XrdError } from '../platform/errors.ts';
import { SpoolFolder, readBounded, type Body, type SpoolWriter } from '../platform/spool.ts';
import { TEXT_XML_UTF8 } from './faults.ts';
import { MultipartParser, boundaryOf, mimeHeader, type MimeHeaders, type PartSink } from './multipart.ts';
import { baseType, mimeStep, multipartPieces, randomLetters, type MimeAttachment, type SoapContent } from './proxy-message.ts';

export interface SoapPackage extends SoapContent {
  readonly attachments: readonly MimeAttachment[];
  /** The Content-Type of the HTTP message as it came: `x-original-content-type` for the other side. */
  readonly packageContentType: string;
  /** Whether the envelope came inside a multipart/related package. */
  readonly packaged: boolean;
}

export interface SoapPackageLimits {
  /** Where attachments go; in memory when not given. */
  readonly spool?: SpoolFolder;
  /** Most bytes of the envelope (MessageTooLarge). */
  readonly maxSoapBytes: number;
  /** Most bytes of the whole message (MessageTooLarge); unlimited when not given. */
  readonly maxBytes?: number;
  /** Most attachments. Default 1000. */
  readonly maxAttachments?: number;
}

/** How deep multiparts may nest inside a package (each level is a parser on the stack). */
const MAX_NESTING = 8;

/** Media types an envelope may come as (the reference's SoapUtils.ALLOWED_MIMETYPES). */
const SOAP_TYPES = ['text/xml', 'application/xop+xml'];

/**
 * Reads a SOAP message or package as it arrives.
 * @throws InvalidContentType (not text/xml, xop+xml or multipart/related; a part without
 *   Content-Type; a first part that is not an envelope), MissingSoap (a package with no parts),
 *   MimeParsingFailed, InvalidMessage (too many attachments), MessageTooLarge, IOError
 */
export async function readSoapPackage(contentType: string | undefined, body: Buffer | AsyncIterable<Buffer>, limits: SoapPackageLimits): Promise<SoapPackage> {
  const type = baseType(contentType ?? '');
  if (SOAP_TYPES.includes(type)) {
    const soap = await readBounded(body, Math.min(limits.maxSoapBytes, limits.maxBytes ?? Infinity));
    return { kind: 'soap', soap, contentType: contentType!, partHeaders: [], attachments: [], packageContentType: contentType!, packaged: false };
  }
  if (type !== 'multipart/related') throw new XrdError('InvalidContentType', { contentType: contentType || '(none)' });
  const boundary = boundaryOf(contentType!);
  if (!boundary) throw new XrdError('InvalidContentType', { contentType: `${contentType} (multipart without a boundary)` });

  const reader = new PackageReader(limits);
  // Lenient like the reference's MIME parser: a body without any delimiter has no parts (MissingSoap),
  // and one that ends without its close delimiter ends its last part there.
  const parser = new MultipartParser(boundary, (h) => reader.part(h), { maxParts: (limits.maxAttachments ?? 1000) + 1 });
  try {
    let size = 0;
    const take = (chunk: Buffer) => {
      size += chunk.length;
      if (limits.maxBytes !== undefined && size > limits.maxBytes) throw new XrdError('MessageTooLarge', { limit: limits.maxBytes });
      mimeStep(() => parser.write(chunk), 'attachments', limits.maxAttachments ?? 1000);
    };
    if (Buffer.isBuffer(body)) take(body);
    else for await (const chunk of body) take(chunk);
    parser.endLeniently();
    return reader.finish(contentType!);
  } catch (err) {
    reader.dispose();
    throw err;
  }
}

class PackageReader {
  private soap: { bytes: Buffer; contentType: string; headers: MimeHeaders } | undefined;
  private soapStarted = false;
  private readonly attachments: MimeAttachment[] = [];
  private readonly writers: SpoolWriter[] = [];
  private readonly spool: SpoolFolder;

  constructor(private readonly limits: SoapPackageLimits) {
    this.spool = limits.spool ?? SpoolFolder.MEMORY;
  }

  part(headers: MimeHeaders, depth = 0): PartSink {
    const contentType = mimeHeader(headers, 'content-type');
    if (!contentType) throw new XrdError('InvalidContentType', { contentType: '(none) (Could not get content type for part)' });
    const others = headers.filter(([n]) => n.toLowerCase() !== 'content-type');
    if (!this.soapStarted) {
      // The first part is the envelope.
      this.soapStarted = true;
      if (!SOAP_TYPES.includes(baseType(contentType))) throw new XrdError('InvalidContentType', { contentType: `${contentType} (the first part must be the SOAP message)` });
      const chunks: Buffer[] = [];
      let size = 0;
      return {
        write: (c) => {
          size += c.length;
          if (size > this.limits.maxSoapBytes) throw new XrdError('MessageTooLarge', { limit: this.limits.maxSoapBytes });
          chunks.push(c);
        },
        end: () => (this.soap = { bytes: Buffer.concat(chunks, size), contentType, headers: others }),
      };
    }
    if (baseType(contentType).startsWith('multipart/')) return this.nested(contentType, depth);
    if (this.writers.length >= (this.limits.maxAttachments ?? 1000)) throw new XrdError('InvalidMessage', { reason: `more than ${this.limits.maxAttachments ?? 1000} attachments` });
    const writer = this.spool.writer(undefined);
    this.writers.push(writer);
    return {
      write: (c) => writer.write(c),
      end: () => this.attachments.push({ contentType, headers: others, body: writer.end() }),
    };
  }

  /** A multipart inside the package: its leaf parts are attachments, each with its own headers. */
  private nested(contentType: string, depth: number): PartSink {
    const boundary = boundaryOf(contentType);
    if (!boundary) throw new XrdError('InvalidContentType', { contentType: `${contentType} (multipart without a boundary)` });
    if (depth >= MAX_NESTING) throw new XrdError('InvalidMessage', { reason: `multiparts nested more than ${MAX_NESTING} deep` });
    const parser = new MultipartParser(boundary, (h) => this.part(h, depth + 1), { maxParts: this.limits.maxAttachments ?? 1000 });
    return { write: (c) => parser.write(c), end: () => parser.endLeniently() };
  }

  finish(packageContentType: string): SoapPackage {
    if (!this.soap) throw new XrdError('MissingSoap', { message: 'Request' });
    return {
      kind: 'soap',
      soap: this.soap.bytes,
      contentType: this.soap.contentType,
      partHeaders: this.soap.headers,
      attachments: this.attachments,
      packageContentType,
      packaged: true,
    };
  }

  dispose(): void {
    for (const w of this.writers) w.abort();
    for (const a of this.attachments) a.body.dispose();
  }
}

/**
 * What a service (or, on the way back, the information system) gets, as the reference's
 * ProxyMessage writes it: the package rebuilt with the Content-Type and boundary of
 * `originalContentType` when the message came as one (the envelope part with its headers first,
 * then every attachment with its headers), else the bare envelope as `text/xml; charset=UTF-8`.
 */
export function soapPackagePieces(content: SoapContent, originalContentType?: string): { contentType: string; pieces: (Buffer | Body)[] } {
  const attachments = content.attachments ?? [];
  const original = originalContentType !== undefined && baseType(originalContentType) === 'multipart/related' ? originalContentType : undefined;
  if (!original && attachments.length === 0) return { contentType: TEXT_XML_UTF8, pieces: [content.soap] };
  const boundary = (original && boundaryOf(original)) || `xatt${randomLetters(30)}`;
  const contentType = original && boundaryOf(original) ? original : `multipart/related; type="text/xml"; charset=UTF-8; boundary=${boundary}`;
  const pieces = multipartPieces(boundary, [{ contentType: content.contentType, headers: content.partHeaders ?? [], body: content.soap }, ...attachments]);
  return { contentType, pieces };
}
