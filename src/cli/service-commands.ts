/**
 * A client's services from the command line, named as the reference's UI and /api/v1 name them:
 * `xrd service-description …`, `xrd service …`, `xrd endpoint …`, `xrd access …` (who may call a
 * service or endpoint), `xrd service-client …` (what one caller may call) and `xrd local-group …`.
 * Each command calls one ServicesAdmin method (`admin.services`), the same one the admin REST API's
 * route calls, so both make the same checks; changes are audited under the operating-system user.
 * Ids are the API's: clients `INST:CLASS:CODE[:SUB]`, services `<client>:<code>[.<version>]`,
 * descriptions by number, endpoints and local groups by the id their listings show.
 */
import { ServerAdmin } from '../admin/server-admin.ts';
import type { EndpointView, LocalGroupView, ServiceClientView, ServiceDescriptionView, ServicesAdmin, ServiceView } from '../admin/services-admin.ts';
import { globalConfReader } from '../globalconf/global-conf.ts';
import { createLogger } from '../platform/logger.ts';
import { table } from './table.ts';
import { databaseUrl } from './options.ts';
import { UsageError } from './usage-error.ts';

export interface ServiceCommandContext {
  /** The proxy's data directory, where the server configuration's store lives. */
  readonly proxyDataDir: string;
  readonly globalConfDir: string;
  readonly socketPath: string;
  readonly json: boolean;
}

type Values = Record<string, string | boolean | undefined>;

const GROUPS = new Set(['service-description', 'service', 'endpoint', 'access', 'service-client', 'local-group']);

/** The reference's limits, which the API's schemas also set: a service's timeout in seconds; URLs, codes, paths, notices and descriptions. */
const MAX_TIMEOUT_SECONDS = 1000;
const MAX_TEXT_LENGTH = 255;

export const SERVICE_USAGE = `  xrd service-description list <client> | show <id> | delete <id>
  xrd service-description add <client> --type WSDL|OPENAPI3|REST --url U [--service-code C] [--ignore-warnings]
                                    read the document at U (disabled until enabled; OPENAPI3 and REST need --service-code)
  xrd service-description refresh <id> [--ignore-warnings] | update <id> [--url U] [--new-service-code C] [--ignore-warnings]
  xrd service-description enable <id> | disable <id> [--notice TEXT]
  xrd service list <client> | show <service> | update <service> [--url U] [--timeout S] [--ssl-auth true|false]
                                    [--url-all] [--timeout-all] [--ssl-auth-all]   (the same for every service of its description)
  xrd endpoint list <service> | add <service> --method M --path P | show <endpoint> | update <endpoint> [--method M] [--path P]
  xrd endpoint delete <endpoint>   REST endpoints; M is *, GET, POST, …; P a path, * for any segment
  xrd access list <service> | grant <service> <subject>… | revoke <service> <subject>…   who may call the service
  xrd access list|grant|revoke --endpoint <endpoint> [<subject>…]                      who may call one endpoint
  xrd service-client list <client> | show <client> <subject>     who may call the client's services; what one may call
  xrd service-client grant|revoke <client> <subject> <service-code>…
  xrd local-group list <client> | add <client> --code C --description D | show <group> | update <group> --description D
  xrd local-group delete <group> | add-members <group> <member>… | remove-members <group> <member>…
        (a client is INST:CLASS:CODE[:SUB], a service <client>:<code>[.<version>], a subject a subsystem INST:CLASS:CODE:SUB,
         a global group INST:code or a local group's id; ids of descriptions, endpoints and groups are in the listings;
         these take --data-dir of the proxy and --conf, and need no signer)`;

export function isServiceCommand(group: string): boolean {
  return GROUPS.has(group);
}

