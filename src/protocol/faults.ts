/**
 * How the proxies report errors, in the reference's exact forms:
 * - SOAP 1.1 faults: what the server proxy answers the client proxy with (HTTP 200, `text/xml;
 *   charset=UTF-8`, for SOAP and REST alike — pr-messtransp §3.1), what goes last in a multipart
 *   response when signing failed, and what the client proxy answers a SOAP information system with.
 *   `faultcode` is the X-Road code (`Server.ServerProxy.AccessDenied`), `faultstring` the text, and
 *   `detail/faultDetail` an error id (a UUID the reference also logs).
 * - REST errors (pr-rest §4.6): status 500 for `Server.*` codes and 400 otherwise, header
 *   `X-Road-Error: <code>`, body `{"type","message","detail"}` as JSON, or `<error>` XML when the
 *   information system's Accept asks for XML.
 */
import { randomUUID } from 'node:crypto';
import { XrdError } from '../platform/errors.ts';
import { XmlError, child, childElements, parseXml, textOf, type XmlElement } from '../xml/xml-tree.ts';
import { SOAP_ENV_NS } from './namespaces.ts';
import { SOAP_ENVELOPE } from './soap-message.ts';

export const TEXT_XML_UTF8 = 'text/xml; charset=UTF-8';

export interface SoapFault {
  /** As written, e.g. `Server.ServerProxy.AccessDenied`, or 7.8's `server.serverproxy.access_denied` (see normalizeFaultCode). */
  readonly faultCode: string;
  readonly faultString: string;
  readonly faultActor?: string;
  /** Text of `detail`'s first child: the reference's error id. */
  readonly detail?: string;
}

/** A fault read from a peer, with its document as received, so it can be passed on unchanged. */
export interface ReceivedSoapFault extends SoapFault {
  readonly xml: Buffer;
}

/**
 * The fault document, laid out as the reference writes it (no whitespace between elements, the
 * detail inside an unqualified `faultDetail`).
 */
export function soapFault(faultCode: string, faultString: string, detail?: string, faultActor?: string): Buffer {
  return Buffer.from(
    '<?xml version="1.0" encoding="UTF-8"?>' +
      `<SOAP-ENV:Envelope xmlns:SOAP-ENV="${SOAP_ENV_NS}"><SOAP-ENV:Body><SOAP-ENV:Fault>` +
      `<faultcode>${escapeXml(faultCode)}</faultcode><faultstring>${escapeXml(faultString)}</faultstring>` +
      (faultActor !== undefined ? `<faultactor>${escapeXml(faultActor)}</faultactor>` : '') +
      (detail !== undefined ? `<detail><faultDetail xmlns="">${escapeXml(detail)}</faultDetail></detail>` : '') +
      '</SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>',
    'utf8',
  );
}

/**
 * How our fault codes are written: 7.7's CamelCase (`Server.ClientProxy.SslAuthenticationFailed`,
 * seed 003's texts; the default) or 7.8's lower-case dotted form
 * (`server.clientproxy.ssl_authentication_failed`). Codes from peers are read in either.
 */
export type FaultCodeStyle = 'camel' | 'snake';

/** 7.8's snake_case words whose mechanical form differs (the reference's ErrorCode names). */
const IRREGULAR_SNAKE: Record<string, string> = { IOError: 'io_error', HashChainUnusedInputs: 'hashchain_unused_inputs', OutdatedGlobalConf: 'global_conf_outdated', HSMNonOperational: 'hsm_non_operational' };

