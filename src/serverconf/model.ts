/**
 * The server configuration's model, shaped as the reference's serverconf database
 * (src/lib/serverconf-impl entities): a client owns its service descriptions (each with its
 * services), its REST endpoints, its access rights (each to one endpoint; a SOAP service's rights
 * are to its base endpoint `* **`) and its local groups. Plain immutable data: the store
 * (store.ts) persists it, server-conf.ts answers the proxy's questions from it.
 */
import type { ClientId, SecurityServerId } from '../protocol/identifiers.ts';

/** How a client's information systems reach the client proxy (seed 003). */
export type ConnectionType = 'HTTP' | 'HTTPS' | 'HTTPS_NO_AUTH';
export const CONNECTION_TYPES: readonly ConnectionType[] = ['HTTP', 'HTTPS', 'HTTPS_NO_AUTH'];

/** The reference's client states (ClientStatusMapping); a client added here starts SAVED. */
export type ClientStatus = 'SAVED' | 'REGISTRATION_IN_PROGRESS' | 'REGISTERED' | 'DELETION_IN_PROGRESS' | 'GLOBAL_ERROR' | 'DISABLING_IN_PROGRESS' | 'DISABLED' | 'ENABLING_IN_PROGRESS';
export const CLIENT_STATUSES: readonly ClientStatus[] = ['SAVED', 'REGISTRATION_IN_PROGRESS', 'REGISTERED', 'DELETION_IN_PROGRESS', 'GLOBAL_ERROR', 'DISABLING_IN_PROGRESS', 'DISABLED', 'ENABLING_IN_PROGRESS'];

/** The reference's DescriptionType: WSDL describes SOAP services, OPENAPI3 and REST describe one REST service. */
export type DescriptionType = 'WSDL' | 'OPENAPI3' | 'REST';
export const DESCRIPTION_TYPES: readonly DescriptionType[] = ['WSDL', 'OPENAPI3', 'REST'];

export interface ServiceConf {
  readonly code: string;
  readonly version?: string;
  readonly title?: string;
  /** Where the provider's information system answers. REST paths after the service code are appended. */
  readonly url: string;
  readonly timeoutSeconds: number;
  /**
   * For an https URL: whether the service's TLS certificate must be one of the internal TLS
   * certificates of the client that owns the service (the reference's sslAuthentication, on by
   * default). Off: any certificate is accepted.
   */
  readonly sslAuthentication?: boolean;
}

export interface ServiceDescriptionConf {
  /** Stable within the server (the reference's numeric id); the API addresses descriptions by it. */
  readonly id: number;
  readonly type: DescriptionType;
  /**
   * The WSDL or OpenAPI document's URL (what getWsdl/getOpenAPI fetch and refresh reads again), or
   * for REST the API's base URL. Empty only for SOAP services imported from a serverconf.json that
   * named no WSDL.
   */
  readonly url: string;
  readonly disabled: boolean;
  /** What callers of a disabled description's services are told (ServiceDisabled). */
  readonly disabledNotice?: string;
  /** ISO time of the last fetch of the description. */
  readonly refreshedAt: string;
  readonly services: readonly ServiceConf[];
}

/** The base endpoint of a service: every method, every path. SOAP rights are given to it. */
export const ANY_METHOD = '*';
export const ANY_PATH = '**';

/** A REST endpoint of a client's service (the reference's EndpointEntity). */
export interface EndpointConf {
  readonly serviceCode: string;
  /** `*` or an HTTP method in capitals. */
  readonly method: string;
  /**
   * A path pattern as the reference's PathGlob reads it (access.ts pathGlobMatches): `**` any run of
   * characters (`/` included), `*` any run within one segment, taken whole — so `/pets/*` matches
   * `/pets/12` but `/files/*.json` matches nothing, as on a reference server; `\*` a star. Matched
   * against the request path after percent-decoding and dot-segment removal; a trailing slash counts.
   */
  readonly path: string;
  /** Made from the service description (OpenAPI), not by the administrator: refresh replaces it. */
  readonly generated: boolean;
}

/**
 * Who may call: a client id `INST/CLASS/CODE[/SUB]`, a global group `GLOBALGROUP:INST/code`, or one
 * of this client's local groups `LOCALGROUP:code`.
 */
export type AccessSubject = string;

/** One access right: a subject may call one endpoint of one of the client's services. */
export interface AccessRightConf {
  readonly subject: AccessSubject;
  readonly serviceCode: string;
  readonly method: string;
  readonly path: string;
  /** ISO time the right was given (the reference's rightsGiven). */
  readonly grantedAt: string;
}

export interface LocalGroupMember {
  readonly id: ClientId;
  readonly addedAt: string;
}

export interface LocalGroupConf {
  readonly code: string;
  readonly description: string;
  readonly updatedAt: string;
  readonly members: readonly LocalGroupMember[];
}

export interface LocalClient {
  readonly id: ClientId;
  readonly status: ClientStatus;
  readonly connectionType: ConnectionType;
  /** Internal TLS certificates of the client's information systems (DER). */
  readonly isCerts: readonly Buffer[];
  readonly serviceDescriptions: readonly ServiceDescriptionConf[];
  readonly endpoints: readonly EndpointConf[];
  readonly accessRights: readonly AccessRightConf[];
  readonly localGroups: readonly LocalGroupConf[];
}

/** A timestamping service the administrator chose among the approved ones (UC SS_07). */
export interface ConfiguredTsa {
  readonly name: string;
  readonly url: string;
}

export interface ServerConf {
  readonly serverId: SecurityServerId;
  readonly clients: readonly LocalClient[];
  /** Used in this order by the message log; none configured means no timestamps (logging stops after the acceptable period). */
  readonly timestampingServices: readonly ConfiguredTsa[];
}

/** The reference's defaults for a new client and a new service. */
export const DEFAULT_CONNECTION_TYPE: ConnectionType = 'HTTPS';
export const DEFAULT_SERVICE_TIMEOUT_SECONDS = 60;
