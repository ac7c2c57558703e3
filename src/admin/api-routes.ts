/**
 * The admin REST API's routes, shaped like the reference's `/api/v1` (facts §2): one table that the
 * server registers and that the OpenAPI document (docs/openapi.json) is generated from, so the two
 * cannot differ. Each route names the roles that may call it and calls one ServerAdmin method.
 * Request bodies use the reference's field names (snake_case); responses are the services' views.
 */
import type { Role } from '../serverconf/api-keys.ts';
import type { ConnectionType } from '../serverconf/model.ts';
import type { FileDownload, ServerAdmin } from './server-admin.ts';
import type { CandidateQuery } from './services-admin.ts';

type JsonSchema = Record<string, unknown>;

export interface RouteRequest {
  readonly params: Record<string, string>;
  readonly body: unknown;
  readonly query: Record<string, string | undefined>;
}

export interface RouteDef {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** OpenAPI form, `/tokens/{id}`. */
  readonly path: string;
  readonly summary: string;
  readonly roles: readonly Role[];
  /**
   * A JSON body with this schema, or bytes as `application/octet-stream`: a certificate (PEM or
   * DER, up to API_UPLOAD_LIMIT_BYTES) or a backup archive (up to backup.ts's MAX_ARCHIVE_BYTES;
   * also the `file` field of a multipart/form-data form, whose file name fills `query.filename`).
   */
  readonly body?: JsonSchema | 'certificate' | 'archive';
  /** Query parameters (strings), validated before the handler runs and documented; optional unless in requiredQuery. */
  readonly query?: Record<string, JsonSchema>;
  readonly requiredQuery?: readonly string[];
  /**
   * Only a logged-in user may call it, never an API key: the reference's API key management
   * (ManageApiKeysWebSecurityConfig) takes no API key, so a leaked key cannot make itself more keys.
   */
  readonly sessionOnly?: true;
  /** Success status: 200 with the result, 201 created, 202 accepted (sent on, no body), 204 no content. */
  readonly status?: 200 | 201 | 202 | 204;
  /** The answer is a file of this media type (the handler answers a FileDownload), not JSON. */
  readonly produces?: string;
  readonly handler: (admin: ServerAdmin, req: RouteRequest) => unknown;
}

const SECURITY_OFFICER: Role = 'XROAD_SECURITY_OFFICER';
const REGISTRATION_OFFICER: Role = 'XROAD_REGISTRATION_OFFICER';
const SERVICE_ADMINISTRATOR: Role = 'XROAD_SERVICE_ADMINISTRATOR';
const SYSTEM_ADMINISTRATOR: Role = 'XROAD_SYSTEM_ADMINISTRATOR';
const OBSERVER: Role = 'XROAD_SECURESERVER_OBSERVER';
const ALL: readonly Role[] = [SECURITY_OFFICER, REGISTRATION_OFFICER, SERVICE_ADMINISTRATOR, SYSTEM_ADMINISTRATOR, OBSERVER];
const KEYS_AND_CERTS: readonly Role[] = [SECURITY_OFFICER, REGISTRATION_OFFICER];

const string = (extra: JsonSchema = {}): JsonSchema => ({ type: 'string', minLength: 1, maxLength: 1024, ...extra });
const object = (properties: Record<string, JsonSchema>, required: string[]): JsonSchema => ({ type: 'object', additionalProperties: false, properties, required });
const KEY_USAGE = { type: 'string', enum: ['SIGNING', 'AUTHENTICATION'] };
const CSR_REQUEST = object(
  {
    key_usage_type: KEY_USAGE,
    csr_format: { type: 'string', enum: ['PEM', 'DER'] },
    member_id: string(),
    subject_field_values: string(),
    ca_name: string(),
  },
  ['key_usage_type'],
);
const CONNECTION_TYPE = { type: 'string', enum: ['HTTP', 'HTTPS', 'HTTPS_NO_AUTH'] };
const TSA = object({ name: string(), url: string() }, ['name', 'url']);
/** The reference's permissions VIEW_CLIENT_SERVICES, VIEW_SERVICE_ACL, VIEW_CLIENT_LOCAL_GROUPS: service administrators and observers. */
const SERVICES_VIEW: readonly Role[] = [SERVICE_ADMINISTRATOR, OBSERVER];
const ENDPOINT = object({ method: { type: 'string', enum: ['*', 'GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE'] }, path: string({ maxLength: 255 }), service_code: string() }, ['method', 'path']);
const SERVICE_CLIENTS = object({ items: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'object', properties: { id: string() }, required: ['id'] } } }, ['items']);
const SERVICE_CODES = object({ items: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'object', properties: { service_code: string() }, required: ['service_code'] } } }, ['items']);
const MEMBER_IDS = object({ items: { type: 'array', minItems: 1, maxItems: 1000, items: string() } }, ['items']);
const SEARCH_TERM = { type: 'string', maxLength: 255 };
const GROUP_DESCRIPTION = string({ maxLength: 255, pattern: '^[a-zA-Z0-9-_,.;:!? ]*$' });

