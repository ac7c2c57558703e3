/** API keys of the admin API (docs/admin-api.md "API keys"): a system administrator's, in a login session. */
import { call, type Role } from '../api.ts';

/** GET /api-keys's items: never the key itself. */
export interface ApiKey {
  readonly id: string;
  readonly name?: string;
  readonly roles: Role[];
  readonly createdAt: string;
}

/** POST /api-keys's answer: the key, this once. */
export interface CreatedApiKey {
  readonly id: string;
  readonly key: string;
  readonly roles: Role[];
}

export const listApiKeys = (): Promise<ApiKey[]> => call<ApiKey[]>('GET', '/api-keys');
export const createApiKey = (roles: readonly Role[]): Promise<CreatedApiKey> => call<CreatedApiKey>('POST', '/api-keys', roles);
export const updateApiKey = (id: string, roles: readonly Role[]): Promise<ApiKey> => call<ApiKey>('PUT', `/api-keys/${encodeURIComponent(id)}`, roles);
export const revokeApiKey = (id: string): Promise<void> => call<void>('DELETE', `/api-keys/${encodeURIComponent(id)}`);
