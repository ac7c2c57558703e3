/**
 * A complete X-Road instance on loopback, for trying things out and for end-to-end tests: the test
 * PKI (CAs, OCSP responder, TSA, configuration source, management service stand-in), the provider's
 * test services, and two security servers — ss1 (member 1111, subsystem PROVIDER, at 127.0.0.1) and
 * ss2 (members 2222 and 3333, subsystems CLIENT and OTHER, at 127.0.0.2) — each with its own SoftHSM
 * token, its own signer daemon, proxy process and admin API; and ss3 (127.0.0.3), blank, for
 * member 4444 to register through MEMBER_01. With `cluster`, ss1 is two nodes behind HAProxy sharing
 * a throw-away PostgreSQL and a copied token (cluster.ts). Keys are generated on the tokens; the token PINs are
 * random, live only in this process's memory and reach only the signers (the proxies start without
 * any). Every start builds the instance afresh in `dir`. A signer, proxy or admin API that dies
 * unasked is started again (supervisor.ts); one stopped through this interface stays stopped.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadGlobalConf } from '../../globalconf/global-conf.ts';
import { XrdError } from '../../platform/errors.ts';
import type { Logger } from '../../platform/logger.ts';
import { ApiKeyStore, ROLES, apiKeysFile } from '../../serverconf/api-keys.ts';
import { UserStore, usersFile } from '../../admin/users.ts';
import { MANAGEMENT_REQUESTS } from '../../protocol/management-request.ts';
import { formatClientId, sameClientId, type ClientId } from '../../protocol/identifiers.ts';
import type { LocalClient, ServerConf } from '../../serverconf/model.ts';
import { nextServiceDescriptionId } from '../../serverconf/changes.ts';
import { clientWithServices, type ServiceSpec } from '../../serverconf/serverconf-json.ts';
import { changeServerConfIn } from '../../serverconf/store.ts';
import { SignerClient, waitForOcspResponses } from '../../signerapi/signer-client.ts';
import { defaultAdminSocket, defaultProxySocket } from '../../signerapi/socket-paths.ts';
import { startTestServices, type TestServices, type TestServicesOptions } from '../testservices/test-services.ts';
import { DEFAULT_LAYOUT, layoutClient, signingMembers, type LocalLayout } from '../testpki/local-layout.ts';
import { LocalPki } from '../testpki/local-pki.ts';
import { ensureSoftHsmHome, findSoftHsmLibrary } from '../../token/softhsm.ts';
import { certSha1 } from '../../trust/ocsp-cache.ts';
import { BALANCER_CHECK, balancerConfig, copyNode, startBalancer } from './cluster.ts';
import { Supervisor, type RestartPolicy, type Started } from './supervisor.ts';
import { startThrowawayPostgres } from './throwaway-postgres.ts';

const XRD = resolve(import.meta.dirname, '../../../scripts/xrd.mjs');

export interface LocalPorts {
  readonly ocsp: number;
  readonly tsa: number;
  readonly conf: number;
  readonly testServices: number;
  /** ss2's client proxy, where the client's information systems call (8080/8443). */
  readonly clientHttp: number;
  readonly clientHttps: number;
  /** ss1's client proxy (the provider's own information systems). */
  readonly providerHttp: number;
  readonly providerHttps: number;
  /** Server proxy and OCSP endpoint ports; both servers use them, each on its own address. */
  readonly serverProxy: number;
  readonly ocspEndpoint: number;
  /** /metrics and /opmonitor of ss2 and ss1. */
  readonly clientMonitoring: number;
  readonly providerMonitoring: number;
  /** Health checks of ss2 and ss1, each on its server's own address (so both may be 5588). */
  readonly clientHealth: number;
  readonly providerHealth: number;
  /** ss3, the server that joins through MEMBER_01: its client proxy, monitoring and health ports. */
  readonly joiningHttp: number;
  readonly joiningHttps: number;
  readonly joiningMonitoring: number;
  readonly joiningHealth: number;
  /** The admin REST API of every server, each on its own address. */
  readonly admin: number;
  /** The central server's management service stand-in (registration requests). */
  readonly management: number;
}

