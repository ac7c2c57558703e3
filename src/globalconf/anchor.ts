/**
 * Configuration anchors (pr-gconf §2.2, Annex E): where an instance's global configuration is
 * downloaded from and which certificates may sign it. A security server starts from its own
 * instance's anchor; its private parameters carry the same element for each federated instance.
 */
import { readFileSync } from 'node:fs';
import { XrdError } from '../platform/errors.ts';
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
