/**
 * Tokens, keys, CSRs and certificates (docs/admin-api.md "Tokens, keys and certificates") and the
 * server's initialisation: the calls the keys page and the initialisation wizard make, with the
 * fields of the views they show (src/admin/server-admin.ts TokenWithKeysView and its parts).
 */
import { call, download, upload } from '../api.ts';

export type KeyUsage = 'SIGNING' | 'AUTHENTICATION';
export type OcspStatus = 'DISABLED' | 'EXPIRED' | 'OCSP_RESPONSE_GOOD' | 'OCSP_RESPONSE_REVOKED' | 'OCSP_RESPONSE_UNKNOWN';

export interface Certificate {
  readonly hash: string;
  readonly keyId: string;
  readonly memberId: string | null;
  /** saved, registration in progress, registered, deletion in progress, global error */
  readonly status: string;
  readonly active: boolean;
  readonly subject: string;
  readonly issuer: string;
  readonly notAfter: string;
  readonly ocspStatus: OcspStatus | null;
}

export interface Csr {
  readonly csrId: string;
  readonly keyId: string;
  readonly usage: string;
  readonly memberId: string | null;
  readonly subject: string;
  readonly createdAt: string;
}

export interface Key {
  readonly keyId: string;
  readonly tokenId: string;
  readonly usage: KeyUsage | null;
  readonly friendlyName: string | null;
  readonly label: string;
  readonly algorithm: string;
  readonly size: string;
  readonly available: boolean;
  readonly certs: readonly Certificate[];
  readonly csrs: readonly Csr[];
}

export interface Token {
  readonly tokenId: string;
  readonly friendlyName: string | null;
  readonly label: string;
  readonly moduleType: string;
  readonly available: boolean;
  /** Logged in. */
  readonly active: boolean;
  /** OK, NOT_INITIALIZED, … (the signer's token status) */
  readonly status: string;
  readonly readOnly: boolean;
  readonly minPinLength: number;
  readonly maxPinLength: number;
  readonly keys?: readonly Key[];
}

/** What a CSR names: the member (signing) and extra subject fields (`C=FI, O=Org`). */
export interface CsrRequest {
  readonly usage: KeyUsage;
  readonly memberId?: string;
  readonly subject?: string;
}

const csrBody = (r: CsrRequest) => ({ key_usage_type: r.usage, csr_format: 'PEM', ...(r.memberId ? { member_id: r.memberId } : {}), ...(r.subject ? { subject_field_values: r.subject } : {}) });
const tokenPath = (id: string) => `/tokens/${encodeURIComponent(id)}`;
const certPath = (hash: string) => `/token-certificates/${encodeURIComponent(hash)}`;

export const listTokens = (): Promise<Token[]> => call<Token[]>('GET', '/tokens');
/** The PIN goes in this one request and is kept nowhere by the page. */
export const logInToken = (id: string, pin: string): Promise<Token> => call<Token>('PUT', `${tokenPath(id)}/login`, { password: pin });
export const logOutToken = (id: string): Promise<Token> => call<Token>('PUT', `${tokenPath(id)}/logout`);

export const addKeyWithCsr = (tokenId: string, label: string, csr: CsrRequest): Promise<{ key: Key; csr: Csr }> =>
  call('POST', `${tokenPath(tokenId)}/keys-with-csrs`, { ...(label ? { key_label: label } : {}), csr_generate_request: csrBody(csr) });
export const generateCsr = (keyId: string, csr: CsrRequest): Promise<Csr> => call('POST', `/keys/${encodeURIComponent(keyId)}/csrs`, csrBody(csr));
/** The browser saves the CSR under the name the API gives it (sign_csr_…_member_….pem). */
export const downloadCsr = (csr: Csr): Promise<void> => download(`/keys/${encodeURIComponent(csr.keyId)}/csrs/${encodeURIComponent(csr.csrId)}?csr_format=PEM`, `${csr.usage === 'AUTHENTICATION' ? 'auth' : 'sign'}_csr.pem`);
export const deleteCsr = (csr: Csr): Promise<void> => call('DELETE', `/keys/${encodeURIComponent(csr.keyId)}/csrs/${encodeURIComponent(csr.csrId)}`);
export const deleteKey = (keyId: string): Promise<void> => call('DELETE', `/keys/${encodeURIComponent(keyId)}`);

export const importCertificate = (file: Blob): Promise<Certificate> => upload<Certificate>('POST', '/token-certificates', file);
export const registerCertificate = (hash: string, address: string): Promise<{ requestId: string }> => call('PUT', `${certPath(hash)}/register`, { address });
export const unregisterCertificate = (hash: string): Promise<{ requestId: string }> => call('PUT', `${certPath(hash)}/unregister`);
export const activateCertificate = (hash: string): Promise<Certificate> => call('PUT', `${certPath(hash)}/activate`);
export const disableCertificate = (hash: string): Promise<Certificate> => call('PUT', `${certPath(hash)}/disable`);
export const deleteCertificate = (hash: string): Promise<void> => call('DELETE', certPath(hash));

/** GET /initialization/status (the reference's InitializationStatus, our field names). */
export interface InitializationStatus {
  readonly anchorImported: boolean;
  readonly serverCodeInitialized: boolean;
  readonly serverOwnerInitialized: boolean;
  readonly softwareTokenInitStatus: 'INITIALIZED' | 'NOT_INITIALIZED' | 'UNKNOWN';
  readonly serverId?: string;
}

export const initializationStatus = (): Promise<InitializationStatus> => call('GET', '/initialization/status');
export const initialize = (r: { memberClass: string; memberCode: string; serverCode: string; pin?: string; ignoreWarnings?: boolean }): Promise<InitializationStatus> =>
  call('POST', '/initialization', {
    owner_member_class: r.memberClass,
    owner_member_code: r.memberCode,
    security_server_code: r.serverCode,
    ...(r.pin !== undefined ? { software_token_pin: r.pin } : {}),
    ...(r.ignoreWarnings ? { ignore_warnings: true } : {}),
  });
/** The first configuration anchor (POST /system/anchor, the reference's initial upload). */
export const uploadAnchor = (file: Blob): Promise<unknown> => upload('POST', '/system/anchor', file);
