/**
 * Who may speak for a client subsystem at the client proxy (seed 003; the reference's
 * IsAuthentication): the client must be hosted by this server, and its connection type decides
 * what the information system must show — nothing (HTTP), a TLS connection (HTTPS NO AUTH), or a
 * TLS client certificate listed among the client's internal TLS certificates (HTTPS). The last is
 * what stops organisations sharing a security server from calling through each other's subsystems.
 */
import { createHash } from 'node:crypto';
import { XrdError } from '../../platform/errors.ts';
import { javaClientId, type ClientId } from '../../protocol/identifiers.ts';
import { localClient, type ServerConf } from '../../serverconf/server-conf.ts';


export interface IsConnection {
  /** Whether the request came over TLS. */
  readonly tls: boolean;
  /** The information system's TLS client certificate (DER), if it sent one. */
  readonly clientCert?: Buffer;
  /** The certificate is this server's own internal TLS certificate: the server itself calling (management requests). */
  readonly local?: boolean;
}

/** @throws UnknownMember (not a client of this server), SslAuthenticationFailed (seed 003's texts) */
export function authenticateInformationSystem(conf: ServerConf, client: ClientId, connection: IsConnection): void {
  const local = localClient(conf, client);
  // The reference writes client ids in faults as SUBSYSTEM:INST/CLASS/CODE/SUB or MEMBER:INST/CLASS/CODE.
  const name = javaClientId(client);
  if (!local) throw new XrdError('UnknownMember', { reason: `Client '${name}' not found` }, { prefix: 'Client' });
  const failed = (reason: string) => new XrdError('SslAuthenticationFailed', { reason }, { prefix: 'Server.ClientProxy' });
  switch (local.connectionType) {
    case 'HTTP':
      return;
    case 'HTTPS_NO_AUTH':
      if (!connection.tls) throw failed(`Client (${name}) specifies HTTPS NO AUTH but client made plaintext connection`);
      return;
    case 'HTTPS': {
      if (!connection.tls || !connection.clientCert) throw failed(`Client (${name}) specifies HTTPS but did not supply TLS certificate`);
      // The reference's "do not check certificates for local TLS connections".
      if (connection.local) return;
      if (local.isCerts.length === 0) throw failed(`Client (${name}) has no IS certificates`);
      const presented = createHash('sha256').update(connection.clientCert).digest();
      if (!local.isCerts.some((der) => createHash('sha256').update(der).digest().equals(presented))) {
        throw failed(`Client (${name}) TLS certificate does not match any IS certificates`);
      }
      return;
    }
    default:
      // The store refuses any other value; should one get here, it authenticates nobody.
      throw failed(`Client (${name}) has an unknown connection type`);
  }
}