/** Runs one command; usage errors print this file's usage and give exit code 2, coded errors are the caller's to report. */
export async function serviceCommand(group: string, command: string | undefined, rest: string[], values: Values, ctx: ServiceCommandContext): Promise<number> {
  const admin = new ServerAdmin({ proxyDataDir: ctx.proxyDataDir, databaseUrl: databaseUrl(), signerSocket: ctx.socketPath, globalConf: globalConfReader(ctx.globalConfDir), logger: createLogger('admin') });
  try {
    return await run(admin.services, `${group} ${command ?? ''}`, new Args(rest, values), (json, human) => {
      process.stdout.write(ctx.json ? `${JSON.stringify(json, null, 2)}\n` : `${human}\n`);
      return 0;
    });
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${SERVICE_USAGE}\n`);
    return 2;
  } finally {
    await admin.close();
  }
}

/** The words after the command and the flags, read with usage errors that name what is missing. */
class Args {
  constructor(
    private readonly rest: string[],
    private readonly values: Values,
  ) {}

  at(i: number, what: string): string {
    const v = this.rest[i];
    if (!v) throw new UsageError(`missing ${what}`);
    return v;
  }

  /** Every word from `i` on, at least one. */
  from(i: number, what: string): string[] {
    this.at(i, what);
    return this.rest.slice(i);
  }

  flag(name: string): string | undefined {
    const v = this.values[name];
    if (typeof v !== 'string') return undefined;
    if (v.length > MAX_TEXT_LENGTH) throw new UsageError(`--${name} is at most ${MAX_TEXT_LENGTH} characters`);
    return v;
  }

  need(name: string): string {
    const v = this.flag(name);
    if (v === undefined || v === '') throw new UsageError(`--${name} is required`);
    return v;
  }

  on(name: string): boolean {
    return this.values[name] === true;
  }
}

type Out = (json: unknown, human: string) => number;

async function run(s: ServicesAdmin, command: string, a: Args, out: Out): Promise<number> {
  switch (command) {
    // --- Service descriptions ---------------------------------------------------------------------
    case 'service-description list': {
      const list = await s.serviceDescriptions(a.at(0, '<client>'));
      return out(list, list.map(describeDescription).join('\n') || 'no service descriptions');
    }
    case 'service-description show': {
      const d = await s.serviceDescription(a.at(0, '<id>'));
      return out(d, describeDescription(d));
    }
    case 'service-description add': {
      const type = a.need('type').toUpperCase();
      if (type !== 'WSDL' && type !== 'OPENAPI3' && type !== 'REST') throw new UsageError('--type is WSDL, OPENAPI3 or REST');
      const serviceCode = a.flag('service-code');
      if (type !== 'WSDL' && !serviceCode) throw new UsageError(`--service-code is required for ${type}`);
      const d = await s.addServiceDescription(a.at(0, '<client>'), { type, url: a.need('url'), restServiceCode: serviceCode, ignoreWarnings: a.on('ignore-warnings') });
      return out(d, `added service description ${d.id} (disabled until \`xrd service-description enable ${d.id}\`)\n${describeDescription(d)}`);
    }
    case 'service-description refresh': {
      const d = await s.refreshServiceDescription(a.at(0, '<id>'), { ignoreWarnings: a.on('ignore-warnings') });
      return out(d, `refreshed\n${describeDescription(d)}`);
    }
    case 'service-description update': {
      const id = a.at(0, '<id>');
      const url = a.flag('url');
      const newServiceCode = a.flag('new-service-code');
      if (url === undefined && newServiceCode === undefined) throw new UsageError('--url or --new-service-code is required');
      const current = await s.serviceDescription(id);
      if (current.type === 'WSDL' && newServiceCode !== undefined) throw new UsageError('--new-service-code is for OPENAPI3 and REST descriptions: a WSDL names its services');
      const d = await s.updateServiceDescription(id, { type: current.type, url: url ?? current.url, newRestServiceCode: newServiceCode, ignoreWarnings: a.on('ignore-warnings') });
      return out(d, `updated\n${describeDescription(d)}`);
    }
    case 'service-description enable': {
      const id = a.at(0, '<id>');
      await s.enableServiceDescription(id);
      return out(await s.serviceDescription(id), `service description ${id} enabled`);
    }
    case 'service-description disable': {
      const id = a.at(0, '<id>');
      await s.disableServiceDescription(id, a.flag('notice'));
      return out(await s.serviceDescription(id), `service description ${id} disabled`);
    }
    case 'service-description delete': {
      const id = a.at(0, '<id>');
      await s.deleteServiceDescription(id);
      return out({ id, deleted: true }, `service description ${id} deleted with its services, their endpoints and access rights`);
    }

    // --- Services and endpoints -------------------------------------------------------------------
    case 'service list': {
      const services = (await s.serviceDescriptions(a.at(0, '<client>'))).flatMap((d) => d.services);
      return out(services, services.length ? table(['SERVICE', 'URL', 'TIMEOUT', 'TLS AUTH', 'TITLE'], services.map(serviceRow)) : 'no services');
    }
    case 'service show': {
      const v = await s.service(a.at(0, '<service>'));
      return out(v, describeService(v, ''));
    }
    case 'service update': {
      const id = a.at(0, '<service>');
      if (!['url', 'timeout', 'ssl-auth'].some((f) => a.flag(f) !== undefined) && !['url-all', 'timeout-all', 'ssl-auth-all'].some((f) => a.on(f))) {
        throw new UsageError('--url, --timeout, --ssl-auth or one of the --…-all flags is required');
      }
      const current = await s.service(id);
      const url = a.flag('url') ?? current.url;
      const v = await s.updateService(id, {
        url,
        timeoutSeconds: timeoutOf(a.flag('timeout')) ?? current.timeout,
        // Kept unless given; an http URL has none (as the reference's form, which greys it out).
        sslAuthentication: booleanOf(a.flag('ssl-auth'), '--ssl-auth') ?? (url.startsWith('https://') && current.ssl_auth),
        urlAll: a.on('url-all'),
        timeoutAll: a.on('timeout-all'),
        sslAuthenticationAll: a.on('ssl-auth-all'),
      });
      return out(v, `updated\n${describeService(v, '')}`);
    }
    case 'endpoint list': {
      const endpoints = (await s.service(a.at(0, '<service>'))).endpoints;
      return out(endpoints, endpoints.length ? table(['ENDPOINT', 'METHOD', 'PATH', 'ORIGIN'], endpoints.map(endpointRow)) : 'no endpoints');
    }
    case 'endpoint add': {
      const e = await s.addEndpoint(a.at(0, '<service>'), a.need('method').toUpperCase(), a.need('path'));
      return out(e, `endpoint ${e.method} ${e.path} added: ${e.id}`);
    }
    case 'endpoint show': {
      const e = await s.endpoint(a.at(0, '<endpoint>'));
      return out(e, table(['ENDPOINT', 'METHOD', 'PATH', 'ORIGIN'], [endpointRow(e)]));
    }
    case 'endpoint update': {
      const id = a.at(0, '<endpoint>');
      const method = a.flag('method');
      const path = a.flag('path');
      if (method === undefined && path === undefined) throw new UsageError('--method or --path is required');
      const current = await s.endpoint(id);
      const e = await s.updateEndpoint(id, { method: method?.toUpperCase() ?? current.method, path: path ?? current.path });
      return out(e, `endpoint is now ${e.method} ${e.path}: ${e.id}`);
    }
    case 'endpoint delete': {
      const id = a.at(0, '<endpoint>');
      await s.deleteEndpoint(id);
      return out({ id, deleted: true }, `endpoint ${id} deleted with its access rights`);
    }

    // --- Access rights on a service or an endpoint ------------------------------------------------
    case 'access list': {
      const endpoint = a.flag('endpoint');
      const list = endpoint !== undefined ? await s.endpointServiceClients(endpoint) : await s.serviceClients(a.at(0, '<service>'));
      return out(list, serviceClients(list));
    }
    case 'access grant': {
      const endpoint = a.flag('endpoint');
      const list = endpoint !== undefined ? await s.addEndpointServiceClients(endpoint, a.from(0, '<subject>')) : await s.addServiceClients(a.at(0, '<service>'), a.from(1, '<subject>'));
      return out(list, `may call it now:\n${serviceClients(list)}`);
    }
    case 'access revoke': {
      const endpoint = a.flag('endpoint');
      let list: ServiceClientView[];
      if (endpoint !== undefined) {
        await s.deleteEndpointServiceClients(endpoint, a.from(0, '<subject>'));
        list = await s.endpointServiceClients(endpoint);
      } else {
        const service = a.at(0, '<service>');
        await s.deleteServiceClients(service, a.from(1, '<subject>'));
        list = await s.serviceClients(service);
      }
      return out(list, `may still call it:\n${serviceClients(list)}`);
    }

    // --- Access rights of one service client ------------------------------------------------------
    case 'service-client list': {
      const list = await s.clientServiceClients(a.at(0, '<client>'));
      return out(list, serviceClients(list));
    }
    case 'service-client show': {
      const rights = await s.serviceClientAccessRights(a.at(0, '<client>'), a.at(1, '<subject>'));
      return out(rights, rights.length ? table(['SERVICE CODE', 'SINCE', 'TITLE'], rights.map((r) => [r.service_code, r.rights_given_at, r.service_title ?? ''])) : 'may call none of the services');
    }
    case 'service-client grant': {
      const [client, subject] = [a.at(0, '<client>'), a.at(1, '<subject>')];
      const rights = await s.addServiceClientAccessRights(client, subject, a.from(2, '<service-code>'));
      return out(rights, `${subject} may now call ${rights.map((r) => r.service_code).join(', ')}`);
    }
    case 'service-client revoke': {
      const [client, subject] = [a.at(0, '<client>'), a.at(1, '<subject>')];
      const codes = a.from(2, '<service-code>');
      await s.deleteServiceClientAccessRights(client, subject, codes);
      return out({ client, subject, revoked: codes }, `${subject} may no longer call ${codes.join(', ')}`);
    }

    // --- Local groups -----------------------------------------------------------------------------
    case 'local-group list': {
      const groups = await s.localGroups(a.at(0, '<client>'));
      return out(groups, groups.length ? table(['GROUP', 'CODE', 'MEMBERS', 'DESCRIPTION'], groups.map((g) => [g.id, g.code, String(g.member_count), g.description])) : 'no local groups');
    }
    case 'local-group add': {
      const g = await s.addLocalGroup(a.at(0, '<client>'), a.need('code'), a.need('description'));
      return out(g, `local group ${g.code} added: ${g.id}`);
    }
    case 'local-group show': {
      const g = await s.localGroup(a.at(0, '<group>'));
      return out(g, describeGroup(g));
    }
    case 'local-group update': {
      const g = await s.updateLocalGroup(a.at(0, '<group>'), a.need('description'));
      return out(g, describeGroup(g));
    }
    case 'local-group delete': {
      const id = a.at(0, '<group>');
      await s.deleteLocalGroup(id);
      return out({ id, deleted: true }, `local group ${id} deleted with its access rights`);
    }
    case 'local-group add-members': {
      const id = a.at(0, '<group>');
      await s.addLocalGroupMembers(id, a.from(1, '<member>'));
      const g = await s.localGroup(id);
      return out(g, describeGroup(g));
    }
    case 'local-group remove-members': {
      const id = a.at(0, '<group>');
      await s.deleteLocalGroupMembers(id, a.from(1, '<member>'));
      const g = await s.localGroup(id);
      return out(g, describeGroup(g));
    }
    default:
      throw new UsageError(`unknown command "${command.trimEnd()}"`);
  }
}

function timeoutOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n > MAX_TIMEOUT_SECONDS) throw new UsageError(`--timeout is a whole number of seconds from 0 to ${MAX_TIMEOUT_SECONDS}, not ${value}`);
  return n;
}

function booleanOf(value: string | undefined, flag: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value !== 'true' && value !== 'false') throw new UsageError(`${flag} is true or false, not ${value}`);
  return value === 'true';
}

function describeDescription(d: ServiceDescriptionView): string {
  const state = d.disabled ? `disabled${d.disabled_notice ? ` ("${d.disabled_notice}")` : ''}` : 'enabled';
  // A SOAP service's one endpoint is its whole self (`* **`): shown for REST services only.
  const services = d.services.map((s) => describeService(d.type === 'WSDL' ? { ...s, endpoints: [] } : s, '  '));
  return [`${d.id}  ${d.type}  ${state}  ${d.url}  (client ${d.client_id}, read ${d.refreshed_at})`, ...services].join('\n');
}

function describeService(s: ServiceView, indent: string): string {
  const [, url, timeout, tls, title] = serviceRow(s);
  const endpoints = s.endpoints.map((e) => `${indent}    ${endpointRow(e).slice(1).join(' ')}  ${e.id}`);
  return [`${indent}${s.id}  ${url}  timeout ${timeout}  TLS authentication ${tls}${title ? `  "${title}"` : ''}`, ...endpoints].join('\n');
}

function serviceRow(s: ServiceView): string[] {
  return [s.id, s.url, `${s.timeout} s`, s.ssl_auth ? 'yes' : 'no', s.title ?? ''];
}

function endpointRow(e: EndpointView): string[] {
  return [e.id, e.method, e.path, e.generated ? 'generated' : 'added'];
}

function serviceClients(list: readonly ServiceClientView[]): string {
  if (list.length === 0) return 'no one';
  return table(['TYPE', 'SERVICE CLIENT', 'NAME', 'SINCE'], list.map((c) => [c.service_client_type, c.id, c.local_group_code ?? c.name ?? '', c.rights_given_at]));
}

function describeGroup(g: LocalGroupView): string {
  return [`${g.code}  "${g.description}"  ${g.member_count} member(s)  id ${g.id}`, ...g.members.map((m) => `  ${m.id}${m.member_name ? `  ${m.member_name}` : ''}  since ${m.created_at}`)].join('\n');
}
