/**
 * The admin API's keys (the reference's ApiKeysApi behind its /api/v1; the CLI's `xrd admin
 * api-key` uses serverconf/api-keys.ts directly): list, read, create, change roles, revoke, each change audited.
 * ServerAdmin reaches it as `admin.apiKeys`.
 */
import { ApiKeyStore, apiKeysFile, type ApiKeyView, type Role } from '../serverconf/api-keys.ts';

/** What ApiKeysAdmin needs from ServerAdmin: where the key file is and the audit log. */
export interface ApiKeysContext {
  /** The proxy's data directory: the keys are in its `admin/api-keys.json`. */
  readonly proxyDataDir: string;
  /** Records a change in the audit log under the administration's actor. */
  audit(action: string, detail: Record<string, unknown>): Promise<void>;
}

export class ApiKeysAdmin {
  constructor(private readonly context: ApiKeysContext) {}

  /** `<proxy data dir>/admin/api-keys.json`, the file the admin API authenticates keys with. */
  private apiKeyStore(): ApiKeyStore {
    return new ApiKeyStore(apiKeysFile(this.context.proxyDataDir));
  }

  list(): ApiKeyView[] {
    return this.apiKeyStore().list();
  }

  /** @throws ApiKeyNotFound */
  get(id: string): ApiKeyView {
    return this.apiKeyStore().get(id);
  }

  /** The key itself is in the answer, and nowhere else ever again. @throws InvalidApiKeyRoles */
  async create(roles: readonly Role[]): Promise<{ id: string; key: string; roles: Role[] }> {
    const created = this.apiKeyStore().create(roles);
    await this.context.audit('API_KEY_CREATE', { id: created.id, roles: created.roles.join(', ') });
    return created;
  }

  /** @throws ApiKeyNotFound, InvalidApiKeyRoles */
  async update(id: string, roles: readonly Role[]): Promise<ApiKeyView> {
    const updated = this.apiKeyStore().updateRoles(id, roles);
    await this.context.audit('API_KEY_UPDATE', { id, roles: updated.roles.join(', ') });
    return updated;
  }

  /** @throws ApiKeyNotFound */
  async revoke(id: string): Promise<void> {
    this.apiKeyStore().revoke(id);
    await this.context.audit('API_KEY_REMOVE', { id });
  }
}
