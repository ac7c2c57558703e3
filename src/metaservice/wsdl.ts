/**
 * The WSDL a getWsdl answer carries: the provider's own, with every `soap:address/@location`
 * replaced so callers never learn where the provider's information system listens (the
 * reference's MetadataServiceHandlerImpl.modifyWsdl with OverwriteAttributeFilter). Everything
 * else keeps its meaning — elements, attributes, namespaces, text and comments; like the
 * reference, which writes the document out again through a SAX serializer, the bytes may differ
 * (here: the canonical form, C14N with comments, after an XML declaration).
 */
import { XrdError } from '../platform/errors.ts';
import { canonicalizeDocument } from '../xml/c14n.ts';
import { parseXmlDocument, type XmlAttribute, type XmlElement } from '../xml/xml-tree.ts';

/** What the reference writes into soap:address (MetadataServiceHandlerImpl.WSDL_ENDPOINT_ADDRESS). */
export const WSDL_ENDPOINT_ADDRESS = 'http://example.org/xroad-endpoint';

const WSDL_SOAP_NS = 'http://schemas.xmlsoap.org/wsdl/soap/';

/**
 * @param maxBytes the largest WSDL read (the parser's length bound)
 * @throws InternalError when the WSDL is not well-formed XML (the reference's systemException)
 */
export function overwriteSoapAddress(wsdl: Buffer, location: string = WSDL_ENDPOINT_ADDRESS, maxBytes = wsdl.length): Buffer {
  let doc;
  try {
    doc = parseXmlDocument(wsdl, { limits: { maxLength: maxBytes } });
  } catch (err) {
    throw new XrdError('InternalError', { reason: `the service's WSDL cannot be read: ${(err as Error).message}` }, { cause: err });
  }
  overwrite(doc.root, location);
  return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>${canonicalizeDocument(doc, { exclusive: false, comments: true })}`, 'utf8');
}

function overwrite(element: XmlElement, location: string): void {
  if (element.namespace === WSDL_SOAP_NS && element.localName === 'address') {
    for (const a of element.attributes) {
      // Only the unqualified `location` (QName(null, "location") in the reference). The tree was
      // parsed for this call alone, so changing it in place touches nothing else.
      if (a.namespace === '' && a.localName === 'location') (a as { -readonly [K in keyof XmlAttribute]: XmlAttribute[K] }).value = location;
    }
  }
  for (const node of element.children) if (node.kind === 'element') overwrite(node, location);
}