interface CsrBody {
  key_usage_type: 'SIGNING' | 'AUTHENTICATION';
  csr_format?: 'PEM' | 'DER';
  member_id?: string;
  subject_field_values?: string;
}
const csrRequest = (b: CsrBody) => ({ usage: b.key_usage_type, format: b.csr_format, memberId: b.member_id, subject: b.subject_field_values });
const body = <T>(req: RouteRequest) => req.body as T;
/** The reference's `ignore_warnings` query parameter. */
const IGNORE_WARNINGS = { type: 'string', enum: ['true', 'false'] };
const BACKUP_NAME = string({ maxLength: 255 });
/** The reference's API key bodies: a bare JSON array of role names. */
const ROLE_LIST = { type: 'array', minItems: 1, maxItems: 10, items: { type: 'string', minLength: 1, maxLength: 64 } };
const items = (req: RouteRequest) => body<{ items: { id: string }[] }>(req).items.map((i) => i.id);
const serviceCodes = (req: RouteRequest) => body<{ items: { service_code: string }[] }>(req).items.map((i) => i.service_code);

export const ROUTES: readonly RouteDef[] = [
  // Initialisation (UC SS_01–03)
  { method: 'GET', path: '/initialization/status', summary: 'Whether the anchor, server code, owner and token are initialised', roles: ALL, handler: (a) => a.initializationStatus() },
  {
    method: 'POST',
    path: '/initialization',
    summary: 'Initialise the server: owner member, server code, and the blank token with its PIN',
    roles: [SYSTEM_ADMINISTRATOR],
    body: object({ owner_member_class: string(), owner_member_code: string(), security_server_code: string(), software_token_pin: string(), ignore_warnings: { type: 'boolean' } }, ['owner_member_class', 'owner_member_code', 'security_server_code']),
    status: 201,
    handler: (a, req) => {
      const b = body<{ owner_member_class: string; owner_member_code: string; security_server_code: string; software_token_pin?: string; ignore_warnings?: boolean }>(req);
      return a.initialize({ ownerMemberClass: b.owner_member_class, ownerMemberCode: b.owner_member_code, serverCode: b.security_server_code, softwareTokenPin: b.software_token_pin, ignoreWarnings: b.ignore_warnings });
    },
  },
  // Timestamping services (UC SS_07–08)
  { method: 'GET', path: '/timestamping-services', summary: 'Timestamping services approved in global configuration', roles: ALL, handler: (a) => a.approvedTimestampingServices() },
  { method: 'GET', path: '/system/timestamping-services', summary: 'Timestamping services this server uses, in order', roles: ALL, handler: (a) => a.timestampingServices() },
  { method: 'POST', path: '/system/timestamping-services', summary: 'Add an approved timestamping service', roles: [SYSTEM_ADMINISTRATOR], body: TSA, status: 201, handler: (a, req) => a.addTimestampingService(body(req)) },
  { method: 'POST', path: '/system/timestamping-services/delete', summary: 'Stop using a timestamping service', roles: [SYSTEM_ADMINISTRATOR], body: TSA, status: 204, handler: (a, req) => a.deleteTimestampingService(body(req)) },
  // Tokens (UC SS_13–18)
  { method: 'GET', path: '/tokens', summary: 'Tokens with their keys, certificates and CSRs', roles: ALL, handler: (a) => a.tokens() },
  { method: 'GET', path: '/tokens/{id}', summary: 'One token', roles: ALL, handler: (a, req) => a.token(req.params.id!) },
  { method: 'PATCH', path: '/tokens/{id}', summary: "Rename a token (the name is this server's, not the token's label)", roles: [SECURITY_OFFICER], body: object({ name: string() }, ['name']), handler: (a, req) => a.renameToken(req.params.id!, body<{ name: string }>(req).name) },
  { method: 'PUT', path: '/tokens/{id}/login', summary: 'Log in to a token; the PIN goes to the signer only', roles: [SECURITY_OFFICER, SYSTEM_ADMINISTRATOR], body: object({ password: string() }, ['password']), handler: (a, req) => a.login(req.params.id!, body<{ password: string }>(req).password) },
  { method: 'PUT', path: '/tokens/{id}/logout', summary: 'Log out of a token: its keys stop signing', roles: [SECURITY_OFFICER, SYSTEM_ADMINISTRATOR], handler: (a, req) => a.logout(req.params.id!) },
  {
    method: 'PUT',
    path: '/tokens/{id}/pin',
    summary: "Change a token's user PIN",
    roles: [SECURITY_OFFICER],
    body: object({ old_pin: string(), new_pin: string() }, ['old_pin', 'new_pin']),
    handler: (a, req) => {
      const b = body<{ old_pin: string; new_pin: string }>(req);
      return a.changePin(req.params.id!, b.old_pin, b.new_pin);
    },
  },
  // Keys and CSRs (UC SS_28–29)
  {
    method: 'POST',
    path: '/tokens/{id}/keys',
    summary: 'Generate a key on the token (sensitive, never extractable)',
    roles: KEYS_AND_CERTS,
    body: object({ name: string(), key_algorithm: { type: 'string', enum: ['RSA', 'EC'] }, key_usage_type: KEY_USAGE }, []),
    status: 201,
    handler: (a, req) => {
      const b = body<{ name?: string; key_algorithm?: 'RSA' | 'EC'; key_usage_type?: 'SIGNING' | 'AUTHENTICATION' }>(req);
      return a.generateKey(req.params.id!, { name: b.name, algorithm: b.key_algorithm, usage: b.key_usage_type });
    },
  },
  {
    method: 'POST',
    path: '/tokens/{id}/keys-with-csrs',
    summary: 'Generate a key and its CSR in one step',
    roles: KEYS_AND_CERTS,
    body: object({ key_label: string(), csr_generate_request: CSR_REQUEST }, ['csr_generate_request']),
    status: 201,
    handler: (a, req) => {
      const b = body<{ key_label?: string; csr_generate_request: CsrBody }>(req);
      return a.generateKeyWithCsr(req.params.id!, b.key_label, csrRequest(b.csr_generate_request));
    },
  },
  { method: 'GET', path: '/keys/{id}', summary: 'One key with its certificates and CSRs', roles: ALL, handler: (a, req) => a.key(req.params.id!) },
  { method: 'DELETE', path: '/keys/{id}', summary: 'Delete a key from the token and its certificates and CSRs', roles: [SECURITY_OFFICER], status: 204, handler: (a, req) => a.deleteKey(req.params.id!) },
  { method: 'POST', path: '/keys/{id}/csrs', summary: 'Generate a CSR for the key (signing: a member; authentication: this server)', roles: KEYS_AND_CERTS, body: CSR_REQUEST, status: 201, handler: (a, req) => a.generateCsr(req.params.id!, csrRequest(body(req))) },
  {
    method: 'GET',
    path: '/keys/{id}/csrs/{csr_id}',
    summary: 'Download a CSR made earlier (csr_format PEM or DER), as the reference names the file',
    roles: KEYS_AND_CERTS,
    query: { csr_format: { type: 'string', enum: ['PEM', 'DER'] } },
    requiredQuery: ['csr_format'],
    produces: 'application/octet-stream',
    handler: async (a, req) => {
      const file = await a.csrFile(req.params.id!, req.params.csr_id!, req.query.csr_format as 'PEM' | 'DER');
      return { data: file.data, filename: file.fileName, contentType: file.format === 'PEM' ? 'application/x-pem-file' : 'application/pkcs10' } satisfies FileDownload;
    },
  },
  { method: 'DELETE', path: '/keys/{id}/csrs/{csr_id}', summary: 'Delete a CSR', roles: KEYS_AND_CERTS, status: 204, handler: (a, req) => a.deleteCsr(req.params.csr_id!) },
  // Certificates (UC SS_30–34)
  { method: 'POST', path: '/token-certificates', summary: 'Import a certificate (PEM or DER) for a key on a token', roles: KEYS_AND_CERTS, body: 'certificate', status: 201, handler: (a, req) => a.importCert(req.body as Buffer) },
  { method: 'GET', path: '/token-certificates/{hash}', summary: 'One certificate by its SHA-256 hash', roles: ALL, handler: (a, req) => a.cert(req.params.hash!) },
  { method: 'DELETE', path: '/token-certificates/{hash}', summary: 'Delete a certificate', roles: KEYS_AND_CERTS, status: 204, handler: (a, req) => a.deleteCert(req.params.hash!) },
  { method: 'PUT', path: '/token-certificates/{hash}/activate', summary: 'Activate a certificate', roles: [SECURITY_OFFICER, SYSTEM_ADMINISTRATOR], handler: (a, req) => a.activateCert(req.params.hash!) },
  { method: 'PUT', path: '/token-certificates/{hash}/disable', summary: 'Disable a certificate', roles: [SECURITY_OFFICER, SYSTEM_ADMINISTRATOR], handler: (a, req) => a.disableCert(req.params.hash!) },
  {
    method: 'PUT',
    path: '/token-certificates/{hash}/register',
    summary: "Send the authentication certificate's registration request to the central server",
    roles: KEYS_AND_CERTS,
    body: object({ address: string({ maxLength: 255 }) }, ['address']),
    handler: (a, req) => a.registerAuthCert(req.params.hash!, body<{ address: string }>(req).address),
  },
  {
    method: 'PUT',
    path: '/token-certificates/{hash}/unregister',
    summary: "Send the authentication certificate's deletion request (authCertDeletion)",
    roles: [SECURITY_OFFICER],
    handler: (a, req) => a.unregisterAuthCert(req.params.hash!),
  },
  // The server's internal TLS certificate (the reference's view_internal_tls_cert and export_internal_tls_cert)
  { method: 'GET', path: '/system/certificate', summary: "The internal TLS certificate's details (what information systems see on the client proxy's HTTPS port)", roles: ALL, handler: (a) => a.system.systemCertificate() },
  { method: 'POST', path: '/system/certificate', summary: 'A new internal TLS key and self-signed certificate (the client proxy serves them from its next connection)', roles: [SECURITY_OFFICER, SYSTEM_ADMINISTRATOR], status: 201, handler: (a) => a.system.generateSystemCertificate() },
  {
    method: 'POST',
    path: '/system/certificate/csr',
    summary: 'A certificate request (PKCS#10, DER) for the internal TLS key',
    roles: [SECURITY_OFFICER, SYSTEM_ADMINISTRATOR],
    body: object({ name: string({ maxLength: 255 }) }, ['name']),
    status: 201,
    produces: 'application/octet-stream',
    handler: (a, req) => a.system.systemCertificateCsr(body<{ name: string }>(req).name),
  },
  { method: 'POST', path: '/system/certificate/import', summary: 'Import a certificate (PEM, PEM chain or DER) issued for the internal TLS key', roles: [SECURITY_OFFICER, SYSTEM_ADMINISTRATOR], body: 'certificate', handler: (a, req) => a.system.importSystemCertificate(req.body as Buffer) },
  { method: 'GET', path: '/system/certificate/export', summary: 'The internal TLS certificate as certs.tar.gz (cert.pem and cert.cer)', roles: [SECURITY_OFFICER, SYSTEM_ADMINISTRATOR, SERVICE_ADMINISTRATOR, REGISTRATION_OFFICER], produces: 'application/gzip', handler: (a) => a.system.exportSystemCertificate() },
  // The configuration anchor (the reference's view_anchor, download_anchor, upload_anchor; the first one as init_config)
  { method: 'GET', path: '/system/anchor', summary: "The configuration anchor's hash (SHA-224) and when it was made", roles: [SECURITY_OFFICER, SYSTEM_ADMINISTRATOR, OBSERVER], handler: (a) => a.system.anchor() },
  { method: 'GET', path: '/system/anchor/download', summary: 'The configuration anchor file', roles: [SECURITY_OFFICER, SYSTEM_ADMINISTRATOR], produces: 'application/xml', handler: (a) => a.system.downloadAnchor() },
  {
    method: 'POST',
    path: '/system/anchor/previews',
    summary: "An uploaded anchor's hash and date, not saved (?validate_instance=false before initialisation)",
    roles: [SECURITY_OFFICER, SYSTEM_ADMINISTRATOR],
    body: 'certificate',
    handler: (a, req) => a.system.previewAnchor(req.body as Buffer, req.query.validate_instance !== 'false'),
  },
  { method: 'POST', path: '/system/anchor', summary: "The first configuration anchor of a new server (the signer downloads from it)", roles: [SYSTEM_ADMINISTRATOR], body: 'certificate', status: 201, handler: (a, req) => a.system.uploadInitialAnchor(req.body as Buffer) },
  { method: 'PUT', path: '/system/anchor', summary: "Replace the configuration anchor with one of this server's instance", roles: [SECURITY_OFFICER, SYSTEM_ADMINISTRATOR], body: 'certificate', status: 201, handler: (a, req) => a.system.replaceAnchor(req.body as Buffer) },
  // Diagnostics (the reference's DiagnosticsApi: its diagnostics permission)
  { method: 'GET', path: '/diagnostics/globalconf', summary: "The signer's last global configuration download: status, when, next", roles: [SYSTEM_ADMINISTRATOR, OBSERVER], handler: (a) => a.system.globalConfDiagnostics() },
  { method: 'GET', path: '/diagnostics/timestamping-services', summary: "Each configured timestamping service's last outcome in the proxy's message log", roles: [SYSTEM_ADMINISTRATOR, OBSERVER], handler: (a) => a.system.timestampingDiagnostics() },
  { method: 'GET', path: '/diagnostics/ocsp-responders', summary: "Each CA's OCSP responders with the signer's last outcome and its next refresh", roles: [SYSTEM_ADMINISTRATOR, OBSERVER], handler: (a) => a.system.ocspDiagnostics() },
  { method: 'GET', path: '/diagnostics/certificate-expiry', summary: 'The token certificates, soonest to expire first, with their OCSP status', roles: [SYSTEM_ADMINISTRATOR, OBSERVER], handler: (a) => a.system.certificateExpiry() },
  // The server's address and maintenance mode (management requests signed by the owner)
  { method: 'GET', path: '/system/server-address', summary: "This server's address in global configuration, and a change requested", roles: [SYSTEM_ADMINISTRATOR], handler: (a) => a.serverAddress() },
  { method: 'PUT', path: '/system/server-address', summary: 'Send the address change request (addressChange)', roles: [SYSTEM_ADMINISTRATOR], body: object({ address: string({ maxLength: 255 }) }, ['address']), status: 202, handler: (a, req) => a.changeServerAddress(body<{ address: string }>(req).address) },
  { method: 'GET', path: '/system/maintenance-mode', summary: 'Whether global configuration shows this server in maintenance mode', roles: [SYSTEM_ADMINISTRATOR], handler: (a) => a.maintenanceMode() },
  {
    method: 'PUT',
    path: '/system/maintenance-mode/enable',
    summary: 'Send the maintenance mode enable request (maintenanceModeEnable)',
    roles: [SYSTEM_ADMINISTRATOR],
    body: object({ message: { type: 'string', maxLength: 255, pattern: '^[a-zA-Z0-9-_,.;:!? ]*$' } }, []),
    status: 204,
    handler: (a, req) => a.setMaintenanceMode(true, body<{ message?: string } | undefined>(req)?.message),
  },
  { method: 'PUT', path: '/system/maintenance-mode/disable', summary: 'Send the maintenance mode disable request (maintenanceModeDisable)', roles: [SYSTEM_ADMINISTRATOR], status: 204, handler: (a) => a.setMaintenanceMode(false) },
  // Clients' information systems (seed 003)
  { method: 'GET', path: '/member-classes', summary: "Member classes in global configuration (current_instance=true: only this instance's, the ones a client can be added with)", roles: ALL, handler: (a, req) => a.memberClasses(req.query.current_instance === 'true') },
  { method: 'GET', path: '/clients', summary: "This server's clients with their connection types", roles: ALL, handler: (a) => a.clients() },
  { method: 'GET', path: '/clients/{id}', summary: 'One client (id as INSTANCE:CLASS:CODE[:SUBSYSTEM])', roles: ALL, handler: (a, req) => a.client(req.params.id!) },
  {
    method: 'POST',
    path: '/clients',
    summary: 'Add a member or subsystem of this instance to the server (SAVED until registered)',
    roles: [REGISTRATION_OFFICER],
    body: object(
      {
        client: object({ member_class: string({ maxLength: 255 }), member_code: string({ maxLength: 255 }), subsystem_code: string({ maxLength: 255 }), connection_type: CONNECTION_TYPE }, ['member_class', 'member_code']),
        ignore_warnings: { type: 'boolean' },
      },
      ['client'],
    ),
    status: 201,
    handler: (a, req) => {
      const b = body<{ client: { member_class: string; member_code: string; subsystem_code?: string; connection_type?: ConnectionType }; ignore_warnings?: boolean }>(req);
      return a.addClient({ memberClass: b.client.member_class, memberCode: b.client.member_code, subsystemCode: b.client.subsystem_code, connectionType: b.client.connection_type, ignoreWarnings: b.ignore_warnings });
    },
  },
  { method: 'DELETE', path: '/clients/{id}', summary: 'Remove a client (SAVED, DELETION_IN_PROGRESS or GLOBAL_ERROR)', roles: [REGISTRATION_OFFICER], status: 204, handler: (a, req) => a.deleteClient(req.params.id!) },
  { method: 'PUT', path: '/clients/{id}/register', summary: 'Send the client registration request (clientReg) through this server to the management service', roles: [REGISTRATION_OFFICER], status: 204, handler: (a, req) => a.registerClient(req.params.id!) },
  { method: 'PUT', path: '/clients/{id}/unregister', summary: 'Send the client deletion request (clientDeletion)', roles: [REGISTRATION_OFFICER], status: 204, handler: (a, req) => a.unregisterClient(req.params.id!) },
  { method: 'PUT', path: '/clients/{id}/disable', summary: 'Send the client disable request (clientDisable)', roles: [REGISTRATION_OFFICER], status: 204, handler: (a, req) => a.disableClient(req.params.id!) },
  { method: 'PUT', path: '/clients/{id}/enable', summary: 'Send the client enable request (clientEnable)', roles: [REGISTRATION_OFFICER], status: 204, handler: (a, req) => a.enableClient(req.params.id!) },
  { method: 'PUT', path: '/clients/{id}/make-owner', summary: 'Send the owner change request (ownerChange), signed by the new owner', roles: [REGISTRATION_OFFICER], status: 204, handler: (a, req) => a.makeOwner(req.params.id!) },
  {
    method: 'PATCH',
    path: '/clients/{id}',
    summary: "Set how the client's information systems connect: HTTP, HTTPS or HTTPS_NO_AUTH",
    roles: [SERVICE_ADMINISTRATOR],
    body: object({ connection_type: CONNECTION_TYPE }, ['connection_type']),
    handler: (a, req) => a.setConnectionType(req.params.id!, body<{ connection_type: string }>(req).connection_type),
  },
  { method: 'GET', path: '/clients/{id}/tls-certificates', summary: "The client's information systems' TLS certificates", roles: ALL, handler: (a, req) => a.tlsCertificates(req.params.id!) },
  { method: 'POST', path: '/clients/{id}/tls-certificates', summary: "Add an information system's TLS certificate (PEM or DER)", roles: [SERVICE_ADMINISTRATOR], body: 'certificate', status: 201, handler: (a, req) => a.addTlsCertificate(req.params.id!, req.body as Buffer) },
  { method: 'DELETE', path: '/clients/{id}/tls-certificates/{hash}', summary: "Remove an information system's TLS certificate", roles: [SERVICE_ADMINISTRATOR], status: 204, handler: (a, req) => a.deleteTlsCertificate(req.params.id!, req.params.hash!) },
  // Service descriptions, services, endpoints (seed 003; the reference's ServiceDescriptionsApi, ServicesApi, EndpointsApi)
  { method: 'GET', path: '/clients/{id}/service-descriptions', summary: "The client's service descriptions with their services", roles: SERVICES_VIEW, handler: (a, req) => a.services.serviceDescriptions(req.params.id!) },
  {
    method: 'POST',
    path: '/clients/{id}/service-descriptions',
    summary: 'Add a WSDL, OpenAPI 3 or REST service description (disabled until enabled)',
    roles: [SERVICE_ADMINISTRATOR],
    body: object({ url: string({ maxLength: 255 }), type: { type: 'string', enum: ['WSDL', 'OPENAPI3', 'REST'] }, rest_service_code: string({ maxLength: 255 }), ignore_warnings: { type: 'boolean' } }, ['url', 'type']),
    status: 201,
    handler: (a, req) => {
      const b = body<{ url: string; type: 'WSDL' | 'OPENAPI3' | 'REST'; rest_service_code?: string; ignore_warnings?: boolean }>(req);
      return a.services.addServiceDescription(req.params.id!, { url: b.url, type: b.type, restServiceCode: b.rest_service_code, ignoreWarnings: b.ignore_warnings });
    },
  },
  { method: 'GET', path: '/service-descriptions/{id}', summary: 'One service description', roles: SERVICES_VIEW, handler: (a, req) => a.services.serviceDescription(req.params.id!) },
  { method: 'GET', path: '/service-descriptions/{id}/services', summary: "A description's services", roles: SERVICES_VIEW, handler: async (a, req) => (await a.services.serviceDescription(req.params.id!)).services },
  {
    method: 'PATCH',
    path: '/service-descriptions/{id}',
    summary: "Change a description's URL or REST service code; the document is read again",
    roles: [SERVICE_ADMINISTRATOR],
    body: object({ url: string({ maxLength: 255 }), type: { type: 'string', enum: ['WSDL', 'OPENAPI3', 'REST'] }, rest_service_code: string({ maxLength: 255 }), new_rest_service_code: string({ maxLength: 255 }), ignore_warnings: { type: 'boolean' } }, ['url', 'type']),
    handler: (a, req) => {
      const b = body<{ url: string; type: 'WSDL' | 'OPENAPI3' | 'REST'; rest_service_code?: string; new_rest_service_code?: string; ignore_warnings?: boolean }>(req);
      return a.services.updateServiceDescription(req.params.id!, { url: b.url, type: b.type, restServiceCode: b.rest_service_code, newRestServiceCode: b.new_rest_service_code, ignoreWarnings: b.ignore_warnings });
    },
  },
  {
    method: 'PUT',
    path: '/service-descriptions/{id}/refresh',
    summary: 'Read the description again; services or endpoints that come or go are warnings unless ignored',
    roles: [SERVICE_ADMINISTRATOR],
    body: object({ ignore_warnings: { type: 'boolean' } }, []),
    handler: (a, req) => a.services.refreshServiceDescription(req.params.id!, { ignoreWarnings: body<{ ignore_warnings?: boolean }>(req)?.ignore_warnings }),
  },
  { method: 'PUT', path: '/service-descriptions/{id}/enable', summary: "Enable a description's services", roles: [SERVICE_ADMINISTRATOR], handler: (a, req) => a.services.enableServiceDescription(req.params.id!) },
  {
    method: 'PUT',
    path: '/service-descriptions/{id}/disable',
    summary: "Disable a description's services; callers get the notice",
    roles: [SERVICE_ADMINISTRATOR],
    body: object({ disabled_notice: { type: 'string', maxLength: 255 } }, []),
    handler: (a, req) => a.services.disableServiceDescription(req.params.id!, body<{ disabled_notice?: string } | undefined>(req)?.disabled_notice),
  },
  { method: 'DELETE', path: '/service-descriptions/{id}', summary: 'Delete a description with its services, their endpoints and access rights', roles: [SERVICE_ADMINISTRATOR], status: 204, handler: (a, req) => a.services.deleteServiceDescription(req.params.id!) },
  { method: 'GET', path: '/services/{id}', summary: 'One service (id INSTANCE:CLASS:CODE[:SUBSYSTEM]:code.version)', roles: SERVICES_VIEW, handler: (a, req) => a.services.service(req.params.id!) },
  {
    method: 'PATCH',
    path: '/services/{id}',
    summary: "A service's URL, timeout and TLS authentication, each optionally for all services of its description",
    roles: [SERVICE_ADMINISTRATOR],
    body: object({ url: string({ maxLength: 255 }), timeout: { type: 'integer', minimum: 0, maximum: 1000 }, ssl_auth: { type: 'boolean' }, url_all: { type: 'boolean' }, timeout_all: { type: 'boolean' }, ssl_auth_all: { type: 'boolean' }, ignore_warnings: { type: 'boolean' } }, ['url', 'timeout', 'ssl_auth']),
    handler: (a, req) => {
      const b = body<{ url: string; timeout: number; ssl_auth: boolean; url_all?: boolean; timeout_all?: boolean; ssl_auth_all?: boolean }>(req);
      return a.services.updateService(req.params.id!, { url: b.url, timeoutSeconds: b.timeout, sslAuthentication: b.ssl_auth, urlAll: b.url_all, timeoutAll: b.timeout_all, sslAuthenticationAll: b.ssl_auth_all });
    },
  },
  {
    method: 'POST',
    path: '/services/{id}/endpoints',
    summary: 'Add a REST endpoint (method and path pattern) to a REST service',
    roles: [SERVICE_ADMINISTRATOR],
    body: ENDPOINT,
    status: 201,
    handler: (a, req) => {
      const b = body<{ method: string; path: string }>(req);
      return a.services.addEndpoint(req.params.id!, b.method, b.path);
    },
  },
  { method: 'GET', path: '/endpoints/{id}', summary: 'One endpoint', roles: SERVICES_VIEW, handler: (a, req) => a.services.endpoint(req.params.id!) },
  { method: 'PATCH', path: '/endpoints/{id}', summary: "Change an endpoint the administrator added (generated ones follow their description)", roles: [SERVICE_ADMINISTRATOR], body: ENDPOINT, handler: (a, req) => a.services.updateEndpoint(req.params.id!, body<{ method: string; path: string }>(req)) },
  { method: 'DELETE', path: '/endpoints/{id}', summary: 'Delete an endpoint the administrator added, with its access rights', roles: [SERVICE_ADMINISTRATOR], status: 204, handler: (a, req) => a.services.deleteEndpoint(req.params.id!) },
  // Access rights (the reference's service-clients)
  { method: 'GET', path: '/services/{id}/service-clients', summary: 'Who may call the whole service', roles: SERVICES_VIEW, handler: (a, req) => a.services.serviceClients(req.params.id!) },
  { method: 'POST', path: '/services/{id}/service-clients', summary: 'Give subsystems, global groups or local groups the right to call the service', roles: [SERVICE_ADMINISTRATOR], body: SERVICE_CLIENTS, handler: (a, req) => a.services.addServiceClients(req.params.id!, items(req)) },
  { method: 'POST', path: '/services/{id}/service-clients/delete', summary: 'Take the right to call the service away', roles: [SERVICE_ADMINISTRATOR], body: SERVICE_CLIENTS, status: 204, handler: (a, req) => a.services.deleteServiceClients(req.params.id!, items(req)) },
  { method: 'GET', path: '/endpoints/{id}/service-clients', summary: 'Who may call the endpoint', roles: SERVICES_VIEW, handler: (a, req) => a.services.endpointServiceClients(req.params.id!) },
  { method: 'POST', path: '/endpoints/{id}/service-clients', summary: 'Give the right to call the endpoint', roles: [SERVICE_ADMINISTRATOR], body: SERVICE_CLIENTS, status: 201, handler: (a, req) => a.services.addEndpointServiceClients(req.params.id!, items(req)) },
  { method: 'POST', path: '/endpoints/{id}/service-clients/delete', summary: 'Take the right to call the endpoint away', roles: [SERVICE_ADMINISTRATOR], body: SERVICE_CLIENTS, status: 204, handler: (a, req) => a.services.deleteEndpointServiceClients(req.params.id!, items(req)) },
  { method: 'GET', path: '/clients/{id}/service-clients', summary: "Everyone with a right to one of the client's services", roles: SERVICES_VIEW, handler: (a, req) => a.services.clientServiceClients(req.params.id!) },
  {
    method: 'GET',
    path: '/clients/{id}/service-client-candidates',
    summary: 'Subsystems, global groups and local groups that could be given rights to the client\'s services (each term: contained, ignoring case)',
    roles: SERVICES_VIEW,
    query: {
      member_name_group_description: SEARCH_TERM,
      service_client_type: { type: 'string', enum: ['SUBSYSTEM', 'GLOBALGROUP', 'LOCALGROUP'] },
      instance: SEARCH_TERM,
      member_class: SEARCH_TERM,
      member_group_code: SEARCH_TERM,
      subsystem_code: SEARCH_TERM,
    },
    handler: (a, req) => {
      const q = req.query;
      const type = q.service_client_type as CandidateQuery['type'];
      return a.services.serviceClientCandidates(req.params.id!, { name: q.member_name_group_description, type, instance: q.instance, memberClass: q.member_class, memberGroupCode: q.member_group_code, subsystemCode: q.subsystem_code });
    },
  },
  { method: 'GET', path: '/clients/{id}/service-clients/{sc_id}/access-rights', summary: 'The services one service client may call', roles: SERVICES_VIEW, handler: (a, req) => a.services.serviceClientAccessRights(req.params.id!, req.params.sc_id!) },
  {
    method: 'POST',
    path: '/clients/{id}/service-clients/{sc_id}/access-rights',
    summary: 'Give one service client the right to call services (by service code)',
    roles: [SERVICE_ADMINISTRATOR],
    body: SERVICE_CODES,
    status: 201,
    handler: (a, req) => a.services.addServiceClientAccessRights(req.params.id!, req.params.sc_id!, serviceCodes(req)),
  },
  { method: 'POST', path: '/clients/{id}/service-clients/{sc_id}/access-rights/delete', summary: "Take one service client's rights to services away", roles: [SERVICE_ADMINISTRATOR], body: SERVICE_CODES, status: 204, handler: (a, req) => a.services.deleteServiceClientAccessRights(req.params.id!, req.params.sc_id!, serviceCodes(req)) },
  // Local groups
  { method: 'GET', path: '/clients/{id}/local-groups', summary: "The client's local groups", roles: SERVICES_VIEW, handler: (a, req) => a.services.localGroups(req.params.id!) },
  {
    method: 'POST',
    path: '/clients/{id}/local-groups',
    summary: 'Add a local group',
    roles: [SERVICE_ADMINISTRATOR],
    body: object({ code: string({ maxLength: 255 }), description: GROUP_DESCRIPTION }, ['code', 'description']),
    status: 201,
    handler: (a, req) => {
      const b = body<{ code: string; description: string }>(req);
      return a.services.addLocalGroup(req.params.id!, b.code, b.description);
    },
  },
  { method: 'GET', path: '/local-groups/{group_id}', summary: 'One local group with its members', roles: SERVICES_VIEW, handler: (a, req) => a.services.localGroup(req.params.group_id!) },
  { method: 'PATCH', path: '/local-groups/{group_id}', summary: "Change a local group's description", roles: [SERVICE_ADMINISTRATOR], body: object({ description: GROUP_DESCRIPTION }, ['description']), handler: (a, req) => a.services.updateLocalGroup(req.params.group_id!, body<{ description: string }>(req).description) },
  { method: 'DELETE', path: '/local-groups/{group_id}', summary: 'Delete a local group and its access rights', roles: [SERVICE_ADMINISTRATOR], status: 204, handler: (a, req) => a.services.deleteLocalGroup(req.params.group_id!) },
  { method: 'POST', path: '/local-groups/{group_id}/members', summary: 'Add members (members or subsystems) to a local group', roles: [SERVICE_ADMINISTRATOR], body: MEMBER_IDS, status: 201, handler: (a, req) => a.services.addLocalGroupMembers(req.params.group_id!, body<{ items: string[] }>(req).items) },
  { method: 'POST', path: '/local-groups/{group_id}/members/delete', summary: 'Remove members from a local group', roles: [SERVICE_ADMINISTRATOR], body: MEMBER_IDS, status: 204, handler: (a, req) => a.services.deleteLocalGroupMembers(req.params.group_id!, body<{ items: string[] }>(req).items) },
  // Backups (the reference's BackupsApi; keys stay on the HSM; a key configuration that differs needs xrd backup restore, signer stopped)
  { method: 'GET', path: '/backups', summary: 'Backups of configuration and key metadata, newest first, each verified', roles: [SYSTEM_ADMINISTRATOR, OBSERVER], handler: (a) => a.backups.list() },
  { method: 'POST', path: '/backups', summary: 'Take a backup now (configuration and key metadata, never keys)', roles: [SYSTEM_ADMINISTRATOR], body: object({ label: string({ maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' }) }, []), status: 201, handler: (a, req) => a.backups.create(body<{ label?: string } | undefined>(req)?.label) },
  {
    method: 'POST',
    path: '/backups/upload',
    summary: "Upload a backup (the archive as application/octet-stream named by ?filename=, or the reference's form field file); kept only when it verifies with this server's backup signing key; a name in use needs ignore_warnings=true",
    roles: [SYSTEM_ADMINISTRATOR],
    body: 'archive',
    query: { filename: BACKUP_NAME, ignore_warnings: IGNORE_WARNINGS },
    status: 201,
    handler: (a, req) => a.backups.upload(req.query.filename ?? '', req.body as Buffer, req.query.ignore_warnings === 'true'),
  },
  { method: 'GET', path: '/backups/{filename}/download', summary: 'The backup archive as application/octet-stream', roles: [SYSTEM_ADMINISTRATOR], produces: 'application/octet-stream', handler: (a, req) => a.backups.file(req.params.filename!) },
  { method: 'DELETE', path: '/backups/{filename}', summary: 'Delete a backup', roles: [SYSTEM_ADMINISTRATOR], status: 204, handler: (a, req) => a.backups.delete(req.params.filename!) },
  {
    method: 'PUT',
    path: '/backups/{filename}/restore',
    summary: 'Restore the server configuration and proxy files of a backup while the server runs; refused whole (BackupNeedsStoppedSigner) when its key configuration differs: then xrd backup restore with the signer stopped',
    roles: [SYSTEM_ADMINISTRATOR],
    handler: (a, req) => a.backups.restore(req.params.filename!),
  },
  // API keys (the reference's ApiKeysApi): a system administrator's, in a login session only
  { method: 'GET', path: '/api-keys', summary: 'The API keys: id, name, roles (never the key)', roles: [SYSTEM_ADMINISTRATOR, OBSERVER], sessionOnly: true, handler: (a) => a.apiKeys.list() },
  { method: 'GET', path: '/api-keys/{id}', summary: 'One API key (never the key)', roles: [SYSTEM_ADMINISTRATOR, OBSERVER], sessionOnly: true, handler: (a, req) => a.apiKeys.get(req.params.id!) },
  { method: 'POST', path: '/api-keys', summary: 'Create an API key with these roles (a JSON array); the answer holds the key, shown this once', roles: [SYSTEM_ADMINISTRATOR], sessionOnly: true, body: ROLE_LIST, handler: (a, req) => a.apiKeys.create(body<Role[]>(req)) },
  { method: 'PUT', path: '/api-keys/{id}', summary: "Replace an API key's roles (a JSON array)", roles: [SYSTEM_ADMINISTRATOR], sessionOnly: true, body: ROLE_LIST, handler: (a, req) => a.apiKeys.update(req.params.id!, body<Role[]>(req)) },
  { method: 'DELETE', path: '/api-keys/{id}', summary: 'Revoke an API key: it stops working at once', roles: [SYSTEM_ADMINISTRATOR], sessionOnly: true, status: 204, handler: (a, req) => a.apiKeys.revoke(req.params.id!) },
];