export const DEFAULT_LOCAL_PORTS: LocalPorts = {
  ocsp: 8888, tsa: 8899, conf: 8090, testServices: 8091,
  clientHttp: 8080, clientHttps: 8443, providerHttp: 8081, providerHttps: 8444,
  serverProxy: 5500, ocspEndpoint: 5577, clientMonitoring: 2080, providerMonitoring: 2081,
  clientHealth: 5588, providerHealth: 5588,
  joiningHttp: 8082, joiningHttps: 8445, joiningMonitoring: 2082, joiningHealth: 5588, admin: 4000, management: 4001,
};

export interface LocalServer {
  readonly serverId: string;
  /** The name of its processes (`<name> signer|proxy|admin`): the server id, and the node's name for a cluster's second node. */
  readonly name: string;
  /** Where other security servers reach it: in a cluster the node's own address, not the balancer's. */
  readonly address: string;
  /** Where its client proxy listens for information systems. */
  readonly clientAddress: string;
  readonly dir: string;
  /** The signer's administration socket (the admin API, setup, tests). */
  readonly signerSocket: string;
  /** The signer's socket for the proxy: PROXY_OPERATIONS only, signing and OCSP among them (docs/security.md). */
  readonly signerProxySocket: string;
  readonly tokenId: string;
  readonly proxyDataDir: string;
  readonly httpUrl: string;
  readonly httpsUrl: string;
  /** /metrics and /opmonitor. */
  readonly monitoringUrl: string;
  /** The proxy's health check (200 or 500 with the failed checks; `?format=json`). */
  readonly healthUrl: string;
  /** The admin REST API, `https://<address>:<port>/api/v1`. */
  readonly adminUrl: string;
}

