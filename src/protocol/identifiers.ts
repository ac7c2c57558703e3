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

function parts(value: string, min: number, max: number, what: string): string[] {
  const p = value.split('/');
  if (p.length < min || p.length > max || p.some((x) => x.trim() === '')) {
    throw new XrdError('InvalidIdentifier', { value, reason: `expected ${what}` });
  }
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
