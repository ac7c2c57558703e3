/**
 * The development commands, `xrd local start` and `xrd testpki …`: the only production-side file
 * that imports src/dev. xrd.ts loads this file through import() when such a command runs, so a
 * production server's processes never load the development wing (test/unit/house-rules.test.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseCertificate } from '../certificates/certificate.ts';
import { toPem } from '../certificates/csr.ts';
import { createLogger } from '../platform/logger.ts';
import { firstCalls, getRandomRequest } from '../dev/localinstance/first-calls.ts';
import { startLocalInstance, type LocalInstance, type LocalServer } from '../dev/localinstance/local-instance.ts';
import { LocalPki, type ManagementRequestView } from '../dev/testpki/local-pki.ts';
import { messageLogFileIn } from '../messagelog/store.ts';
import { certificateView } from './conf-commands.ts';
import { dataDir, type Values } from './options.ts';
import { UsageError } from './usage-error.ts';

/** `local start` or `testpki …`. */
export async function devCommand(group: 'local' | 'testpki', command: string | undefined, rest: string[], values: Values): Promise<number> {
  return group === 'local' ? localStart(values) : testPkiCommand(command, rest, values);
}

async function localStart(values: Values): Promise<number> {
  const dir = resolve(values.dir ?? 'var/local');
  const json = values.json === true;
  const say = (line: string) => !json && process.stdout.write(`${line}\n`);
  const store = values.store ?? 'sqlite';
  if (store !== 'sqlite' && store !== 'postgres') throw new UsageError(`--store must be sqlite or postgres, not ${store}`);
  const instance = await startLocalInstance({ dir, cluster: values.cluster === true, store, logger: createLogger('local', process.env.XRD_LOG_LEVEL ?? 'warn'), progress: (l) => say(`… ${l}`) });
  const stop = async () => {
    await instance.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());

  const soapFile = join(dir, 'is', 'getRandom.xml');
  writeFileSync(soapFile, getRandomRequest(instance));
  let first: Awaited<ReturnType<typeof firstCalls>>;
  try {
    first = await firstCalls(instance, soapFile);
  } catch (err) {
    // Signers and proxies are child processes: they must not outlive a failed start.
    await instance.close();
    throw err;
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ endpoints: endpoints(instance), firstCalls: first })}\n`);
  } else {
    say(describe(instance, dir));
    say('First calls through both security servers (signed by ss2, verified by ss1, answered, signed by ss1, verified by ss2, logged on both):');
    for (const c of first) {
      // The answer's payload, not the echoed X-Road header: getRandom's <data>, or the REST body.
      const data = /<(?:[\w-]+:)?data>([^<]*)</.exec(c.body)?.[1];
      say(`  ${c.name}: HTTP ${c.status} ${data !== undefined ? `data = ${data}` : c.body.replace(/\s+/g, ' ').slice(0, 300)}`);
    }
    say('\nRunning; Ctrl-C stops everything.');
  }
  return new Promise<number>(() => {
    // Runs until a signal stops it.
  });
}

/** Where a server's message log is, as shown: its PostgreSQL database, or its SQLite file. */
function messageLogShown(i: LocalInstance, s: LocalServer): string {
  return i.messageLogUrls.get(s) ?? messageLogFileIn(s.proxyDataDir);
}

function endpoints(i: LocalInstance) {
  return {
    clientProxy: { http: i.consumer.httpUrl, https: i.consumer.httpsUrl },
    providerClientProxy: { http: i.provider.httpUrl, https: i.provider.httpsUrl },
    serverProxies: [`${i.balancer?.address ?? i.provider.address}:${i.ports.serverProxy}`, `${i.consumer.address}:${i.ports.serverProxy}`],
    ...(i.balancer ? { cluster: { balancer: i.balancer, nodes: i.providerNodes.map((n) => ({ name: n.name, address: n.address, health: n.healthUrl, messageLog: messageLogShown(i, n) })) } } : {}),
    testServices: i.testServicesUrl,
    globalConf: i.pki.globalConfDir,
    messageLogs: [...i.providerNodes, i.consumer].map((s) => messageLogShown(i, s)),
    health: [...i.providerNodes, i.consumer].map((s) => s.healthUrl),
    monitoring: [i.provider.monitoringUrl, i.consumer.monitoringUrl],
    adminApis: [i.provider, i.consumer, i.joining].map((s) => ({ serverId: s.serverId, url: s.adminUrl, apiKey: i.apiKeyOf(s), webInterface: s.adminUrl.replace(/api\/v1$/, ''), login: i.adminLogin })),
    managementService: i.pki.managementServiceUrl,
  };
}

function describe(i: LocalInstance, dir: string): string {
  const is = relative(process.cwd(), join(dir, 'is')) || '.';
  const service = `${i.pki.instance}/COM/1111/PROVIDER`;
  return `
