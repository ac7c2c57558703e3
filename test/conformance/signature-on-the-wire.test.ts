/**
 * The reference's signed messages (../shared/xroad-vectors/asic) arriving at our server proxy on the
 * wire, as a reference client proxy would send them: the server proxy accepts the valid signature
 * and refuses the broken ones with the codes the README gives, as the library and `xrd asic
 * verify` do (test/signature/vectors.test.ts). The server proxy runs in-process with the vectors'
 * global configuration and its clock at the messages' signing time; the calling server's TLS check
 * is left out (the vectors come without its key), everything from decoding on is the real path.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGlobalConf } from '../../src/globalconf/global-conf.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { silentLogger } from '../../src/platform/logger.ts';
import { SpoolFolder, concatPieces } from '../../src/platform/spool.ts';
import { readSoapFault } from '../../src/protocol/faults.ts';
import { parseClientId, parseSecurityServerId } from '../../src/protocol/identifiers.ts';
import { encodeProxyMessage } from '../../src/protocol/proxy-message.ts';
import type { MemberSigning } from '../../src/proxy/shared/member-signing.ts';
import { MessageRecorder } from '../../src/proxy/shared/message-recorder.ts';
import type { PeerVerifier } from '../../src/proxy/shared/peer-verifier.ts';
import { startServerProxy } from '../../src/proxy/server/server-proxy.ts';
import { ensureInternalTls } from '../../src/serverconf/internal-tls.ts';
import { clientWithServices } from '../../src/serverconf/serverconf-json.ts';
import { readAsic } from '../../src/signature/asic.ts';
import { VECTORS } from '../support/vectors.ts';

const dir = mkdtempSync(join(tmpdir(), 'xrd-wire-vectors-'));
const reached: string[] = [];
let service: http.Server;
let proxy: { readonly port: number; close(): Promise<void> };
let port: number;
/** The server proxy's clock: set to each message's signing time, when its OCSP responses were fresh. */
let now = new Date();

beforeAll(async () => {
  service = http.createServer((req, res) => {
    req.resume();
    reached.push(req.url ?? '');
    res.writeHead(500, { 'content-type': 'text/xml' }).end('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Server</faultcode><faultstring>reached</faultstring></s:Fault></s:Body></s:Envelope>');
  });
  await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
  const conf = loadGlobalConf(join(VECTORS, 'globalconf'));
  const tls = ensureInternalTls(join(dir, 'tls'));
  const provider = parseClientId('DEV/COM/1234/TestService');
  const spool = new SpoolFolder(join(dir, 'spool'), { thresholdBytes: 1024 * 1024 });
  spool.purge();
  const serverConf = {
    serverId: parseSecurityServerId('DEV/COM/1234/SS0'),
    clients: [
      clientWithServices(
        { id: provider, connectionType: 'HTTP' },
        ['getRandom', 'storeAttachments'].map((code) => ({ code, version: 'v1', type: 'SOAP' as const, url: `http://127.0.0.1:${(service.address() as AddressInfo).port}/${code}`, timeoutSeconds: 10, allowed: ['DEV/COM/4321/TestClient'] })),
      ),
    ],
    timestampingServices: [],
  };
  const noSigning = { sign: async () => Promise.reject(new XrdError('CannotCreateSignature', { reason: 'no signer in this test' })) } as unknown as MemberSigning;
  const anyPeer = { admitClientServer: () => parseSecurityServerId('DEV/COM/4321/SS1'), verifyClient: () => undefined } as unknown as PeerVerifier;
  proxy = await startServerProxy(
    {
      serverConf: () => serverConf,
      globalConf: () => conf,
      signing: noSigning,
      peers: anyPeer,
      recorder: new MessageRecorder(undefined, undefined),
      logger: silentLogger(),
      settings: { spool, maxSoapBytes: 1024 * 1024, faultCodes: 'camel' },
      internalTls: () => tls,
      now: () => now,
    },
    { host: '127.0.0.1', port: 0, tls: async () => ({ cert: tls.certPem, key: tls.keyPem }) },
  );
  port = proxy.port;
});

