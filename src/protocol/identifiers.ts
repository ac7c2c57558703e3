/**
 * X-Road identifiers (facts §1): members, subsystems and security servers, written
 * `INSTANCE/CLASS/CODE[/SUBSYSTEM]` and `INSTANCE/CLASS/CODE/SERVERCODE`.
 */
import { XrdError } from '../platform/errors.ts';

export interface ClientId {
  readonly instance: string;
  readonly memberClass: string;
  readonly memberCode: string;
  readonly subsystem?: string;
}

export interface SecurityServerId {
  readonly instance: string;
  readonly memberClass: string;
  readonly memberCode: string;
  readonly serverCode: string;
}

/** The longest identifier part the reference's central server accepts. */
const MAX_PART_LENGTH = 255;

// As the reference's ManagementRequestVerificationUtils and EncodedIdentifierValidator refuse them:
// control characters, the separators of encoded ids and REST paths, two invisible characters.
// eslint-disable-next-line no-control-regex
const FORBIDDEN_CHARACTER = /[\u0000-\u001f\u007f-\u009f:;%/\\\ufeff\u200b]/;
/** Whitespace other than the space, which the reference allows inside a part (NBSP, U+2028, …). */
const OTHER_WHITESPACE = /(?! )\s/;

/**
 * Why `part` cannot be one part of an X-Road identifier (instance, member class, member code,
 * subsystem code, server code, …), or undefined when it can. Refused: an empty part, more than 255
 * characters, a control character, any of `/ \ : ; %`, U+FEFF and U+200B (as the reference), and
 * beyond it any whitespace but a space between other characters (no leading or trailing space, no
 * no-break space). The reason names the character and does not repeat the part.
 */
export function identifierPartProblem(part: string): string | undefined {
  if (part.trim() === '') return 'is empty or blank';
  if (part.length > MAX_PART_LENGTH) return `is longer than ${MAX_PART_LENGTH} characters`;
  const bad = FORBIDDEN_CHARACTER.exec(part) ?? OTHER_WHITESPACE.exec(part);
  if (bad) return `holds ${/[!-~]/.test(bad[0]) ? `"${bad[0]}"` : `U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`}`;
  if (part.trim() !== part) return 'begins or ends with a space';
  return undefined;
}

function parts(value: string, min: number, max: number, what: string): string[] {
  const p = value.split('/');
  if (p.length < min || p.length > max) throw new XrdError('InvalidIdentifier', { value, reason: `expected ${what}` });
  p.forEach((part, i) => {
    const problem = identifierPartProblem(part);
    if (problem) throw new XrdError('InvalidIdentifier', { value, reason: `expected ${what}: part ${i + 1} ${problem}` });
  });
  return p;
}

/** @throws InvalidIdentifier */
export function parseClientId(value: string): ClientId {
  const [instance, memberClass, memberCode, subsystem] = parts(value, 3, 4, 'INSTANCE/CLASS/CODE[/SUBSYSTEM]');
  return { instance: instance!, memberClass: memberClass!, memberCode: memberCode!, subsystem };
}

/** @throws InvalidIdentifier */
export function parseSecurityServerId(value: string): SecurityServerId {
  const [instance, memberClass, memberCode, serverCode] = parts(value, 4, 4, 'INSTANCE/CLASS/CODE/SERVERCODE');
  return { instance: instance!, memberClass: memberClass!, memberCode: memberCode!, serverCode: serverCode! };
}

/** Whether two client identifiers name the same member or subsystem, part by part. */
export function sameClientId(a: ClientId, b: ClientId): boolean {
  return a.instance === b.instance && a.memberClass === b.memberClass && a.memberCode === b.memberCode && a.subsystem === b.subsystem;
}

export function sameSecurityServerId(a: SecurityServerId, b: SecurityServerId): boolean {
  return a.instance === b.instance && a.memberClass === b.memberClass && a.memberCode === b.memberCode && a.serverCode === b.serverCode;
}

export function formatClientId(id: ClientId): string {
  return [id.instance, id.memberClass, id.memberCode, id.subsystem].filter((x) => x !== undefined).join('/');
}

export function formatSecurityServerId(id: SecurityServerId): string {
  return [id.instance, id.memberClass, id.memberCode, id.serverCode].join('/');
}

/** The member a subsystem belongs to (signing certificates are issued to members). */
export function memberOf(id: ClientId): ClientId {
  return { instance: id.instance, memberClass: id.memberClass, memberCode: id.memberCode };
}

/** A client identifier as the reference prints it: `SUBSYSTEM:INSTANCE/CLASS/CODE/SUB` or `MEMBER:…`. */
export function javaClientId(id: ClientId): string {
  return `${id.subsystem === undefined ? 'MEMBER' : 'SUBSYSTEM'}:${formatClientId(id)}`;
}

export function javaServerId(id: SecurityServerId): string {
  return `SERVER:${formatSecurityServerId(id)}`;
}
