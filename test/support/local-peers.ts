/**
 * What conformance tests need of a local instance's servers to stand in for one of them on the
 * wire: its authentication certificate with TLS options whose key stays on its HSM (through its
 * signer, as the proxies use it), and services added to the provider's configuration.
 */
import type { LocalInstance, LocalServer } from '../../src/dev/localinstance/local-instance.ts';
import { nextServiceDescriptionId } from '../../src/serverconf/changes.ts';
import type { LocalClient } from '../../src/serverconf/model.ts';
import { describedServices, type ServiceSpec } from '../../src/serverconf/serverconf-json.ts';
import { changeServerConfIn } from '../../src/serverconf/store.ts';
import { SignerClient } from '../../src/signerapi/signer-client.ts';
import { XROAD_REFERENCE_CIPHERS, authKeyTlsOptions, type AuthTlsOptions } from '../../src/tls/auth-key-tls.ts';
import type { EchoService } from './echo-service.ts';
import { eventually } from './eventually.ts';
import { answeredOk, callClientProxy, restPath, soapRequest } from './information-system.ts';

export interface ServerAuth {
  /**
   * TLS options presenting the server's authentication certificate, signed by its signer, and
   * offering only the reference's cipher suites between security servers (SystemProperties
   * DEFAULT_XROAD_SSL_CIPHER_SUITES), as a reference peer would.
   */
  readonly tls: AuthTlsOptions;
  /** The authentication certificate (DER) and its chain up to the CA (DER, issuer first). */
  readonly cert: Buffer;
  readonly chain: readonly Buffer[];
}

/** The server's authentication key as its own proxy gets it (`authKeyInfo`), for a reference peer's TLS. */
export async function authOf(server: LocalServer): Promise<ServerAuth> {
  const signer = await SignerClient.connect(server.signerSocket);
  try {
    const info = await signer.call('authKeyInfo', { serverId: server.serverId });
    return { tls: authKeyTlsOptions(server.signerSocket, info, { ciphers: XROAD_REFERENCE_CIPHERS.join(':') }), cert: Buffer.from(info.cert, 'base64'), chain: info.chain.map((c) => Buffer.from(c, 'base64')) };
  } finally {
    signer.close();
  }
}

/**
 * Adds a service to the provider subsystem LOCAL/COM/1111/PROVIDER in ss1's configuration and
 * waits until ss1's proxy has read it (it looks at the store once a second): until `ready` resolves
 * (it throws, saying why, while the service is not there yet).
 */
export async function addProviderService(instance: LocalInstance, service: ServiceSpec, ready: () => Promise<unknown>): Promise<void> {
  await changeServerConfIn(instance.provider.proxyDataDir, { kind: 'system', name: 'test' }, 'ADD_SERVICE', (conf) => ({
    ...conf!,
    clients: conf!.clients.map((c) => (c.id.memberCode === '1111' && c.id.subsystem === 'PROVIDER' ? withService(c, service, nextServiceDescriptionId(conf!)) : c)),
  }));
  await eventually(async () => (await ready(), true), 10_000, `ss1 serving ${service.code}`);
}

/**
 * The echo service as two services of LOCAL/COM/1111/PROVIDER for LOCAL/COM/2222/CLIENT: SOAP
 * `swaEcho` (SOAP packages come back whole) and REST `restEcho`; ready once both answer through ss2.
 */
export async function addEchoServices(instance: LocalInstance, echo: EchoService): Promise<void> {
  const client = instance.clientIs.client;
  const soap = { method: 'POST', headers: { 'Content-Type': 'text/xml; charset=UTF-8' }, body: soapRequest(instance, 'swaEcho', 'ready') };
  await addProviderService(instance, { code: 'swaEcho', type: 'SOAP', url: echo.url, timeoutSeconds: 30, allowed: [client] }, () => answeredOk(callClientProxy(instance, '/', soap)));
  await addProviderService(instance, { code: 'restEcho', type: 'REST', url: echo.url, timeoutSeconds: 30, allowed: [client] }, () =>
    answeredOk(callClientProxy(instance, restPath(instance, 'restEcho'), { headers: { 'X-Road-Client': client } })),
  );
}

/** `client` with one more service: a description of its own, its base endpoint and its rights. */
function withService(client: LocalClient, service: ServiceSpec, nextId: number): LocalClient {
  const added = describedServices([service]);
  return {
    ...client,
    serviceDescriptions: [...client.serviceDescriptions, ...added.serviceDescriptions.map((d, i) => ({ ...d, id: nextId + i }))],
    endpoints: [...client.endpoints, ...added.endpoints.filter((e) => !client.endpoints.some((x) => x.serviceCode === e.serviceCode && x.method === e.method && x.path === e.path))],
    accessRights: [...client.accessRights, ...added.accessRights],
  };
}
