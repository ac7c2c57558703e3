/**
 * Reading service descriptions as the reference's security server admin does (WsdlParser,
 * OpenApiParser): what a WSDL or OpenAPI 3 document describes, the service codes a description may
 * not use, and fetching a description's URL. The checks against the client's other descriptions and
 * what a refresh adds and removes are changes.ts's. docs/services.md says how an administrator sees it.
 *
 * WSDL is read with our own bounded XML parser (src/xml), which refuses DTDs, so no entity is
 * expanded and nothing outside the document is read (as the reference, which does not follow
 * imports either). YAML and JSON are read with the `yaml` package (already a dependency; JSON is
 * YAML): its token stream is built without recursion and checked for depth before the document is
 * composed, because composing recurses and a deeply nested document would otherwise exhaust the
 * stack (measured: 10 000 nested brackets abort Node).
 */
import { Composer, Parser, isMap, isScalar, type Document } from 'yaml';
import { fetchBounded } from '../platform/http-client.ts';
import { XrdError } from '../platform/errors.ts';
import { XmlError, XmlLimitError, attribute, childElements, lookupNamespace, parseXml, type XmlElement } from '../xml/xml-tree.ts';
import type { ParsedWsdlService } from './changes.ts';
import { resolveUri } from './java-uri.ts';

/** The reference's MAX_DESCRIPTION_SIZE for WSDL and OpenAPI documents. */
export const MAX_DESCRIPTION_BYTES = 10 * 1024 * 1024;
/** The reference's connect timeout for OpenAPI documents (HttpUrlConnectionConfig); used for WSDL too, which it leaves unbounded. */
export const DESCRIPTION_CONNECT_TIMEOUT_MS = 30_000;
/**
 * The whole fetch. The reference bounds each read at 30 s (OpenAPI only) and nothing else; a deadline
 * for the whole answer is what stops a trickling server (src/platform/http-client.ts).
 */
export const DESCRIPTION_DEADLINE_MS = 60_000;
/** Collection nesting accepted in an OpenAPI document: far beyond real schemas, far below the stack's limit. */
export const MAX_OPENAPI_DEPTH = 128;
/** The reference's default proxy-ui-api.reserved-service-codes: the metaservices' codes. */
export const RESERVED_SERVICE_CODES: readonly string[] = ['listClients', 'listMethods', 'allowedMethods', 'getWsdl', 'getOpenAPI', 'getSecurityServerMetrics', 'getSecurityServerOperationalData', 'getSecurityServerHealthData'];