afterAll(async () => {
  await proxy?.close();
  await new Promise<void>((r) => service.close(() => r()));
});

/** The container's message and signature as a reference client proxy sends them (ProxyMessageEncoder's layout). */
async function send(name: string, edit: (soap: string) => string = (soap) => soap): Promise<{ faultCode: string; faultString: string }> {
  const c = readAsic(readFileSync(join(VECTORS, 'asic', `${name}.asice`)));
  now = new Date(/SigningTime>([^<]+)</.exec(c.signatureXml.toString())![1]!);
  const encoded = encodeProxyMessage({
    content: { kind: 'soap', soap: Buffer.from(edit(c.message.toString('utf8'))), contentType: 'text/xml; charset=UTF-8' },
    signature: { signatureXml: c.signatureXml, ...(c.hashChainResult && c.hashChain ? { hashChainResult: c.hashChainResult, hashChain: c.hashChain } : {}) },
    originalContentType: 'text/xml; charset=UTF-8',
    proxyVersion: '7.8.0',
    requestId: `wire-${name}`,
  });
  const body = concatPieces(encoded.pieces);
  const answer = await new Promise<Buffer>((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, method: 'POST', path: '/', rejectUnauthorized: false, headers: { ...encoded.headers, 'content-type': encoded.contentType } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve(Buffer.concat(chunks)));
    });
    req.on('error', reject);
    req.end(body);
  });
  const fault = readSoapFault(answer);
  if (!fault) throw new Error(`not a fault: ${answer.toString()}`);
  return fault;
}

describe('AsicContainerVerifierTest’s messages on the wire to our server proxy', () => {
  it('valid-signed-message: the signature is accepted and the request reaches the service', async () => {
    const before = reached.length;
    const fault = await send('valid-signed-message');
    expect(reached.length).toBe(before + 1);
    // The service's own fault comes back unchanged: everything before the service call passed.
    expect(fault).toMatchObject({ faultCode: 's:Server', faultString: 'reached' });
  });

  it('wrong-message → InvalidSignatureValue, and the service is not called', async () => {
    const before = reached.length;
    expect((await send('wrong-message')).faultCode).toBe('Server.ServerProxy.SignatureVerification.InvalidSignatureValue');
    expect(reached.length).toBe(before);
  });

  it('invalid-signed-hashchain → MalformedSignature.InvalidHashChainRef', async () => {
    expect((await send('invalid-signed-hashchain')).faultCode).toBe('Server.ServerProxy.SignatureVerification.MalformedSignature.InvalidHashChainRef');
  });

  it('valid-signed-hashchain without the attachment its chain names is refused: on the wire every part must be there', async () => {
    const before = reached.length;
    expect((await send('valid-signed-hashchain')).faultCode).toMatch(/^Server\.ServerProxy\.SignatureVerification\.MalformedSignature\./);
    expect(reached.length).toBe(before);
  });
});

describe('a request for another server of the provider (ServerMessageProcessor.verifySecurityServer)', () => {
  const naming = (server: string) => (soap: string) =>
    soap.replace(
      '<xroad:id>',
      `<xroad:securityServer id:objectType="SERVER"><id:xRoadInstance>DEV</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>1234</id:memberCode><id:serverCode>${server}</id:serverCode></xroad:securityServer><xroad:id>`,
    );

  it('naming another server is refused before anything else is looked at', async () => {
    const fault = await send('valid-signed-message', naming('SS9'));
    expect(fault).toMatchObject({ faultCode: 'Server.ServerProxy.ServiceFailed.InvalidSecurityServer', faultString: "Invalid security server identifier 'SERVER:DEV/COM/1234/SS9' expected 'SERVER:DEV/COM/1234/SS0'" });
  });

  it('naming this server passes that check (the edited message then fails its signature)', async () => {
    expect((await send('valid-signed-message', naming('SS0'))).faultCode).toBe('Server.ServerProxy.SignatureVerification.InvalidSignatureValue');
  });
});
