/**
 * Who is who in a local instance: its members and the three security servers' owners and clients.
 * The default is the demo's (members 1111–4444 of class COM); tests of interoperability lay out the
 * members the reference's own test messages name (EE/BUSINESS/consumer → EE/BUSINESS/producer), so
 * those messages go through unchanged.
 */
import type { ClientId } from '../../protocol/identifiers.ts';

export interface LocalLayout {
  /** The class of every member (one is enough for a local instance), and its description. */
  readonly memberClass: string;
  readonly memberClassDescription: string;
  readonly members: readonly { readonly code: string; readonly name: string; readonly subsystems: readonly string[] }[];
  /** ss1 (127.0.0.1): its owner's member code and the clients it hosts, `CODE` or `CODE/SUBSYSTEM`. */
  readonly provider: ServerLayout;
  /** ss2 (127.0.0.2). */
  readonly consumer: ServerLayout;
  /** ss3 (127.0.0.3): blank, for its owner to register through MEMBER_01. */
  readonly joining: { readonly owner: string };
}

export interface ServerLayout {
  readonly owner: string;
  readonly clients: readonly string[];
}

export const DEFAULT_LAYOUT: LocalLayout = {
  memberClass: 'COM',
  memberClassDescription: 'Commercial',
  members: [
    { code: '1111', name: 'Provider Oy', subsystems: ['PROVIDER'] },
    { code: '2222', name: 'Client Oy', subsystems: ['CLIENT'] },
    // A second organisation on the client's security server (seed 003: a shared server).
    { code: '3333', name: 'Other Oy', subsystems: ['OTHER'] },
    // Registers a security server of its own through the management service (MEMBER_01).
    { code: '4444', name: 'New Oy', subsystems: [] },
    // The central server's owner: its MANAGEMENT subsystem provides the management services
    // (pr-mserv), hosted on ss1 as the reference hosts it on the central server's security server.
    { code: '0000', name: 'X-Road Centre', subsystems: ['MANAGEMENT'] },
  ],
  provider: { owner: '1111', clients: ['1111/PROVIDER', '0000/MANAGEMENT'] },
  consumer: { owner: '2222', clients: ['2222/CLIENT', '3333/OTHER'] },
  joining: { owner: '4444' },
};

/** `CODE` or `CODE/SUBSYSTEM` of the layout as a client identifier of `instance`. */
export function layoutClient(instance: string, layout: LocalLayout, client: string): ClientId {
  const [memberCode, subsystem] = client.split('/') as [string, string | undefined];
  return { instance, memberClass: layout.memberClass, memberCode, ...(subsystem !== undefined ? { subsystem } : {}) };
}

/** The members whose signing keys a server needs: those of the clients it hosts. */
export const signingMembers = (server: ServerLayout): string[] => [...new Set(server.clients.map((c) => c.split('/')[0]!))];