/** What an OpenAPI 3 document describes (the reference's OpenApiParser.Result). */
export interface OpenApiDescription {
  /** servers[0].url, resolved against the description's URL unless it holds a `{variable}`. */
  readonly baseUrl: string;
  /** Each operation as method (capitals) and path, `{parameter}` segments as `*`, each once. */
  readonly endpoints: readonly { readonly method: string; readonly path: string }[];
  /** What the reference's parser reports without refusing; the administrator must accept them. */
  readonly warnings: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// WSDL

const WSDL_NS = 'http://schemas.xmlsoap.org/wsdl/';
const SOAP_NS = 'http://schemas.xmlsoap.org/wsdl/soap/';
const SOAP12_NS = 'http://schemas.xmlsoap.org/wsdl/soap12/';
const SOAP_HTTP_TRANSPORT = 'http://schemas.xmlsoap.org/soap/http';

function invalidWsdl(reason: string, cause?: unknown): XrdError {
  return new XrdError('InvalidWsdl', { reason }, { cause });
}

/** A QName attribute (`tns:binding`) as `{namespace}local`, its prefix resolved where it is written. */
function qnameKey(element: XmlElement, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const colon = value.indexOf(':');
  const prefix = colon === -1 ? '' : value.slice(0, colon);
  const ns = lookupNamespace(element, prefix);
  if (ns === undefined) throw invalidWsdl(`prefix "${prefix}" of "${value}" is not declared`);
  return `{${ns}}${value.slice(colon + 1)}`;
}

function wsdlChildren(parent: XmlElement, localName: string): XmlElement[] {
  return childElements(parent).filter((e) => e.namespace === WSDL_NS && e.localName === localName);
}

/** Extensibility elements: the children in another namespace than WSDL's. */
function extensions(parent: XmlElement): XmlElement[] {
  return childElements(parent).filter((e) => e.namespace !== WSDL_NS);
}

/** The reference's getValue: its first child's value, trimmed (a DOM element child has none). */
function firstChildValue(element: XmlElement): string | undefined {
  const first = element.children[0];
  if (!first || first.kind === 'element') return undefined;
  return (first.kind === 'pi' ? first.data : first.value).trim();
}

/**
 * The services a WSDL describes, as the reference's WsdlParser reads them (WSDL4J, imports not
 * followed): for each port of each service whose binding is SOAP (1.1 or 1.2) over HTTP, each
 * binding operation is a service; a code and version met twice is one service (the last). A WSDL
 * with no such port describes no services, and the reference accepts it so.
 * @throws InvalidWsdl (not XML, a DTD, over MAX_DESCRIPTION_BYTES or the XML bounds, not a WSDL
 *   definitions element, an undeclared prefix, a binding operation that two port type operations
 *   answer — WSDL4J's "Duplicate operation")
 */
export function parseWsdl(document: Buffer): ParsedWsdlService[] {
  if (document.length > MAX_DESCRIPTION_BYTES) throw invalidWsdl(`size exceeds ${MAX_DESCRIPTION_BYTES} bytes`);
  let root: XmlElement;
  try {
    root = parseXml(document, { limits: { maxLength: MAX_DESCRIPTION_BYTES } });
  } catch (err) {
    if (err instanceof XmlLimitError || err instanceof XmlError) throw invalidWsdl(err.message, err);
    throw err;
  }
  if (root.namespace !== WSDL_NS || root.localName !== 'definitions') {
    throw invalidWsdl(`expected element '{${WSDL_NS}}definitions', found '{${root.namespace}}${root.localName}'`);
  }
  const targetNamespace = attribute(root, 'targetNamespace') ?? '';
  const byName = (localName: string) => new Map(wsdlChildren(root, localName).map((e) => [`{${targetNamespace}}${attribute(e, 'name') ?? ''}`, e]));
  const portTypes = byName('portType');
  const bindings = byName('binding');

  // WSDL4J resolves every binding operation to its port type operation as it reads the document,
  // and refuses one that two operations answer; the title comes from the one found.
  const titles = new Map<XmlElement, string | undefined>();
  for (const binding of bindings.values()) {
    const portType = portTypes.get(qnameKey(binding, attribute(binding, 'type')) ?? '');
    if (!portType) continue;
    for (const op of wsdlChildren(binding, 'operation')) titles.set(op, titleOf(portType, op));
  }

  const result = new Map<string, ParsedWsdlService>();
  for (const service of wsdlChildren(root, 'service')) {
    for (const port of wsdlChildren(service, 'port')) {
      const binding = bindings.get(qnameKey(port, attribute(port, 'binding')) ?? '');
      if (!binding || !isSoapOverHttp(binding)) continue;
      const address = extensions(port).find((e) => (e.namespace === SOAP_NS || e.namespace === SOAP12_NS) && e.localName === 'address');
      const url = (address && attribute(address, 'location')) ?? '';
      for (const op of wsdlChildren(binding, 'operation')) {
        const code = attribute(op, 'name') ?? '';
        const versionElement = extensions(op).find((e) => e.localName === 'version');
        const version = (versionElement && firstChildValue(versionElement)) || undefined;
        const title = titles.get(op);
        // Map order is first appearance, the value the last one (the reference keeps a HashMap).
        result.set(`${code}\u0000${version ?? ''}`, { code, ...(version !== undefined && { version }), ...(title !== undefined && { title }), url });
      }
    }
  }
  return [...result.values()];
}

function isSoapOverHttp(binding: XmlElement): boolean {
  const soapBinding = extensions(binding).find((e) => (e.namespace === SOAP_NS || e.namespace === SOAP12_NS) && e.localName === 'binding');
  return soapBinding !== undefined && attribute(soapBinding, 'transport') === SOAP_HTTP_TRANSPORT;
}

function ioName(op: XmlElement, which: 'input' | 'output'): string | undefined {
  const io = wsdlChildren(op, which)[0];
  return io && attribute(io, 'name');
}

/**
 * The title in the documentation of the port type operation a binding operation implements, found as
 * WSDL4J's PortType.getOperation finds it: by name, and by input and output name where the binding
 * gives them (an operation without one matches its default name: the operation's name, or with
 * "Request" / "Response").
 * @throws InvalidWsdl when two operations match ("Duplicate operation")
 */
function titleOf(portType: XmlElement, bindingOp: XmlElement): string | undefined {
  const name = attribute(bindingOp, 'name');
  const fits = (op: XmlElement, which: 'input' | 'output', suffix: string) => {
    const wanted = ioName(bindingOp, which);
    if (wanted === undefined) return true;
    if (wsdlChildren(op, which).length === 0) return false;
    const own = ioName(op, which);
    return own === undefined ? wanted === name || wanted === `${name}${suffix}` || wanted === ':none' : own === wanted;
  };
  const matches = wsdlChildren(portType, 'operation').filter((o) => attribute(o, 'name') === name && fits(o, 'input', 'Request') && fits(o, 'output', 'Response'));
  if (matches.length > 1) {
    throw invalidWsdl(`WSDL violates specification: Duplicate operation with name=${name}, found in portType '${attribute(portType, 'name')}'.`);
  }
  const documentation = matches[0] && wsdlChildren(matches[0], 'documentation')[0];
  const title = documentation && childElements(documentation).find((e) => e.localName === 'title');
  return title && firstChildValue(title);
}

// ---------------------------------------------------------------------------------------------
// OpenAPI 3

/** PathItem.readOperationsMap's order in the reference's parser (swagger-parser). */
const OPERATIONS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function openApiError(url: string | undefined, reason: string, cause?: unknown): XrdError {
  return new XrdError('OpenapiParsingError', { url: url ?? '(uploaded file)', reason }, { cause });
}

/** How deep the CST's collections nest, counted without recursion. */
function cstDepth(tokens: readonly unknown[]): number {
  let max = 0;
  const stack: [unknown, number][] = tokens.map((t) => [t, 0]);
  while (stack.length > 0) {
    const [token, depth] = stack.pop()!;
    if (!token || typeof token !== 'object') continue;
    const t = token as { type?: string; value?: unknown; key?: unknown; items?: { key?: unknown; value?: unknown }[] };
    const inner = t.type === 'block-map' || t.type === 'block-seq' || t.type === 'flow-collection' ? depth + 1 : depth;
    max = Math.max(max, inner);
    if (max > MAX_OPENAPI_DEPTH) return max;
    if (t.value) stack.push([t.value, inner]);
    if (t.key) stack.push([t.key, inner]);
    for (const item of t.items ?? []) {
      if (item.key) stack.push([item.key, inner]);
      if (item.value) stack.push([item.value, inner]);
    }
  }
  return max;
}

function composeFirst(text: string, url: string | undefined): Document.Parsed {
  const tokens = [...new Parser().parse(text)];
  if (cstDepth(tokens) > MAX_OPENAPI_DEPTH) throw openApiError(url, `nested deeper than ${MAX_OPENAPI_DEPTH} levels`);
  // Repeated keys are accepted, the last one counting, as the reference's Jackson reader does.
  const doc = [...new Composer({ uniqueKeys: false }).compose(tokens, true)][0];
  if (!doc) throw openApiError(url, 'empty document');
  if (doc.errors.length > 0) throw openApiError(url, doc.errors[0]!.message, doc.errors[0]);
  return doc;
}

/** `openapi` as written: an unquoted `3.0` is the text "3.0", as the reference's reader gives it. */
function versionText(doc: Document.Parsed): string | undefined {
  const node = doc.get('openapi', true);
  if (node === undefined || node === null) return undefined;
  if (!isScalar(node)) return undefined;
  return typeof node.value === 'number' && node.source !== undefined ? String(node.source) : String(node.value);
}

/**
 * What an OpenAPI 3 document describes, as the reference's OpenApiParser reads it: YAML or JSON;
 * `openapi` 3.0.x or exactly 3.1.0; the base URL from servers[0].url ("/" when there are no servers,
 * "" when the first has no URL) resolved against `descriptionUrl` when it is known and the URL holds
 * no `{`; each path's operations with `{…}` segments made `*`. A document without paths describes
 * no endpoints (a warning, as the reference's parser gives).
 * @throws OpenapiParsingError (over MAX_DESCRIPTION_BYTES, not YAML/JSON, nested deeper than
 *   MAX_OPENAPI_DEPTH, too many aliases, not an object), UnsupportedOpenapiVersion
 */
export function parseOpenApi(document: Buffer, descriptionUrl?: string): OpenApiDescription {
  if (document.length > MAX_DESCRIPTION_BYTES) throw openApiError(descriptionUrl, `size exceeds ${MAX_DESCRIPTION_BYTES} bytes`);
  const doc = composeFirst(document.toString('utf8'), descriptionUrl);
  if (!isMap(doc.contents)) throw openApiError(descriptionUrl, 'the document is not an object');
  const version = versionText(doc);
  if (version === undefined || !(version.startsWith('3.0') || version === '3.1.0')) throw new XrdError('UnsupportedOpenapiVersion', { version: version ?? '(none)' });

  let root: Record<string, unknown>;
  try {
    root = doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown>;
  } catch (err) {
    throw openApiError(descriptionUrl, err instanceof Error ? err.message : String(err), err);
  }
  const warnings: string[] = [];
  if (!isObject(root.info)) warnings.push('attribute info is missing');

  let serverUrl = '/';
  if (Array.isArray(root.servers) && root.servers.length > 0) {
    root.servers.forEach((server, i) => {
      if (isObject(server) && server.url !== undefined && server.url !== null && typeof server.url !== 'string') warnings.push(`attribute servers[${i}].url is not of type \`string\``);
      else if (!isObject(server) || typeof server.url !== 'string') warnings.push(`attribute servers[${i}].url is missing`);
    });
    const first: unknown = root.servers[0];
    serverUrl = isObject(first) && typeof first.url === 'string' ? first.url : '';
  }
  const baseUrl = descriptionUrl !== undefined && !serverUrl.includes('{') ? resolveUri(descriptionUrl, serverUrl) : serverUrl;

  const endpoints = new Map<string, { method: string; path: string }>();
  if (!isObject(root.paths)) warnings.push('attribute paths is missing');
  else {
    for (const [path, item] of Object.entries(root.paths)) {
      if (!isObject(item)) continue;
      for (const op of OPERATIONS) {
        if (!isObject(item[op])) continue;
        const endpoint = { method: op.toUpperCase(), path: path.replace(/\{[^/]*\}/g, '*') };
        endpoints.set(`${endpoint.method} ${endpoint.path}`, endpoint);
      }
    }
  }
  return { baseUrl, endpoints: [...endpoints.values()], warnings };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// URLs and the checks made when adding

/** @throws ServiceCodeReserved */
export function checkServiceCodeNotReserved(code: string, reserved: readonly string[] = RESERVED_SERVICE_CODES): void {
  if (reserved.includes(code)) throw new XrdError('ServiceCodeReserved', { code });
}

// ---------------------------------------------------------------------------------------------
// Fetching

/**
 * Reads a description from its URL as the reference does: http or https, any server certificate
 * accepted, the server's internal TLS key presented when the server asks (`clientTls`), at most
 * MAX_DESCRIPTION_BYTES, an HTTP error status refused. No redirect is followed.
 * @throws WsdlDownloadFailed or InvalidWsdl (too large) for WSDL; OpenapiParsingError for OpenAPI
 */
export async function fetchDescription(url: string, kind: 'WSDL' | 'OPENAPI3', clientTls?: { readonly cert: string | Buffer; readonly key: string | Buffer }): Promise<Buffer> {
  const fail = (reason: string, cause?: unknown, tooLarge = false): XrdError => {
    if (kind === 'OPENAPI3') return openApiError(url, `Error reading OpenAPI description: ${reason}`, cause);
    return tooLarge ? invalidWsdl(reason, cause) : new XrdError('WsdlDownloadFailed', { url, reason }, { cause });
  };
  if (!url.startsWith('http://') && !url.startsWith('https://')) throw fail(`Invalid protocol: ${url.split(':')[0]}`);
  let answer;
  try {
    // The client certificate is for an https URL; over plain HTTP there is no TLS to present it in.
    const tls = clientTls && url.startsWith('https://') ? { trustAnyServerCert: true, clientTls } : { trustAnyServerCert: true };
    answer = await fetchBounded(url, { maxBytes: MAX_DESCRIPTION_BYTES, deadlineMs: DESCRIPTION_DEADLINE_MS, connectTimeoutMs: DESCRIPTION_CONNECT_TIMEOUT_MS, ...tls });
  } catch (err) {
    const tooLarge = err instanceof XrdError && err.code === 'ResponseTooLarge';
    const reason = tooLarge ? `Size exceeds ${MAX_DESCRIPTION_BYTES} bytes.` : err instanceof Error ? err.message : String(err);
    throw fail(reason, err, tooLarge);
  }
  if (answer.status >= 400) throw fail(`Received HTTP error: ${answer.status}`);
  return answer.body;
}