Local X-Road instance ${i.pki.instance} in ${dir}
  ss1 ${i.provider.serverId} at ${i.balancer?.address ?? i.provider.address}:${i.ports.serverProxy}  (provider LOCAL/COM/1111/PROVIDER; test services ${i.testServicesUrl})
${i.balancer ? `      a cluster: HAProxy (${i.balancer.configFile}) over ${i.providerNodes.map((n, k) => `node${k + 1} ${n.address}`).join(' and ')}, health-checked every ${i.balancer.check.intervalMs} ms;
      one token copied to both, their shared PostgreSQL ${i.databaseUrls.get(i.provider.serverId)}; each node its own message-log database
` : ''}  ss2 ${i.consumer.serverId} at ${i.consumer.address}:${i.ports.serverProxy}  (clients LOCAL/COM/2222/CLIENT and LOCAL/COM/3333/OTHER, connection type HTTPS)
  information systems call ss2 at ${i.consumer.httpsUrl}/ (SOAP) and ${i.consumer.httpsUrl}/r1/… (REST)
  ss3 ${i.joining.serverId} at ${i.joining.address}: a blank token, its signer and admin API — to be initialised and
      registered (MEMBER_01; docs/admin-api.md walks through it)
  OCSP ${i.ports.ocsp}, TSA ${i.ports.tsa}, configuration ${i.ports.conf}, management service ${i.ports.management} on 127.0.0.1
  health: ${i.providerNodes.map((n) => n.healthUrl).join(', ')} (ss1), ${i.consumer.healthUrl} (ss2)
  monitoring (the server's admin API key): ${i.provider.monitoringUrl}/metrics and /opmonitor (ss1), ${i.consumer.monitoringUrl}/… (ss2)

Admin REST APIs (HTTPS, self-signed; OpenAPI at …/openapi.json), each with a local key holding every role:
${[i.provider, i.consumer, i.joining].map((s) => `  ${s.serverId.split('/').pop()}  ${s.adminUrl}  key ${i.apiKeyOf(s)}`).join('\n')}
  curl -k -H "Authorization: X-Road-ApiKey token=${i.apiKeyOf(i.joining)}" ${i.joining.adminUrl}/initialization/status
  curl -H "Authorization: X-Road-ApiKey token=${i.apiKeyOf(i.consumer)}" "${i.consumer.monitoringUrl}/opmonitor?limit=10"

Web interfaces (docs/admin-ui.md) at each admin API's address: ${[i.provider, i.consumer, i.joining].map((s) => s.adminUrl.replace(/api\/v1$/, '')).join('  ')}
  log in as ${i.adminLogin.username} with password ${i.adminLogin.password} (every role; a new password at each start);
  more users: xrd admin user add NAME --roles SYSTEM_ADMINISTRATOR --data-dir ${i.consumer.proxyDataDir}   (ss2's; the others' likewise)

Try (seed 003's commands, from ${is}):
  cd ${is}
  curl -E ./clientcert.pem --key ./clientprivatekey.pem -k -d @getRandom.xml --header "Content-Type: text/xml" -X POST ${i.consumer.httpsUrl}/
  curl -k -d @getRandom.xml --header "Content-Type: text/xml" -X POST ${i.consumer.httpsUrl}/        # no certificate: SslAuthenticationFailed
  curl -E ./clientcert.pem --key ./clientprivatekey.pem -k -H "X-Road-Client: ${i.clientIs.client}" ${i.consumer.httpsUrl}/r1/${service}/rest-test/random
  curl -E ./clientcert.pem --key ./clientprivatekey.pem -k -H "X-Road-Client: ${i.clientIs.client}" "${i.consumer.httpsUrl}/r1/${service}/rest-test/hello?name=X-Road"
Metaservices (docs/metaservices.md):
  curl -E ./clientcert.pem --key ./clientprivatekey.pem -k -H "X-Road-Client: ${i.clientIs.client}" ${i.consumer.httpsUrl}/r1/${service}/listMethods
  curl -E ./clientcert.pem --key ./clientprivatekey.pem -k -H "X-Road-Client: ${i.clientIs.client}" "${i.consumer.httpsUrl}/r1/${service}/getOpenAPI?serviceCode=rest-test"
  curl -k -H "Accept: application/json" ${i.consumer.httpsUrl}/listClients
Message containers: ${i.messageLogUrls.has(i.consumer) ? `XRD_MESSAGELOG_DATABASE_URL=${i.messageLogUrls.get(i.consumer)} npx xrd asic export <queryId> --data-dir ${i.consumer.proxyDataDir}` : `npx xrd asic export <queryId> --db ${messageLogFileIn(i.consumer.proxyDataDir)}`} --out /tmp && npx xrd asic verify /tmp/<file>.asice --conf ${i.pki.globalConfDir}
`;
}

// ---- local test PKI (no daemon needed) ------------------------------------------------------

async function testPkiCommand(command: string | undefined, args: string[], values: Values): Promise<number> {
  const dir = values.dir ?? join(dataDir(values), 'testpki');
  const print = (json: unknown, human: string): number => {
    process.stdout.write(values.json ? JSON.stringify(json, null, 2) + '\n' : human + '\n');
    return 0;
  };
  switch (command) {
    case 'init': {
      const port = (v: string | undefined) => (v === undefined ? undefined : Number(v));
      const pki = LocalPki.init(dir, { instance: values.instance, ocspPort: port(values['ocsp-port']), tsaPort: port(values['tsa-port']), confPort: port(values['conf-port']), managementPort: port(values['management-port']) ?? 4001 });
      return print({ dir, instance: pki.instance, globalConf: pki.globalConfDir, anchor: pki.anchorFile }, `test PKI for instance ${pki.instance} in ${dir}; global configuration in ${pki.globalConfDir}; anchor ${pki.anchorFile}`);
    }
    case 'issue': {
      if (!values.csr) throw new UsageError('--csr FILE is required');
      const usage = values.usage?.toLowerCase();
      if (usage !== 'sign' && usage !== 'auth') throw new UsageError('--usage sign or auth is required');
      const csrText = readFileSync(values.csr);
      const der = csrText.toString('latin1').includes('-----BEGIN') ? Buffer.from(csrText.toString('latin1').replace(/-----[^-]+-----|\s+/g, ''), 'base64') : csrText;
      const cert = LocalPki.open(dir).issue(der, usage, values.server);
      const pem = toPem(cert, 'CERTIFICATE');
      if (values.out) writeFileSync(values.out, pem);
      return print({ ...certificateView(cert), pem }, values.out ? `certificate written to ${values.out}` : pem.trimEnd());
    }
    case 'revoke': {
      if (!values.cert) throw new UsageError('--cert FILE is required');
      LocalPki.open(dir).revoke(parseCertificate(readFileSync(values.cert)).der);
      return print({ revoked: true }, 'revoked');
    }
    case 'serve': {
      const running = await LocalPki.open(dir).serve();
      print(
        { ocsp: running.ocspUrl, tsa: running.tsaUrl, conf: running.confUrl, management: running.managementUrl ?? null },
        `OCSP responder ${running.ocspUrl}\nTSA ${running.tsaUrl}\nconfiguration source ${running.confUrl}\nmanagement service ${running.managementUrl ?? 'none (the PKI was made without a management port)'}`,
      );
      return new Promise<number>((resolve) => {
        const stop = () => void running.close().then(() => resolve(0));
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    }
    case 'requests': {
      const requests = LocalPki.open(dir).managementRequests();
      const lines = requests.map((r) => [r.id, r.status, r.type, r.serverId, requestSubject(r), r.receivedAt].join('\t'));
      return print({ requests }, requests.length ? lines.join('\n') : 'no management requests');
    }
    case 'approve': {
      const id = args[0];
      if (!id) throw new UsageError('the id of the request to approve is required (xrd testpki requests lists them)');
      const approved = LocalPki.open(dir).approveManagementRequest(id);
      return print(approved, `request ${approved.id} (${approved.type}) approved: ${approved.serverId} ${requestSubject(approved)}`);
    }
    default:
      throw new UsageError(`unknown command "testpki ${command ?? ''}"`);
  }
}

/** What a management request is about besides its server, as `xrd testpki requests` shows it. */
function requestSubject(r: ManagementRequestView): string {
  const parts = [r.client, r.address !== undefined ? `address ${r.address}` : undefined, r.authCertHash !== undefined ? `authentication certificate ${r.authCertHash}` : undefined, r.subsystemName !== undefined ? `name "${r.subsystemName}"` : undefined, r.message !== undefined ? `message "${r.message}"` : undefined];
  return parts.filter((p) => p !== undefined).join(' ') || '-';
}
