/** The clients' calls (docs/admin-api.md "Clients"): GET /clients and the client views' fields the pages use. */
import { call } from '../api.ts';

/** GET /clients's items (src/admin/server-admin.ts ClientView). */
export interface Client {
  readonly id: string;
  readonly status: string;
  readonly connectionType: string;
}

export const listClients = (): Promise<Client[]> => call<Client[]>('GET', '/clients');
