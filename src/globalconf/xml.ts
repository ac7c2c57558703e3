/**
 * Just enough DOM for configuration files: namespace-aware parsing with @xmldom/xmldom, lookups of
 * child elements by local name, and certificate fields as configuration files hold them.
 * Configuration files are small and read rarely; no speed needed.
 */
import { DOMParser, type Element } from '@xmldom/xmldom';
import { XrdError } from '../platform/errors.ts';

export type { Element };

/** @throws MalformedGlobalConf */
export function parseXml(text: string, file: string): Element {
  try {
    const doc = new DOMParser({
      onError: (level, message) => {
        if (level !== 'warning') throw new XrdError('MalformedGlobalConf', { file, reason: message });
      },
    }).parseFromString(text, 'text/xml');
    if (!doc.documentElement) throw new XrdError('MalformedGlobalConf', { file, reason: 'no root element' });
    return doc.documentElement;
  } catch (err) {
    if (err instanceof XrdError) throw err;
    throw new XrdError('MalformedGlobalConf', { file, reason: (err as Error).message }, { cause: err });
  }
}

export function children(parent: Element, localName: string): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).localName === localName) out.push(n as Element);
  }
  return out;
}

export function child(parent: Element, localName: string): Element | undefined {
  return children(parent, localName)[0];
}

/** Text of a required child element. @throws MalformedGlobalConf */
export function requiredText(parent: Element, localName: string, file: string): string {
  const el = child(parent, localName);
  const value = el?.textContent?.trim();
  if (!value) throw new XrdError('MalformedGlobalConf', { file, reason: `<${parent.localName}> lacks <${localName}>` });
  return value;
}

export function optionalText(parent: Element, localName: string): string | undefined {
  return child(parent, localName)?.textContent?.trim() || undefined;
}

/**
 * A certificate field: base64 of DER — or, in some configurations the reference produces, base64
 * of PEM text (facts §7). Either way the DER comes back.
 * @throws MalformedGlobalConf
 */
export function certificateField(base64: string, file: string): Buffer {
  const bytes = Buffer.from(base64.replace(/\s+/g, ''), 'base64');
  if (bytes.subarray(0, 11).toString('latin1') !== '-----BEGIN ') return bytes;
  const pem = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(bytes.toString('latin1'));
  if (!pem) throw new XrdError('MalformedGlobalConf', { file, reason: 'certificate field holds PEM text without a certificate' });
  return Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64');
}
