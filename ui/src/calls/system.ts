/**
 * The calls of Settings → System parameters, Settings → Internal TLS certificate and Diagnostics
 * (docs/admin-api.md): timestamping services, the configuration anchor, the server's address and
 * maintenance mode, the internal TLS certificate, and the diagnostics' statuses.
 */
import { call, download, upload, type Role } from '../api.ts';

// --- roles, as src/admin/api-routes.ts gives them ------------------------------------------------
export const TSP_CHANGE: readonly Role[] = ['XROAD_SYSTEM_ADMINISTRATOR'];
export const ANCHOR_VIEW: readonly Role[] = ['XROAD_SECURITY_OFFICER', 'XROAD_SYSTEM_ADMINISTRATOR', 'XROAD_SECURESERVER_OBSERVER'];
export const ANCHOR_CHANGE: readonly Role[] = ['XROAD_SECURITY_OFFICER', 'XROAD_SYSTEM_ADMINISTRATOR'];
/** Server address and maintenance mode: viewed and changed by the system administrator only. */
export const SERVER_ADMIN: readonly Role[] = ['XROAD_SYSTEM_ADMINISTRATOR'];
export const TLS_EXPORT: readonly Role[] = ['XROAD_SECURITY_OFFICER', 'XROAD_SYSTEM_ADMINISTRATOR', 'XROAD_SERVICE_ADMINISTRATOR', 'XROAD_REGISTRATION_OFFICER'];
export const TLS_CHANGE: readonly Role[] = ['XROAD_SECURITY_OFFICER', 'XROAD_SYSTEM_ADMINISTRATOR'];
export const DIAGNOSTICS_VIEW: readonly Role[] = ['XROAD_SYSTEM_ADMINISTRATOR', 'XROAD_SECURESERVER_OBSERVER'];

// --- timestamping services -----------------------------------------------------------------------
export interface Tsa {
  readonly name: string;
  readonly url: string;
}
export const configuredTsas = (): Promise<Tsa[]> => call('GET', '/system/timestamping-services');
export const approvedTsas = (): Promise<Tsa[]> => call('GET', '/timestamping-services');
export const addTsa = (tsa: Tsa): Promise<Tsa> => call('POST', '/system/timestamping-services', tsa);
export const deleteTsa = (tsa: Tsa): Promise<void> => call('POST', '/system/timestamping-services/delete', tsa);

// --- the configuration anchor --------------------------------------------------------------------
export interface Anchor {
  /** SHA-224 of the file, upper-case hex. */
  readonly hash: string;
  readonly created_at: string | null;
}
export const anchor = (): Promise<Anchor> => call('GET', '/system/anchor');
export const downloadAnchor = (): Promise<void> => download('/system/anchor/download', 'configuration_anchor.xml');
export const previewAnchor = (file: Blob): Promise<Anchor> => upload('POST', '/system/anchor/previews', file);
export const replaceAnchor = (file: Blob): Promise<Anchor> => upload('PUT', '/system/anchor', file);

// --- the server's address and maintenance mode ---------------------------------------------------
export interface ServerAddress {
  readonly current_address: { readonly address: string | null };
  readonly requested_change?: { readonly address: string };
}
export const serverAddress = (): Promise<ServerAddress> => call('GET', '/system/server-address');
export const changeServerAddress = (address: string): Promise<void> => call('PUT', '/system/server-address', { address });
export interface MaintenanceMode {
  readonly status: 'ENABLED_MAINTENANCE_MODE' | 'DISABLED_MAINTENANCE_MODE';
  readonly message?: string;
}
export const maintenanceMode = (): Promise<MaintenanceMode> => call('GET', '/system/maintenance-mode');
export const enableMaintenanceMode = (message: string): Promise<void> => call('PUT', '/system/maintenance-mode/enable', message ? { message } : {});
export const disableMaintenanceMode = (): Promise<void> => call('PUT', '/system/maintenance-mode/disable');

// --- the internal TLS certificate ----------------------------------------------------------------
/** The reference's CertificateDetails (src/certificates/certificate-details.ts). */
export interface CertificateDetails {
  readonly hash: string;
  readonly subject_distinguished_name: string;
  readonly issuer_distinguished_name: string;
  readonly subject_alternative_names: string | null;
  readonly not_before: string;
  readonly not_after: string;
  readonly serial: string;
  readonly version: number;
  readonly signature_algorithm: string;
  readonly public_key_algorithm: string;
  readonly rsa_public_key_modulus?: string;
  readonly ec_public_parameters?: string;
  readonly key_usages: readonly string[];
}
export const systemCertificate = (): Promise<CertificateDetails> => call('GET', '/system/certificate');
export const exportSystemCertificate = (): Promise<void> => download('/system/certificate/export', 'certs.tar.gz');
export const generateSystemCertificate = (): Promise<CertificateDetails> => call('POST', '/system/certificate');
/** A CSR (PKCS#10, DER) for the internal key with the subject `name` (`C=FI, O=Org, CN=host`), saved as a .p10 file. */
export const downloadSystemCsr = (name: string): Promise<void> => download('/system/certificate/csr', 'internal_tls_cert_request.p10', { name });
export const importSystemCertificate = (file: Blob): Promise<CertificateDetails> => upload('POST', '/system/certificate/import', file);

// --- diagnostics ---------------------------------------------------------------------------------
export type StatusClass = 'OK' | 'WAITING' | 'FAIL' | 'WARNING';
export interface DiagnosticError {
  readonly code: string;
  readonly message: string;
}
export interface GlobalConfStatus {
  readonly status_class: StatusClass;
  readonly prev_update_at: string | null;
  readonly next_update_at: string | null;
  readonly last_successful_url?: string;
  readonly error?: DiagnosticError;
}
export interface TsaStatus {
  readonly name: string;
  readonly url: string;
  readonly status_class: StatusClass;
  readonly prev_update_at: string | null;
  readonly error?: DiagnosticError;
}
export interface CaOcspStatus {
  readonly distinguished_name: string;
  readonly ocsp_responders: readonly { url: string; status_class: StatusClass; prev_update_at: string | null; next_update_at: string | null; error?: DiagnosticError }[];
}
export interface CertificateExpiry {
  readonly hash: string;
  readonly subject: string;
  readonly key_usage: 'SIGNING' | 'AUTHENTICATION' | null;
  readonly state: string;
  readonly not_after: string;
  readonly days_left: number;
  readonly status_class: StatusClass;
  readonly ocsp_status: string;
}
export const globalConfStatus = (): Promise<GlobalConfStatus> => call('GET', '/diagnostics/globalconf');
export const tsaStatuses = (): Promise<TsaStatus[]> => call('GET', '/diagnostics/timestamping-services');
export const ocspStatuses = (): Promise<CaOcspStatus[]> => call('GET', '/diagnostics/ocsp-responders');
export const certificateExpiry = (): Promise<CertificateExpiry[]> => call('GET', '/diagnostics/certificate-expiry');
