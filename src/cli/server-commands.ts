/**
 * The administrator's commands that go through ServerAdmin — the same service the admin REST API
 * calls: `xrd server init|status`, `xrd tsp …`, `xrd cert register`, `xrd client …`. MEMBER_01 can
 * be run with these and the signer commands alone (docs/admin-api.md shows both ways).
 */
import { readFileSync } from 'node:fs';
import { ServerAdmin } from '../admin/server-admin.ts';
import { globalConfReader } from '../globalconf/global-conf.ts';
import { createLogger } from '../platform/logger.ts';
import type { ConnectionType } from '../serverconf/model.ts';
import { databaseUrl } from './options.ts';
import { UsageError } from './usage-error.ts';

export interface ServerCommandContext {
  readonly proxyDataDir: string;
  readonly globalConfDir: string;
  readonly socketPath: string;
  readonly json: boolean;
  /** The token PIN from --pin-file / --pin-env / the prompt, or undefined when none was given. */
  readonly readPin: () => Promise<string | undefined>;
}

type Values = Record<string, string | boolean | undefined>;


export const SERVER_USAGE = `  xrd server init --owner CLASS/CODE --server-code CODE [--pin-file F | --pin-env VAR] [--ignore-warnings]
                                    initialise this server (owner, server code; the blank token with the PIN)
  xrd server status                 initialisation status
  xrd tsp list [--approved] | add --name N --url U | delete --url U    timestamping services this server uses
  xrd cert register <hash> --address HOST   send the auth certificate's registration request to the central server
  xrd cert unregister <hash>        send its deletion request (authCertDeletion)
  xrd server address [NEW-ADDRESS]  this server's address in global configuration; with one, send addressChange
  xrd server maintenance [enable [--message M] | disable]   maintenance mode (maintenanceModeEnable/Disable)
  xrd client list | show <id> | connection-type <id> HTTP|HTTPS|HTTPS_NO_AUTH
  xrd client add CLASS/CODE[/SUBSYSTEM] [--connection-type T] [--ignore-warnings] | delete <id>
  xrd client register|unregister|disable|enable|make-owner <id>   management requests (pr-mserv) through this
        server's client proxy (--client-proxy-url, default https://127.0.0.1:8443)
  xrd client tls-cert add <id> --cert F | tls-cert delete <id> <sha256>     information systems' TLS certificates
        (these take --data-dir of the proxy, --socket of the signer and --conf)`;

/** True when the command is one of these groups; the caller falls back to the signer commands otherwise. */
export function isServerCommand(group: string, command: string | undefined): boolean {
  return group === 'server' || group === 'tsp' || group === 'client' || (group === 'cert' && (command === 'register' || command === 'unregister'));
}