/** A CamelCase fault code in the given style; codes that are not ours (a service's `soap:Server`) stay. */
export function faultCodeIn(code: string, style: FaultCodeStyle): string {
  if (style === 'camel' || !/^(Server\.(ClientProxy|ServerProxy)|Client|Signer)(\.|$)/.test(code)) return code;
  const [first, ...rest] = code.split('.');
  const prefix = first === 'Server' ? `server.${rest.shift()!.toLowerCase()}` : first!.toLowerCase();
  const words = rest.map((part) => IRREGULAR_SNAKE[part] ?? part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2').toLowerCase());
  return [prefix, ...words].join('.');
}

/** The fault an error is reported as; `detail` is a fresh error id unless given (log it with the error). */
export function faultOfError(err: XrdError, detail: string = randomUUID(), style: FaultCodeStyle = 'camel'): SoapFault {
  return { faultCode: faultCodeIn(err.faultCode, style), faultString: err.message, detail };
}

/**
 * The SOAP fault a document holds, or undefined when it is anything else (a SOAP message, not XML
 * at all). Cheap for ordinary messages: only documents that mention `Fault` are parsed.
 */
export function readSoapFault(xml: Buffer | string): ReceivedSoapFault | undefined {
  const bytes = typeof xml === 'string' ? Buffer.from(xml, 'utf8') : xml;
  if (!bytes.includes('Fault')) return undefined;
  let envelope: XmlElement;
  try {
    envelope = parseXml(bytes, SOAP_ENVELOPE);
  } catch (err) {
    if (err instanceof XmlError) return undefined;
    throw err;
  }
  return faultIn(envelope, bytes);
}

/** @throws InvalidSoap when the document is not a SOAP 1.1 fault */
export function parseSoapFault(xml: Buffer | string): ReceivedSoapFault {
  const bytes = typeof xml === 'string' ? Buffer.from(xml, 'utf8') : xml;
  let envelope: XmlElement;
  try {
    envelope = parseXml(bytes, SOAP_ENVELOPE);
  } catch (err) {
    throw new XrdError('InvalidSoap', { reason: (err as Error).message }, { cause: err });
  }
  const fault = faultIn(envelope, bytes);
  if (!fault) throw new XrdError('InvalidSoap', { reason: 'expected a SOAP fault, got a regular SOAP message' });
  return fault;
}

/** The SOAP fault an envelope already parsed holds (see readSoapFault). @throws InvalidSoap when a fault has no faultcode or faultstring */
export function faultIn(envelope: XmlElement, bytes: Buffer): ReceivedSoapFault | undefined {
  if (envelope.namespace !== SOAP_ENV_NS || envelope.localName !== 'Envelope') return undefined;
  const body = child(envelope, SOAP_ENV_NS, 'Body');
  const fault = body ? childElements(body)[0] : undefined;
  if (!fault || fault.namespace !== SOAP_ENV_NS || fault.localName !== 'Fault') return undefined;
  // SOAP 1.1 writes the fault's own children unqualified.
  const field = (name: string) => childElements(fault).find((e) => e.localName === name && e.namespace === '');
  const code = field('faultcode');
  const string = field('faultstring');
  if (!code || !string) throw new XrdError('InvalidSoap', { reason: 'SOAP fault without faultcode or faultstring' });
  const actor = field('faultactor');
  const detail = field('detail');
  let detailText: string | undefined;
  if (detail) {
    // The reference reads the text of detail's first child: <faultDetail> in its own faults.
    const first = detail.children.find((n) => n.kind !== 'pi' && n.kind !== 'comment');
    detailText = first === undefined ? '' : first.kind === 'element' ? textOf(first) : first.kind === 'text' ? first.value : '';
    detailText = detailText.trim();
  }
  return {
    faultCode: textOf(code).trim(),
    faultString: textOf(string).trim(),
    ...(actor ? { faultActor: textOf(actor).trim() } : {}),
    ...(detailText !== undefined ? { detail: detailText } : {}),
    xml: bytes,
  };
}

export interface RestErrorResponse {
  readonly status: number;
  /** Lower-case names: content-type and x-road-error. */
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/**
 * The REST error an information system gets: 500 for `Server.*` codes (either spelling), 400 for
 * `Client.*` ones; XML when `accept` lists text/xml, application/xml or text/*, JSON otherwise.
 */
export function restError(fault: SoapFault, accept?: string): RestErrorResponse {
  const status = /^server\./i.test(fault.faultCode) ? 500 : 400;
  const detail = fault.detail ?? '';
  const xmlType = xmlTypeAccepted(accept);
  if (xmlType) {
    const xml =
      '<?xml version="1.0" encoding="UTF-8"?>\n<error>\n' +
      `  <type>${escapeXml(fault.faultCode)}</type>\n  <message>${escapeXml(fault.faultString)}</message>\n  <detail>${escapeXml(detail)}</detail>\n` +
      '</error>\n';
    return { status, headers: { 'content-type': `${xmlType}; charset=utf-8`, 'x-road-error': fault.faultCode }, body: Buffer.from(xml, 'utf8') };
  }
  const json = JSON.stringify({ type: fault.faultCode, message: fault.faultString, detail });
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', 'x-road-error': fault.faultCode }, body: Buffer.from(json, 'utf8') };
}

function xmlTypeAccepted(accept: string | undefined): string | undefined {
  if (!accept) return undefined;
  for (const item of accept.split(',')) {
    const type = item.split(';', 1)[0]!.trim().toLowerCase();
    if (type === 'text/xml' || type === 'application/xml') return type;
    if (type === 'text/*') return 'text/xml';
  }
  return undefined;
}

// XML 1.0 allows tab, LF, CR and U+0020 upwards except surrogates (unpaired here) and U+FFFE/U+FFFF.
// eslint-disable-next-line no-control-regex
const NOT_XML_CHAR = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Escapes text for element content; drops characters XML 1.0 cannot carry, as the reference does. */
export function escapeXml(text: string): string {
  return text.replace(NOT_XML_CHAR, '').replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}
