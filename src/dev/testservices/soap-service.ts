/**
 * The SOAP side of the test services: the `getRandom` and `helloService` operations of the
 * reference's example adapter (namespace http://test.x-road.fi/producer), answered in its
 * request/response wrapper style, each response carrying the request's X-Road header.
 *
 * Why the header is copied: an X-Road provider must answer with the header it was sent (client,
 * service, id, userId, issue, protocolVersion and extensions such as repr:representedParty); the
 * client's security server compares client, service, id, userId, issue and representedParty of
 * request and response and refuses a response where one differs. The header is copied as its
 * inclusive canonical form, which declares on the copy every namespace in scope where it stood in
 * the request, so it means exactly what it meant there wherever it is placed.
 *
 * Parsing goes through xml-tree, which refuses DTDs: no entity of a caller's is ever expanded.
 */
import { randomInt } from 'node:crypto';
import { canonicalize } from '../../xml/c14n.ts';
import { child, childElements, parseXml, textOf, type XmlElement } from '../../xml/xml-tree.ts';

export const SOAP_ENV_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
export const XROAD_NS = 'http://x-road.eu/xsd/xroad.xsd';
/** Namespace of the example adapter's operations and of their responses. */
export const PRODUCER_NS = 'http://test.x-road.fi/producer';
export const GREETING_SUFFIX = '! Greetings from adapter server!';
/** The reference's REST test service refuses longer names; the SOAP operation follows the same rule. */
export const MAX_NAME_LENGTH = 256;

export interface SoapAnswer {
  /** 200 for a response, 500 for a fault (SOAP 1.1 §6.2). */
  readonly status: number;
  readonly xml: string;
  /** Set on faults: `Client` (the request is at fault) or `Server`. */
  readonly faultCode?: 'Client' | 'Server';
  readonly operation?: string;
}

/** The greeting both the SOAP and the REST hello operations give. */
export function greeting(name: string): string {
  return `Hello${name.trim() === '' ? '' : ` ${name}`}${GREETING_SUFFIX}`;
}

/** A number in 0..100, as the reference's getRandom and rest-test/random give. */
export function randomNumber(): number {
  return randomInt(0, 101);
}

/** Answers one SOAP request body. Never throws: every problem becomes a SOAP fault. */
export function answerSoap(body: Buffer | string): SoapAnswer {
  let envelope: XmlElement;
  try {
    envelope = parseXml(body);
  } catch (err) {
    return fault('Client', `Malformed SOAP message: ${(err as Error).message}`);
  }
  if (envelope.localName !== 'Envelope' || envelope.namespace !== SOAP_ENV_NS) {
    return fault('Client', `Malformed SOAP message: the root element is not a SOAP 1.1 Envelope (${envelope.namespace} ${envelope.localName})`);
  }
  const header = child(envelope, SOAP_ENV_NS, 'Header');
  const soapBody = child(envelope, SOAP_ENV_NS, 'Body');
  if (!header || !soapBody) return fault('Client', 'Malformed SOAP message: the envelope must have a Header and a Body', envelope.prefix);
  if (!child(header, XROAD_NS, 'client') || !child(header, XROAD_NS, 'service')) {
    return fault('Client', 'Malformed SOAP message: the X-Road header has no client or service', envelope.prefix);
  }
  const operation = childElements(soapBody)[0];
  if (!operation) return fault('Client', 'Malformed SOAP message: the Body is empty', envelope.prefix);
  if (operation.namespace !== PRODUCER_NS || (operation.localName !== 'getRandom' && operation.localName !== 'helloService')) {
    const ns = operation.namespace === '' ? '' : `{${operation.namespace}}`;
    return fault('Client', `Unknown operation ${ns}${operation.localName}: this service offers {${PRODUCER_NS}}getRandom and helloService`, envelope.prefix);
  }

  const input = requestInput(operation);
  let output: string;
  if (operation.localName === 'getRandom') {
    output = `<ts1:data>${randomNumber()}</ts1:data>`;
  } else {
    const nameElement = input.find((e) => e.localName === 'name');
    if (!nameElement) return fault('Client', 'helloService: the request has no name element', envelope.prefix, 'helloService');
    const name = textOf(nameElement);
    if (name.length > MAX_NAME_LENGTH) {
      return fault('Client', `helloService: Name is too long. Max length is ${MAX_NAME_LENGTH} characters.`, envelope.prefix, 'helloService');
    }
    output = `<ts1:message>${escapeText(greeting(name))}</ts1:message>`;
  }

  const p = envelope.prefix === '' ? '' : `${envelope.prefix}:`;
  const xmlns = envelope.prefix === '' ? 'xmlns' : `xmlns:${envelope.prefix}`;
  const echoed = input.map((e) => canonicalize(e)).join('');
  const responseName = `ts1:${operation.localName}Response`;
  const xml =
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<${p}Envelope ${xmlns}="${SOAP_ENV_NS}">` +
    canonicalize(header) +
    `<${p}Body><${responseName} xmlns:ts1="${PRODUCER_NS}">` +
    (echoed === '' ? '<ts1:request/>' : `<ts1:request>${echoed}</ts1:request>`) +
    `<ts1:response>${output}</ts1:response></${responseName}></${p}Body></${p}Envelope>`;
  return { status: 200, xml, operation: operation.localName };
}

/**
 * The operation's input elements. Requests come in two styles: parameters directly under the
 * operation element (X-Road 6.4 and later), or inside a `request` wrapper (older X-Road 6).
 */
function requestInput(operation: XmlElement): XmlElement[] {
  const children = childElements(operation);
  if (children.length === 1 && children[0]!.localName === 'request') return childElements(children[0]!);
  return children;
}

/** A SOAP 1.1 fault. `prefix` is the request's envelope prefix when there was one to follow. */
export function fault(code: 'Client' | 'Server', faultString: string, prefix = 'SOAP-ENV', operation?: string): SoapAnswer {
  const p = prefix === '' ? 'SOAP-ENV' : prefix;
  const xml =
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<${p}:Envelope xmlns:${p}="${SOAP_ENV_NS}"><${p}:Body><${p}:Fault>` +
    `<faultcode>${p}:${code}</faultcode><faultstring>${escapeText(faultString)}</faultstring>` +
    `</${p}:Fault></${p}:Body></${p}:Envelope>`;
  return { status: 500, xml, faultCode: code, operation };
}

function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