export async function serverCommand(group: string, command: string | undefined, rest: string[], values: Values, ctx: ServerCommandContext): Promise<number> {
  const clientProxyUrl = typeof values['client-proxy-url'] === 'string' ? values['client-proxy-url'] : undefined;
  const admin = new ServerAdmin({ proxyDataDir: ctx.proxyDataDir, databaseUrl: databaseUrl(), signerSocket: ctx.socketPath, globalConf: globalConfReader(ctx.globalConfDir), logger: createLogger('admin'), clientProxyUrl });
  const out = (json: unknown, human: string): number => {
    process.stdout.write(ctx.json ? `${JSON.stringify(json, null, 2)}\n` : `${human}\n`);
    return 0;
  };
  const need = (name: string): string => {
    const v = values[name];
    if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
    return v;
  };
  const arg = (i: number, what: string): string => {
    if (!rest[i]) throw new UsageError(`missing ${what}`);
    return rest[i]!;
  };
  try {
    // Client states follow global configuration also where no admin API runs to do it.
    if (group === 'client') await admin.syncWithGlobalConf().catch(() => undefined);
    switch (`${group} ${command ?? ''}`) {
      case 'server init': {
        const [memberClass, memberCode, ...extra] = need('owner').split('/');
        if (!memberClass || !memberCode || extra.length) throw new UsageError('--owner is CLASS/CODE, e.g. COM/4444');
        const status = await admin.initialize({ ownerMemberClass: memberClass, ownerMemberCode: memberCode, serverCode: need('server-code'), softwareTokenPin: await ctx.readPin(), ignoreWarnings: values['ignore-warnings'] === true });
        return out(status, `initialised as ${status.serverId}; token ${status.softwareTokenInitStatus.toLowerCase().replace('_', ' ')}`);
      }
      case 'server status': {
        const s = await admin.initializationStatus();
        return out(s, [`server: ${s.serverId ?? 'not initialised'}`, `global configuration: ${s.anchorImported ? 'available' : 'missing'}`, `token: ${s.softwareTokenInitStatus.toLowerCase()}`].join('\n'));
      }
      case 'tsp list': {
        const list = values.approved ? admin.approvedTimestampingServices() : await admin.timestampingServices();
        return out(list, list.map((t) => `${t.name}  ${t.url}`).join('\n') || '(none)');
      }
      case 'tsp add': {
        const added = await admin.addTimestampingService({ name: need('name'), url: need('url') });
        return out(added, `timestamping service ${added.name} (${added.url}) added`);
      }
      case 'tsp delete': {
        const url = need('url');
        await admin.deleteTimestampingService({ name: '', url });
        return out({ url }, `timestamping service ${url} removed`);
      }
      case 'cert register': {
        const { requestId, cert } = await admin.registerAuthCert(arg(0, '<hash>'), need('address'));
        return out({ requestId, cert }, `registration request ${requestId} sent; certificate ${cert.hash} is '${cert.status}'`);
      }
      case 'cert unregister': {
        const { requestId, cert } = await admin.unregisterAuthCert(arg(0, '<hash>'));
        return out({ requestId, cert }, `deletion request ${requestId} sent; certificate ${cert.hash} is '${cert.status}'`);
      }
      case 'server address': {
        if (rest[0] === undefined) {
          const a = await admin.serverAddress();
          return out(a, `${a.current_address.address ?? '(not in global configuration)'}${a.requested_change ? ` (change to ${a.requested_change.address} requested)` : ''}`);
        }
        const { requestId } = await admin.changeServerAddress(rest[0]);
        return out({ requestId, address: rest[0] }, `address change request ${requestId} sent: ${rest[0]}`);
      }
      case 'server maintenance': {
        if (rest[0] === undefined) {
          const m = await admin.maintenanceMode();
          return out(m, `${m.status === 'ENABLED_MAINTENANCE_MODE' ? 'in maintenance mode' : 'not in maintenance mode'}${m.message ? `: ${m.message}` : ''}`);
        }
        if (rest[0] !== 'enable' && rest[0] !== 'disable') throw new UsageError('server maintenance [enable [--message M] | disable]');
        const message = typeof values.message === 'string' ? values.message : undefined;
        const { requestId } = await admin.setMaintenanceMode(rest[0] === 'enable', message);
        return out({ requestId }, `maintenance mode ${rest[0]} request ${requestId} sent`);
      }
      case 'client list': {
        const clients = await admin.clients();
        return out(clients, clients.map((c) => `${c.id}  ${c.status}  ${c.connectionType}  ${c.tlsCertificates.length} TLS certificate(s)`).join('\n'));
      }
      case 'client add': {
        const [memberClass, memberCode, subsystemCode, ...extra] = arg(0, 'CLASS/CODE[/SUBSYSTEM]').split('/');
        if (!memberClass || !memberCode || extra.length) throw new UsageError('the client is CLASS/CODE[/SUBSYSTEM], e.g. COM/2222/NEWSUB');
        const connectionType = typeof values['connection-type'] === 'string' ? (values['connection-type'] as ConnectionType) : undefined;
        const c = await admin.addClient({ memberClass, memberCode, ...(subsystemCode ? { subsystemCode } : {}), ...(connectionType ? { connectionType } : {}), ignoreWarnings: values['ignore-warnings'] === true });
        return out(c, `${c.id} added (${c.status})`);
      }
      case 'client delete': {
        const id = arg(0, '<client id>');
        await admin.deleteClient(id);
        return out({ clientId: id }, `${id} deleted`);
      }
      case 'client register':
      case 'client unregister':
      case 'client disable':
      case 'client enable':
      case 'client make-owner': {
        const id = arg(0, '<client id>');
        const send = { register: admin.registerClient, unregister: admin.unregisterClient, disable: admin.disableClient, enable: admin.enableClient, 'make-owner': admin.makeOwner }[command as 'register'];
        const { requestId } = await send.call(admin, id);
        const status = command === 'make-owner' ? undefined : (await admin.client(id)).status;
        return out({ requestId, clientId: id, ...(status ? { status } : {}) }, `${command} request ${requestId} sent for ${id}${status ? `; it is ${status}` : ''}`);
      }
      case 'client show': {
        const c = await admin.client(arg(0, '<client id>'));
        return out(c, [`${c.id}  ${c.status}  ${c.connectionType}`, ...c.tlsCertificates.map((t) => `  ${t.hash}  ${t.subject}  until ${t.notAfter}`)].join('\n'));
      }
      case 'client connection-type': {
        const c = await admin.setConnectionType(arg(0, '<client id>'), arg(1, 'HTTP|HTTPS|HTTPS_NO_AUTH'));
        return out(c, `${c.id} connects over ${c.connectionType}`);
      }
      case 'client tls-cert': {
        const id = arg(1, '<client id>');
        if (rest[0] === 'add') {
          const added = await admin.addTlsCertificate(id, readFileSync(need('cert')));
          return out(added, `TLS certificate ${added.hash} (${added.subject}) added to ${id}`);
        }
        if (rest[0] === 'delete') {
          await admin.deleteTlsCertificate(id, arg(2, '<sha256>'));
          return out({ clientId: id, hash: rest[2] }, `TLS certificate ${rest[2]} removed from ${id}`);
        }
        throw new UsageError('client tls-cert add|delete');
      }
      default:
        throw new UsageError(`unknown command "${group} ${command ?? ''}"`);
    }
  } finally {
    await admin.close();
  }
}
