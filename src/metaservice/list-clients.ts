/**
 * `GET /listClients` on the client proxy (pr-meta; the reference's MetadataClientRequestProcessor):
 * every member and subsystem of an instance's global configuration — `xRoadInstance` names the
 * instance, our own when it is absent or blank — as XML (`xroad:clientList`), or as JSON when the
 * Accept header lists application/json.
 */
import type { GlobalConf } from '../globalconf/global-conf.ts';
import { TEXT_XML_UTF8, escapeXml } from '../protocol/faults.ts';
import type { ClientId } from '../protocol/identifiers.ts';
import { IDENTIFIERS_NS, XROAD_NS } from '../protocol/namespaces.ts';

export const LIST_CLIENTS = 'listClients';
/** MetadataClientRequestProcessor.PARAM_INSTANCE_IDENTIFIER */
const PARAM_INSTANCE_IDENTIFIER = 'xRoadInstance';
/** MimeUtils.contentTypeWithCharset(JSON, "utf-8"): the charset in lower case, as the reference writes it. */
const JSON_UTF8 = 'application/json; charset=utf-8';

interface MemberInfo {
  readonly id: ClientId;
  readonly name: string;
  readonly subsystemName?: string;
}

/**
 * @param query the request's query string (without `?`)
 * @param accept every Accept header of the request
 */
export function listClients(global: GlobalConf, query: string, accept: readonly string[]): { contentType: string; body: Buffer } {
  const asked = new URLSearchParams(query).get(PARAM_INSTANCE_IDENTIFIER);
  const instance = asked === null || asked.trim() === '' ? global.instanceIdentifier : asked;
  const members = membersOf(global, instance);
  return acceptsJson(accept) ? { contentType: JSON_UTF8, body: Buffer.from(JSON.stringify({ member: members.map(jsonMember) }), 'utf8') } : { contentType: TEXT_XML_UTF8, body: Buffer.from(xmlList(members), 'utf8') };
}

/** GlobalConfImpl.getMembers: each member with the member's name, then its subsystems with the member's name and the subsystem's. */
function membersOf(global: GlobalConf, instance: string): MemberInfo[] {
  return (global.sharedOf(instance)?.members ?? []).flatMap((m) => [
    { id: m.id, name: m.name },
    ...m.subsystems.map((subsystem) => ({ id: { ...m.id, subsystem }, name: m.name, ...(m.subsystemNames?.[subsystem] !== undefined ? { subsystemName: m.subsystemNames[subsystem] } : {}) })),
  ]);
}

/**
 * Whether one of the Accept headers' media ranges is application/json, parameters (q too) ignored
 * (MetadataClientRequestProcessor.acceptsJson: `text/xml;q=1.0, application/json;q=0.9` asks for JSON).
 */
export function acceptsJson(accept: readonly string[]): boolean {
  return accept.flatMap((h) => h.split(',')).some((range) => range.split(';')[0]!.trim().toLowerCase() === 'application/json');
}

/** ClientType as the reference's ObjectMapper writes it: snake_case, nulls left out. */
function jsonMember(m: MemberInfo) {
  return {
    id: {
      member_class: m.id.memberClass,
      member_code: m.id.memberCode,
      object_type: m.id.subsystem === undefined ? 'MEMBER' : 'SUBSYSTEM',
      ...(m.id.subsystem !== undefined ? { subsystem_code: m.id.subsystem } : {}),
      xroad_instance: m.id.instance,
    },
    name: m.name,
    ...(m.subsystemName !== undefined ? { subsystem_name: m.subsystemName } : {}),
  };
}

/** `xroad:clientList` (service-metainfo.xsd ClientListType). */
function xmlList(members: readonly MemberInfo[]): string {
  const field = (ns: string, name: string, value: string | undefined) => (value === undefined ? '' : `<${ns}:${name}>${escapeXml(value)}</${ns}:${name}>`);
  const items = members.map(
    (m) =>
      `<xroad:member><xroad:id id:objectType="${m.id.subsystem === undefined ? 'MEMBER' : 'SUBSYSTEM'}">` +
      field('id', 'xRoadInstance', m.id.instance) +
      field('id', 'memberClass', m.id.memberClass) +
      field('id', 'memberCode', m.id.memberCode) +
      field('id', 'subsystemCode', m.id.subsystem) +
      `</xroad:id>${field('xroad', 'name', m.name)}${field('xroad', 'subsystemName', m.subsystemName)}</xroad:member>`,
  );
  return `<?xml version="1.0" encoding="UTF-8"?>\n<xroad:clientList xmlns:xroad="${XROAD_NS}" xmlns:id="${IDENTIFIERS_NS}">${items.join('')}</xroad:clientList>\n`;
}
