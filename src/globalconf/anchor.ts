/**
 * Configuration anchors (pr-gconf §2.2, Annex E): where an instance's global configuration is
 * downloaded from and which certificates may sign it. A security server starts from its own
 * instance's anchor; its private parameters carry the same element for each federated instance.
 */
import { readFileSync } from 'node:fs';
import { XrdError } from '../platform/errors.ts';
import { XmlError, parseXml as parseBounded } from '../xml/xml-tree.ts';
import { certificateField, children, optionalText, parseXml, requiredText, type Element } from './xml.ts';

export interface ConfigurationSource {
  readonly downloadUrl: string;
  /** DER certificates whose keys may sign the configuration directory. */
  readonly verificationCerts: readonly Buffer[];
}

export interface ConfigurationAnchor {
  readonly instanceIdentifier: string;
  readonly generatedAt?: Date;
  readonly sources: readonly ConfigurationSource[];
}

/** @throws MalformedGlobalConf */
export function loadConfigurationAnchor(file: string): ConfigurationAnchor {
  let xml: string;
  try {
    xml = readFileSync(file, 'utf8');
  } catch (err) {
    throw new XrdError('MalformedGlobalConf', { file, reason: (err as Error).message }, { cause: err });
  }
  const root = parseXml(xml, file);
  if (root.localName !== 'configurationAnchor') throw new XrdError('MalformedGlobalConf', { file, reason: `root element is <${root.localName}>, not <configurationAnchor>` });
  return anchorElement(root, file);
}

/** An anchor file's root, or a `<configurationAnchor>` of private parameters. @throws MalformedGlobalConf */
export function anchorElement(el: Element, file: string): ConfigurationAnchor {
  const generatedAt = optionalText(el, 'generatedAt');
  const sources = children(el, 'source').map((s) => ({
    downloadUrl: requiredText(s, 'downloadURL', file),
    verificationCerts: children(s, 'verificationCert').map((c) => certificateField(c.textContent ?? '', file)),
  }));
  if (sources.length === 0) throw new XrdError('MalformedGlobalConf', { file, reason: 'no <source>' });
  return { instanceIdentifier: requiredText(el, 'instanceIdentifier', file), generatedAt: generatedAt ? new Date(generatedAt) : undefined, sources };
}

/** An anchor is a few certificates and URLs (the reference's are under 10 KiB); more is not an anchor. */
export const ANCHOR_MAX_BYTES = 1024 * 1024;

/**
 * An anchor an administrator uploads (untrusted): bounded — its size, then the bounded,
 * DTD-refusing parser (depth, nodes) — before the configuration reader looks at it.
 * @throws MalformedAnchor
 */
export function parseUploadedAnchor(bytes: Buffer): ConfigurationAnchor {
  const malformed = (reason: string, cause?: unknown) => new XrdError('MalformedAnchor', { reason, referenceCode: 'malformed_anchor' }, { cause });
  if (bytes.length > ANCHOR_MAX_BYTES) throw malformed(`larger than ${ANCHOR_MAX_BYTES} bytes`);
  try {
    parseBounded(bytes, { limits: { maxLength: ANCHOR_MAX_BYTES, maxDepth: 16, maxNodes: 10_000 } });
  } catch (err) {
    if (err instanceof XmlError) throw malformed(err.message, err);
    throw err;
  }
  try {
    const root = parseXml(bytes.toString('utf8'), 'the uploaded anchor');
    if (root.localName !== 'configurationAnchor') throw malformed(`root element is <${root.localName}>, not <configurationAnchor>`);
    return anchorElement(root, 'the uploaded anchor');
  } catch (err) {
    if (err instanceof XrdError && err.code === 'MalformedGlobalConf') throw malformed(String(err.details.reason), err);
    throw err;
  }
}
