/**
 * Optional configuration parts the central server may add beside the parameters (the reference's
 * GlobalConfExtensions), each in our instance's folder: the OCSP fetch interval
 * (`fetchinterval-params.xml`, content FETCHINTERVAL), whether OCSP nextUpdate is checked
 * (`nextupdate-params.xml`, NEXTUPDATE) and the monitoring client (`monitoring-params.xml`,
 * MONITORING). Each is read as strictly as its schema: an unknown or missing element refuses the
 * part, and then the default applies, as in the reference.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { XrdError } from '../platform/errors.ts';
import type { ClientId } from '../protocol/identifiers.ts';
import { readText } from './directory.ts';
import { parseXml, type Element } from './xml.ts';

export interface Extensions {
  /** Seconds between OCSP fetches (default 1200, never below 60). */
  readonly ocspFetchIntervalSeconds: number;
  /** Whether an OCSP response's nextUpdate is checked (default true). */
  readonly verifyOcspNextUpdate: boolean;
  /** The client allowed to ask other security servers for monitoring data. */
  readonly monitoringClient?: ClientId;
}

export const EXTENSION_FILES = { fetchInterval: 'fetchinterval-params.xml', nextUpdate: 'nextupdate-params.xml', monitoring: 'monitoring-params.xml' } as const;
/** What applies when our instance has no such parts (the reference's defaults). */
export const DEFAULT_EXTENSIONS: Extensions = { ocspFetchIntervalSeconds: 1200, verifyOcspNextUpdate: true };
const MIN_FETCH_INTERVAL_SECONDS = 60;

/** @throws MalformedGlobalConf */
export function parseOcspFetchInterval(xml: string, file: string): number {
  const value = Number(onlyText(only(parseXml(xml, file), ['ocspFetchInterval'], file), file));
  if (!Number.isInteger(value)) throw malformed(file, 'ocspFetchInterval is not an integer');
  return value;
}

/** @throws MalformedGlobalConf */
export function parseOcspNextUpdate(xml: string, file: string): boolean {
  const value = onlyText(only(parseXml(xml, file), ['verifyNextUpdate'], file), file);
  if (value !== 'true' && value !== 'false') throw malformed(file, 'verifyNextUpdate is not true or false');
  return value === 'true';
}

/** @returns the monitoring client, or undefined when `<monitoringClient>` names none @throws MalformedGlobalConf */
export function parseMonitoringParameters(xml: string, file: string): ClientId | undefined {
  const client = only(parseXml(xml, file), ['monitoringClient'], file);
  if (elements(client).length === 0) return undefined;
  const id = only(client, ['monitoringClientId'], file);
  const parts = elements(id);
  const names = parts.map((e) => e.localName ?? '');
  const allowed = ['xRoadInstance', 'memberClass', 'memberCode', 'subsystemCode'];
  if (names.some((n) => !allowed.includes(n)) || names.slice(0, 3).join() !== allowed.slice(0, 3).join() || names.length > 4) {
    throw malformed(file, `monitoringClientId has elements ${names.join(', ')}`);
  }
  const text = (i: number) => parts[i]?.textContent?.trim() ?? '';
  return { instance: text(0), memberClass: text(1), memberCode: text(2), ...(parts[3] ? { subsystem: text(3) } : {}) };
}

/** The extensions our instance's folder holds; a missing or refused part gives its default. */
export function readExtensions(instanceDir: string): { extensions: Extensions; skipped: { file: string; error: XrdError }[] } {
  const skipped: { file: string; error: XrdError }[] = [];
  const read = <T>(name: string, parse: (xml: string, file: string) => T): T | undefined => {
    const file = join(instanceDir, name);
    if (!existsSync(file)) return undefined;
    try {
      return parse(readText(file), file);
    } catch (err) {
      skipped.push({ file, error: err as XrdError });
      return undefined;
    }
  };
  const interval = read(EXTENSION_FILES.fetchInterval, parseOcspFetchInterval);
  const monitoringClient = read(EXTENSION_FILES.monitoring, parseMonitoringParameters);
  return {
    extensions: {
      ocspFetchIntervalSeconds: Math.max(MIN_FETCH_INTERVAL_SECONDS, interval ?? DEFAULT_EXTENSIONS.ocspFetchIntervalSeconds),
      verifyOcspNextUpdate: read(EXTENSION_FILES.nextUpdate, parseOcspNextUpdate) ?? DEFAULT_EXTENSIONS.verifyOcspNextUpdate,
      ...(monitoringClient ? { monitoringClient } : {}),
    },
    skipped,
  };
}

function elements(el: Element): Element[] {
  const out: Element[] = [];
  for (let n = el.firstChild; n; n = n.nextSibling) if (n.nodeType === 1) out.push(n as Element);
  return out;
}

/** The one child element of `el`, which must have one of `names`. */
function only(el: Element, names: readonly string[], file: string): Element {
  const found = elements(el);
  if (found.length !== 1 || !names.includes(found[0]!.localName ?? '')) throw malformed(file, `<${el.localName}> must hold exactly <${names.join('|')}>, holds ${found.map((e) => `<${e.localName}>`).join('') || 'nothing'}`);
  return found[0]!;
}

function onlyText(el: Element, file: string): string {
  if (elements(el).length) throw malformed(file, `<${el.localName}> must hold text only`);
  return el.textContent?.trim() ?? '';
}

function malformed(file: string, reason: string): XrdError {
  return new XrdError('MalformedGlobalConf', { file, reason });
}