/** An information system's TLS client certificate, made as seed 003 tells (openssl genrsa, req -x509). */
export interface InformationSystem {
  readonly client: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface LocalInstance {
  readonly dir: string;
  readonly pki: LocalPki;
  readonly ports: LocalPorts;
  /** ss1; with `cluster`, its first node (the reference's primary: the one with the admin API). */
  readonly provider: LocalServer;
  /** ss1's nodes: [provider], or with `cluster` [provider, second node]. */
  readonly providerNodes: readonly LocalServer[];
  /** With `cluster`: HAProxy at ss1's address in global configuration, and its configuration file. */
  readonly balancer?: { readonly address: string; readonly configFile: string; readonly statsSocket: string; readonly check: typeof BALANCER_CHECK };
  /** The PostgreSQL database of each server whose proxies keep their stores there (XRD_DATABASE_URL), by server id: ss1's nodes share one. */
  readonly databaseUrls: ReadonlyMap<string, string>;
  /** Each such server's, or cluster node's, own message-log database (XRD_MESSAGELOG_DATABASE_URL): nodes never share a message log. */
  readonly messageLogUrls: ReadonlyMap<LocalServer, string>;
  readonly consumer: LocalServer;
  /**
   * ss3 at 127.0.0.3: a blank token, its signer and its admin API, nothing else. Its administrator
   * initialises it for member 4444 and registers it (MEMBER_01, docs/admin-api.md); its proxy starts
   * on `startProxy` once it is initialised.
   */
  readonly joining: LocalServer;
  readonly testServicesUrl: string;
  readonly clientIs: InformationSystem;
  readonly otherIs: InformationSystem;
  /** The signer's PIN of a server's token, for tests that log out and in again. */
  pinOf(server: LocalServer): string;
  /** An admin API key of the server with every role (the local administrator's). */
  apiKeyOf(server: LocalServer): string;
  /** The user who logs in to each server's web interface, with every role; a new password at each start. */
  readonly adminLogin: { readonly username: string; readonly password: string };
  /** Starts (or restarts) a server's proxy process, supervised: it is started again if it dies. */
  startProxy(server: LocalServer): Promise<void>;
  /** Stops a server's proxy process for good (until startProxy). */
  stopProxy(server: LocalServer, signal?: NodeJS.Signals): Promise<void>;
  startSigner(server: LocalServer): Promise<void>;
  stopSigner(server: LocalServer): Promise<void>;
  /** Stops or restarts the OCSP responder, the TSA and the configuration source together. */
  stopPkiServices(): Promise<void>;
  startPkiServices(): Promise<void>;
  /** Process ids of the signers, proxies and admin APIs, by name (`<server name> signer|proxy|admin`, `ss1 balancer`); undefined while one waits to be restarted. */
  pids(): Record<string, number | undefined>;
  close(): Promise<void>;
}

export interface LocalInstanceOptions {
  readonly dir: string;
  /** Instance identifier (LOCAL) and who is who; the demo's members by default. */
  readonly instance?: string;
  readonly layout?: LocalLayout;
  readonly ports?: Partial<LocalPorts>;
  readonly logger: Logger;
  /** Proxy settings passed on (e.g. a small message size limit in tests). */
  readonly proxyArgs?: readonly string[];
  /** Called for every request the test services get. */
  readonly onServiceRequest?: TestServicesOptions['onRequest'];
  /** Progress lines (the CLI prints them). */
  readonly progress?: (line: string) => void;
  /** When processes that died are started again (supervisor.ts's default: 0.5 s doubling to 30 s). */
  readonly restartPolicy?: RestartPolicy;
  /** ss1 as two nodes behind HAProxy, sharing a throw-away PostgreSQL and a copied token (cluster.ts). */
  readonly cluster?: boolean;
  /**
   * Where the proxies keep the stores that can live in PostgreSQL (docs/storage.md): SQLite files
   * (default), or a database per server in a throw-away PostgreSQL. A cluster's nodes use PostgreSQL.
   */
  readonly store?: 'sqlite' | 'postgres';
  /**
   * The message log of each proxy whose other stores are in PostgreSQL: a database of its own there
   * (default; each cluster node its own), or its `messagelog.db`.
   */
  readonly messageLog?: 'sqlite' | 'postgres';
}

export async function startLocalInstance(options: LocalInstanceOptions): Promise<LocalInstance> {
  const ports = { ...DEFAULT_LOCAL_PORTS, ...options.ports };
  const progress = options.progress ?? (() => undefined);
  const dir = resolve(options.dir);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const supervisor = new Supervisor(options.logger.child({ component: 'supervisor' }), options.restartPolicy);
  const pins = new Map<string, string>();
  const closers: (() => Promise<void>)[] = [];

  const library = findSoftHsmLibrary();
  if (!library) throw new XrdError('InvalidConfiguration', { reason: 'SoftHSM is not installed (run scripts/bootstrap.sh)' });

  progress('test PKI: CAs, OCSP responder, TSA, global configuration');
  const layout = options.layout ?? DEFAULT_LAYOUT;
  const pki = LocalPki.init(join(dir, 'pki'), { instance: options.instance, layout, ocspPort: ports.ocsp, tsaPort: ports.tsa, confPort: ports.conf, managementPort: ports.management });
  let served: Awaited<ReturnType<LocalPki['serve']>> | undefined = await pki.serve();
  closers.push(async () => served?.close());

  let testServices: TestServices;
  try {
    testServices = await startTestServices({ port: ports.testServices, logger: options.logger.child({ component: 'testservices' }), onRequest: options.onServiceRequest });
  } catch (err) {
    await served.close();
    throw err;
  }
  closers.push(() => testServices.close());

  // A database per server, and one for a cluster's nodes together; the PostgreSQL cluster's folder
  // is under the system's temporary folder, which PostgreSQL's own user can reach.
  const postgres = options.cluster || options.store === 'postgres' ? startThrowawayPostgres() : undefined;
  if (postgres) closers.push(async () => postgres.stop());
  const balancer = options.cluster
    ? { address: '127.0.0.1', configFile: join(dir, 'balancer', 'haproxy.cfg'), statsSocket: join(dir, 'balancer', 'haproxy.sock'), check: BALANCER_CHECK }
    : undefined;

  const proxyPorts = new Map<string, { http: number; https: number; monitoring: number; health: number }>();
  const server = (code: string, owner: string, address: string, http: number, https: number, monitoring: number, health: number, node?: { name: string; clientAddress: string }): LocalServer => {
    const serverDir = join(dir, node ? `${code}-${node.name}` : code);
    const serverId = `${pki.instance}/${layout.memberClass}/${owner}/${code}`;
    const name = node ? `${serverId} ${node.name}` : serverId;
    const clientAddress = node?.clientAddress ?? '127.0.0.1';
    proxyPorts.set(name, { http, https, monitoring, health });
    return {
      serverId,
      name,
      address,
      clientAddress,
      dir: serverDir,
      signerSocket: defaultAdminSocket(join(serverDir, 'signer')),
      signerProxySocket: defaultProxySocket(defaultAdminSocket(join(serverDir, 'signer'))),
      tokenId: '',
      proxyDataDir: join(serverDir, 'proxy'),
      httpUrl: `http://${clientAddress}:${http}`,
      httpsUrl: `https://${clientAddress}:${https}`,
      monitoringUrl: `http://${clientAddress}:${monitoring}`,
      healthUrl: `http://${address}:${health}/`,
      adminUrl: `https://${address}:${ports.admin}/api/v1`,
    };
  };
  // A cluster's nodes on addresses of their own; the balancer takes ss1's (127.0.0.1) and global configuration knows only it.
  const providerServer = (node?: string, address = '127.0.0.1') =>
    server('ss1', layout.provider.owner, address, ports.providerHttp, ports.providerHttps, ports.providerMonitoring, ports.providerHealth, node ? { name: node, clientAddress: address } : undefined);
  const provider = options.cluster ? providerServer(undefined, '127.0.0.11') : providerServer();
  const providerNodes = options.cluster ? [provider, providerServer('node2', '127.0.0.12')] : [provider];
  const consumer = server('ss2', layout.consumer.owner, '127.0.0.2', ports.clientHttp, ports.clientHttps, ports.clientMonitoring, ports.clientHealth);
  const joining = server('ss3', layout.joining.owner, '127.0.0.3', ports.joiningHttp, ports.joiningHttps, ports.joiningMonitoring, ports.joiningHealth);
  const databaseUrls = new Map<string, string>();
  // ss3's proxy starts once it is registered (MEMBER_01): it keeps its stores in SQLite.
  const messageLogUrls = new Map<LocalServer, string>();
  if (postgres) {
    for (const s of options.store === 'postgres' ? [provider, consumer] : [provider]) databaseUrls.set(s.serverId, postgres.createDatabase());
    if (options.messageLog !== 'sqlite') for (const s of [...providerNodes, consumer]) if (databaseUrls.has(s.serverId)) messageLogUrls.set(s, postgres.createDatabase());
  }
  const client = (c: string) => formatClientId(layoutClient(pki.instance, layout, c));
  const [firstClient, secondClient = firstClient] = layout.consumer.clients as [string, string?];
  const apiKeys = new Map<string, string>();

  // Proxies and admin APIs start with no PIN and no SoftHSM configuration: they reach keys only through the signer.
  // Nor a database URL from the shell that started the instance: each server's is the instance's choice.
  const keylessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/PIN|SOFTHSM/i.test(k) && k !== 'XRD_DATABASE_URL' && k !== 'XRD_MESSAGELOG_DATABASE_URL'));
  // A server's proxy and admin API both open its server configuration: the same database for both.
  const serverEnv = (s: LocalServer) => {
    const url = databaseUrls.get(s.serverId);
    const messageLogUrl = messageLogUrls.get(s);
    return url ? { ...keylessEnv, XRD_DATABASE_URL: url, ...(messageLogUrl ? { XRD_MESSAGELOG_DATABASE_URL: messageLogUrl } : {}) } : keylessEnv;
  };
  const softhsmEnv = (s: LocalServer) => ({ ...process.env, SOFTHSM2_CONF: join(s.dir, 'softhsm', 'softhsm2.conf') });

  /** `xrd <args>` as a child process, ready once it prints "<what> listening" (and `andThen` is done); its stderr goes to `<server dir>/<what's first word>.log`. */
  const child = (s: LocalServer, what: string, args: string[], env: NodeJS.ProcessEnv, andThen?: () => Promise<void>) => (): Started => {
    const c = spawn(process.execPath, [XRD, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const ready = waitForLine(c, `${what} listening`, `${s.name} ${what}`, join(s.dir, `${what.split(' ')[0]}.log`));
    return { child: c, ready: andThen ? ready.then(andThen) : ready };
  };

  // A signer started again logs in to its token with the PIN this process holds, as at first.
  const startSigner = (s: LocalServer) =>
    supervisor.start(
      `${s.name} signer`,
      child(s, 'signer', ['daemon', 'start', '--data-dir', join(s.dir, 'signer'), '--devices', join(s.dir, 'devices.ini'), '--conf', pki.globalConfDir, '--no-prompt'], softhsmEnv(s), async () => {
        const pin = pins.get(s.serverId);
        if (pin && s.tokenId) {
          const client = await SignerClient.connect(s.signerSocket);
          await client.call('activateToken', { token: s.tokenId, pin }).finally(() => client.close());
        }
      }),
    );

  const startProxy = (s: LocalServer) => {
    const { http, https, monitoring, health } = proxyPorts.get(s.name)!;
    const args = [
      'proxy', 'start', '--data-dir', s.proxyDataDir, '--conf', pki.globalConfDir, '--proxy-socket', s.signerProxySocket,
      '--client-address', s.clientAddress, '--server-address', s.address,
      '--http-port', String(http), '--https-port', String(https), '--server-port', String(ports.serverProxy), '--ocsp-port', String(ports.ocspEndpoint), '--monitoring-port', String(monitoring), '--health-port', String(health),
      '--remote-server-port', String(ports.serverProxy), '--remote-ocsp-port', String(ports.ocspEndpoint), ...(options.proxyArgs ?? []),
    ];
    return supervisor.start(`${s.name} proxy`, child(s, 'proxy', args, serverEnv(s)));
  };

  /** The admin API (`xrd admin start`), with a key and a login user holding every role for the local administrator. */
  const adminLogin = { username: 'admin', password: randomBytes(12).toString('base64url') };
  const startAdmin = async (s: LocalServer) => {
    apiKeys.set(s.serverId, new ApiKeyStore(apiKeysFile(s.proxyDataDir)).create([...ROLES], 'local administrator').key);
    const users = new UserStore(usersFile(s.proxyDataDir));
    if (users.list().some((u) => u.name === adminLogin.username)) await users.setPassword(adminLogin.username, adminLogin.password);
    else await users.add(adminLogin.username, adminLogin.password, ROLES);
    const args = [
      'admin', 'start', '--data-dir', s.proxyDataDir, '--socket', s.signerSocket, '--conf', pki.globalConfDir, '--admin-host', s.address, '--admin-port', String(ports.admin),
      '--signer-dir', join(s.dir, 'signer'), '--devices', join(s.dir, 'devices.ini'), '--anchor', pki.anchorFile,
      // Management requests go out through the server's own client proxy (pr-mserv).
      '--client-proxy-url', s.httpsUrl,
    ];
    return supervisor.start(`${s.name} admin`, child(s, 'admin API', args, serverEnv(s)));
  };

  const instance: LocalInstance = {
    dir,
    pki,
    ports,
    provider,
    providerNodes,
    ...(balancer ? { balancer } : {}),
    databaseUrls,
    messageLogUrls,
    consumer,
    joining,
    testServicesUrl: testServices.url,
    clientIs: { client: client(firstClient), certFile: join(dir, 'is', 'clientcert.pem'), keyFile: join(dir, 'is', 'clientprivatekey.pem') },
    otherIs: { client: client(secondClient!), certFile: join(dir, 'is', 'othercert.pem'), keyFile: join(dir, 'is', 'otherprivatekey.pem') },
    pinOf: (s) => pins.get(s.serverId)!,
    apiKeyOf: (s) => apiKeys.get(s.serverId)!,
    adminLogin,
    startProxy,
    stopProxy: (s, signal) => supervisor.stop(`${s.name} proxy`, signal),
    startSigner,
    stopSigner: (s) => supervisor.stop(`${s.name} signer`),
    stopPkiServices: async () => {
      await served?.close();
      served = undefined;
    },
    startPkiServices: async () => {
      served ??= await pki.serve();
    },
    pids: () => supervisor.pids(),
    close: async () => {
      await supervisor.stopAll();
      await Promise.all(closers.map((c) => c()));
    },
  };

  try {
    for (const s of [provider, consumer, joining]) {
      progress(s === joining ? `${s.serverId}: blank SoftHSM token and signer, to be initialised and registered (MEMBER_01)` : `${s.serverId}: SoftHSM token, signer, keys and certificates`);
      mkdirSync(join(s.dir, 'signer'), { recursive: true, mode: 0o700 });
      mkdirSync(s.proxyDataDir, { recursive: true, mode: 0o700 });
      ensureSoftHsmHome(join(s.dir, 'softhsm'));
      writeFileSync(join(s.dir, 'devices.ini'), `[softhsm]\nlibrary = ${library}\n`);
      await startSigner(s);
      if (s !== joining) await prepareKeys(instance, s, pins);
    }
    for (const node of providerNodes.slice(1)) {
      progress(`${node.name}: a copy of ss1's token and signer configuration, as the reference copies its soft token to secondary nodes`);
      await supervisor.stop(`${provider.name} signer`);
      copyNode(provider.dir, node.dir);
      mkdirSync(node.proxyDataDir, { recursive: true, mode: 0o700 });
      (node as { tokenId: string }).tokenId = provider.tokenId;
      await startSigner(provider);
      await startSigner(node);
    }
    progress('information systems: TLS client certificates (seed 003)');
    makeIsCertificate(instance.clientIs);
    makeIsCertificate(instance.otherIs);
    await writeServerConfs(instance, testServices.url);
    progress('admin APIs of ss1, ss2 and ss3');
    for (const s of [provider, consumer, joining]) await startAdmin(s);
    progress(options.cluster ? 'proxies of ss1 (two nodes) and ss2' : 'proxies of ss1 and ss2');
    for (const node of providerNodes) await startProxy(node);
    await startProxy(consumer);
    if (balancer) {
      progress(`HAProxy at ss1's address ${balancer.address}, health-checking the nodes every ${balancer.check.intervalMs} ms`);
      mkdirSync(join(dir, 'balancer'), { recursive: true, mode: 0o700 });
      const balanced = [{ name: 'ss1_server_proxy', port: ports.serverProxy }, { name: 'ss1_ocsp', port: ports.ocspEndpoint }];
      writeFileSync(balancer.configFile, balancerConfig(balancer.address, balanced, providerNodes.map((n, i) => ({ name: `node${i + 1}`, address: n.address, healthPort: ports.providerHealth })), balancer.statsSocket));
      await supervisor.start('ss1 balancer', () => startBalancer(balancer.configFile, balancer.address, ports.serverProxy, join(dir, 'balancer', 'haproxy.log')));
    }
  } catch (err) {
    await instance.close();
    throw err;
  }
  return instance;
}

/** Token, signing key per hosted member, authentication key; certificates from the test CA; OCSP responses cached. */
async function prepareKeys(instance: LocalInstance, s: LocalServer, pins: Map<string, string>): Promise<void> {
  const client = await SignerClient.connect(s.signerSocket);
  try {
    const pin = randomBytes(12).toString('hex');
    const token = await client.call('initToken', { label: s.serverId.split('/').pop()!, soPin: randomBytes(12).toString('hex'), userPin: pin });
    await client.call('activateToken', { token: token.tokenId, pin });
    pins.set(s.serverId, pin);
    (s as { tokenId: string }).tokenId = token.tokenId;
    const layout = instance.pki.layout;
    const members = signingMembers(s === instance.provider ? layout.provider : layout.consumer);
    const certs: Buffer[] = [];
    for (const code of members) {
      const key = await client.call('generateKey', { token: token.tokenId, algorithm: 'RSA', usage: 'SIGNING', friendlyName: `sign ${code}` });
      const csr = await client.call('generateCsr', { keyId: key.keyId, memberId: `${instance.pki.instance}/${layout.memberClass}/${code}`, format: 'DER' });
      const cert = instance.pki.issue(Buffer.from(csr.csr, 'base64'), 'sign');
      await client.call('importCert', { cert: cert.toString('base64') });
      certs.push(cert);
    }
    const auth = await client.call('generateKey', { token: token.tokenId, algorithm: 'RSA', usage: 'AUTHENTICATION', friendlyName: 'auth' });
    const csr = await client.call('generateCsr', { keyId: auth.keyId, usage: 'AUTHENTICATION', serverId: s.serverId, format: 'DER' });
    const authCert = instance.pki.issue(Buffer.from(csr.csr, 'base64'), 'auth', s.serverId);
    const imported = await client.call('importCert', { cert: authCert.toString('base64') });
    // Registration (MEMBER_01) is issue 6; the test CA registers the certificate in the configuration itself.
    await client.call('setCertStatus', { hash: imported.hash, status: 'registered' });
    await client.call('activateCert', { hash: imported.hash });
    certs.push(authCert);
    // The signer's OCSP refresher fetches responses for its certificates; wait until they are cached.
    await waitForOcspResponses(client, certs.map(certSha1), s.serverId);
  } finally {
    client.close();
  }
}

function makeIsCertificate(is: InformationSystem): void {
  mkdirSync(join(is.certFile, '..'), { recursive: true });
  execFileSync('openssl', ['genrsa', '-out', is.keyFile, '2048'], { stdio: 'pipe' });
  execFileSync('openssl', ['req', '-new', '-x509', '-key', is.keyFile, '-out', is.certFile, '-days', '365', '-subj', `/CN=${is.client.replaceAll('/', ' ')}`], { stdio: 'pipe' });
}

/**
 * The management services (pr-mserv) when `id` is the management service provider: each request
 * type that travels through the client proxy is a SOAP service answered by the central server's
 * stand-in, callable by every security server's owner, as the reference's central server sets it up.
 */
function managementServices(instance: LocalInstance, id: ClientId): ServiceSpec[] {
  const url = instance.pki.managementServiceUrl;
  if (!url || !sameClientId(id, instance.pki.managementServiceId)) return [];
  const owners = `GLOBALGROUP:${instance.pki.instance}/security-server-owners`;
  return Object.entries(MANAGEMENT_REQUESTS)
    .filter(([, how]) => how.via === 'clientProxy')
    .map(([code]) => ({ code, type: 'SOAP' as const, url, timeoutSeconds: 60, allowed: [owners] }));
}

async function writeServerConfs(instance: LocalInstance, servicesUrl: string): Promise<void> {
  const is = (i: InformationSystem) => [Buffer.from(new X509Certificate(readFileSync(i.certFile)).raw)];
  const { instance: inst, layout } = instance.pki;
  const client = (c: string) => layoutClient(inst, layout, c);
  const allowed = [formatClientId(client(layout.consumer.clients[0]!))];
  // The test services belong to ss1's first client; its other clients host nothing yet.
  const [serving, ...others] = layout.provider.clients;
  const served = clientWithServices({ id: client(serving!), connectionType: 'HTTP' }, [
    // Also every security server owner: the central server adds a newly registered server's owner
    // to this group, so ss3's owner can call once MEMBER_01 is done.
    { code: 'getRandom', type: 'SOAP', url: `${servicesUrl}/`, timeoutSeconds: 60, allowed: [...allowed, `GLOBALGROUP:${inst}/security-server-owners`], description: { type: 'WSDL', url: `${servicesUrl}/wsdl` } },
    { code: 'helloService', type: 'SOAP', url: `${servicesUrl}/`, timeoutSeconds: 60, allowed, description: { type: 'WSDL', url: `${servicesUrl}/wsdl` } },
    { code: 'rest-test', type: 'REST', url: `${servicesUrl}/rest-test`, timeoutSeconds: 60, allowed, description: { type: 'OPENAPI3', url: `${servicesUrl}/rest-test/openapi.json` } },
  ]);
  // Each server's owner is its client too, as initialisation makes it (management requests come from it).
  const withOwner = (server: 'provider' | 'consumer', clients: LocalClient[]) =>
    clients.some((c) => sameClientId(c.id, client(layout[server].owner))) ? clients : [...clients, clientWithServices({ id: client(layout[server].owner) })];
  const providerClients: LocalClient[] = [served];
  for (const c of others) providerClients.push(clientWithServices({ id: client(c), connectionType: 'HTTP' }, managementServices(instance, client(c)), nextServiceDescriptionId({ clients: providerClients })));
  const consumerClients = layout.consumer.clients.map((c, i) => clientWithServices({ id: client(c), connectionType: 'HTTPS', isCerts: is(i === 0 ? instance.clientIs : instance.otherIs) }));
  const write = async (s: LocalServer, clients: LocalClient[]) => {
    mkdirSync(s.proxyDataDir, { recursive: true, mode: 0o700 });
    const [instanceId, memberClass, memberCode, serverCode] = s.serverId.split('/') as [string, string, string, string];
    // Both servers use the instance's TSA, as an administrator would choose it (UC SS_07).
    const timestampingServices = loadGlobalConf(instance.pki.globalConfDir).own.approvedTsas.map(({ name, url }) => ({ name, url }));
    const conf: ServerConf = { serverId: { instance: instanceId, memberClass, memberCode, serverCode }, clients, timestampingServices };
    await changeServerConfIn(s.proxyDataDir, { kind: 'system', name: 'xrd local' }, 'CREATE_LOCAL_INSTANCE', () => conf, instance.databaseUrls.get(s.serverId));
  };
  // A cluster's nodes share their server configuration's database: written once.
  for (const node of instance.providerNodes.filter((n) => n === instance.provider || !instance.databaseUrls.has(n.serverId))) await write(node, withOwner('provider', providerClients));
  await write(instance.consumer, withOwner('consumer', consumerClients));
}

/**
 * Resolves when the child prints `line` on stdout; rejects with its log's end when it exits first.
 * Its stderr (structured logs) goes on into `logFile` for as long as it runs.
 */
function waitForLine(child: ChildProcess, line: string, name: string, logFile: string, timeoutMs = 60_000): Promise<void> {
  // Logs name clients, services and errors: the owner's alone, as the databases.
  const log = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
  child.stderr!.pipe(log);
  let tail = '';
  child.stderr!.on('data', (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4000);
  });
  return new Promise((resolvePromise, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new XrdError('InternalError', { reason: `${name} did not start within ${timeoutMs} ms: ${tail}` })), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      if (out.includes(line)) return;
      out += d.toString();
      if (out.includes(line)) {
        clearTimeout(timer);
        resolvePromise();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new XrdError('InternalError', { reason: `${name} exited with ${code}: ${tail}` }));
    });
  });
}
