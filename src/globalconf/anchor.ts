/**
 * Configuration anchors (pr-gconf): where an instance's global configuration is downloaded from and
 * which certificates may sign it. A security server starts from its own instance's anchor.
 */
import { readFileSync } from 'node:fs';
import { XrdError } from '../platform/errors.ts';
import { certificateField } from './global-conf.ts';
import { children, optionalText, parseXml, requiredText } from './xml.ts';

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
  const generatedAt = optionalText(root, 'generatedAt');
  const sources = children(root, 'source').map((s) => ({
    downloadUrl: requiredText(s, 'downloadURL', file),
    verificationCerts: children(s, 'verificationCert').map((c) => certificateField(c.textContent ?? '', file)),
  }));
  if (sources.length === 0) throw new XrdError('MalformedGlobalConf', { file, reason: 'no <source>' });
  return { instanceIdentifier: requiredText(root, 'instanceIdentifier', file), generatedAt: generatedAt ? new Date(generatedAt) : undefined, sources };
}
