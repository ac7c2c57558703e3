/**
 * The clients' calls (docs/admin-api.md "Clients"): the list, one client, adding one, its
 * management requests (register, unregister, disable, enable, make owner), deleting it, its
 * connection type and its information systems' TLS certificates; and the security server's own
 * internal TLS certificate, which the information systems pin.
 */
import { call, download, upload, type Role } from '../api.ts';

export type ConnectionType = 'HTTP' | 'HTTPS' | 'HTTPS_NO_AUTH';
export const CONNECTION_TYPES: readonly ConnectionType[] = ['HTTP', 'HTTPS', 'HTTPS_NO_AUTH'];

/** A TLS certificate as the API shows it (src/admin/server-admin.ts TlsCertificateView). */
export interface TlsCertificate {
  /** SHA-256 of the DER, upper-case hex. */
  readonly hash: string;
  readonly subject: string;
  readonly issuer: string;
  readonly notAfter: string;
}

/** GET /clients's items (src/admin/server-admin.ts ClientView). */
export interface Client {
  readonly id: string;
  /** SAVED, REGISTRATION_IN_PROGRESS, REGISTERED, DISABLING_IN_PROGRESS, DISABLED, ENABLING_IN_PROGRESS, DELETION_IN_PROGRESS, GLOBAL_ERROR. */
  readonly status: string;
  readonly connectionType: ConnectionType;
  readonly registered: boolean;
  readonly owner: boolean;
  readonly memberName?: string;
  readonly tlsCertificates: readonly TlsCertificate[];
}

/** The roles api-routes.ts gives the clients' changes. */
export const REGISTRATION_OFFICER: readonly Role[] = ['XROAD_REGISTRATION_OFFICER'];
export const SERVICE_ADMINISTRATOR: readonly Role[] = ['XROAD_SERVICE_ADMINISTRATOR'];

/** `LOCAL/COM/2222/SUB` (how the API shows ids) → `LOCAL:COM:2222:SUB` (how paths carry them), encoded for a path. */
export const pathId = (id: string): string => encodeURIComponent(id.replaceAll('/', ':'));

export const listClients = (): Promise<Client[]> => call<Client[]>('GET', '/clients');
export const getClient = (id: string): Promise<Client> => call<Client>('GET', `/clients/${pathId(id)}`);
export const memberClasses = (): Promise<string[]> => call<string[]>('GET', '/member-classes?current_instance=true');

export interface NewClient {
  readonly member_class: string;
  readonly member_code: string;
  readonly subsystem_code?: string;
  readonly connection_type: ConnectionType;
}

export const addClient = (client: NewClient, ignoreWarnings: boolean): Promise<Client> => call<Client>('POST', '/clients', { client, ignore_warnings: ignoreWarnings });
export const deleteClient = (id: string): Promise<void> => call<void>('DELETE', `/clients/${pathId(id)}`);

/** The management requests a client's page sends (PUT /clients/{id}/<action>). */
export type ClientRequest = 'register' | 'unregister' | 'disable' | 'enable' | 'make-owner';
export const sendClientRequest = (id: string, action: ClientRequest): Promise<void> => call<void>('PUT', `/clients/${pathId(id)}/${action}`);

export const setConnectionType = (id: string, connectionType: ConnectionType): Promise<Client> => call<Client>('PATCH', `/clients/${pathId(id)}`, { connection_type: connectionType });
export const addTlsCertificate = (id: string, file: Blob): Promise<TlsCertificate> => upload<TlsCertificate>('POST', `/clients/${pathId(id)}/tls-certificates`, file);
export const deleteTlsCertificate = (id: string, hash: string): Promise<void> => call<void>('DELETE', `/clients/${pathId(id)}/tls-certificates/${encodeURIComponent(hash)}`);

/** GET /system/certificate: the internal TLS certificate information systems see (the reference's CertificateDetails, of which the page shows these). */
export interface SystemCertificate {
  readonly hash: string;
  readonly subject_distinguished_name: string;
  readonly not_after?: string;
}

export const systemCertificate = (): Promise<SystemCertificate> => call<SystemCertificate>('GET', '/system/certificate');
/** The reference's certs.tar.gz: cert.pem and cert.cer. */
export const exportSystemCertificate = (): Promise<void> => download('/system/certificate/export', 'certs.tar.gz');
/** Who may export it (api-routes.ts: every role but the observer). */
export const EXPORT_CERTIFICATE: readonly Role[] = ['XROAD_SECURITY_OFFICER', 'XROAD_SYSTEM_ADMINISTRATOR', 'XROAD_SERVICE_ADMINISTRATOR', 'XROAD_REGISTRATION_OFFICER'];
