/**
 * The message format between security servers (docs/transport.md): round trips of every kind of
 * message, the exact layout the reference writes, messages laid out by hand as the reference sends
 * them, an independent MIME parser (Python's email package) reading what we write, a real signed
 * message from the reference's vectors surviving the trip byte for byte, and the coded errors for
 * malformed input.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { soapFault } from '../../src/protocol/faults.ts';
import { restRequestHeaderPart, restResponseHeaderPart } from '../../src/protocol/rest-message.ts';
import { concatPieces, memoryBody, type Body } from '../../src/platform/spool.ts';
import {
  decodeProxyMessage,
  encodeProxyMessage,
  signedPartsOf,
  type DecodeOptions,
  type ProxyContent,
  type ProxyMessage,
  type SoapContent,
} from '../../src/protocol/proxy-message.ts';
import { soapPackagePieces } from '../../src/protocol/soap-package.ts';
import { readAsic } from '../../src/signature/asic.ts';
import { parseSignature, verifySignatureCore } from '../../src/signature/verifier.ts';
import { VECTORS, fromContainer } from '../support/vectors.ts';

const container = (name: string) => readAsic(readFileSync(join(VECTORS, 'asic', `${name}.asice`)));
const OCSP = fromContainer('valid-signed-message.asice').ocsp;
const SOAP = Buffer.from(
  '<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xrd="http://x-road.eu/xsd/xroad.xsd" xmlns:id="http://x-road.eu/xsd/identifiers">' +
    '<SOAP-ENV:Header><xrd:client id:objectType="SUBSYSTEM"><id:xRoadInstance>DEV</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>2222</id:memberCode><id:subsystemCode>CLIENT</id:subsystemCode></xrd:client>' +
    '<xrd:service id:objectType="SERVICE"><id:xRoadInstance>DEV</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>1111</id:memberCode><id:subsystemCode>PROVIDER</id:subsystemCode><id:serviceCode>getRandom</id:serviceCode></xrd:service>' +
    '<xrd:id>q-1</xrd:id><xrd:protocolVersion>4.0</xrd:protocolVersion></SOAP-ENV:Header><SOAP-ENV:Body><getRandom xmlns="http://test.x-road.fi/producer"/></SOAP-ENV:Body></SOAP-ENV:Envelope>\r\n',
);
const SIG = Buffer.from('<asic:XAdESSignatures xmlns:asic="http://uri.etsi.org/02918/v1.2.1#">…</asic:XAdESSignatures>');

/** Encodes, then decodes what went over the wire, as the peer would. */
async function trip(msg: ProxyMessage, options: DecodeOptions = {}) {
  const encoded = encodeProxyMessage(msg);
  const wire = { ...encoded, body: concatPieces(encoded.pieces) };
  return { wire, decoded: await decodeProxyMessage(wire.contentType, wire.body, wire.headers, options) };
}

/** The same, read as it arrives in small chunks. */
async function tripInChunks(msg: ProxyMessage, options: DecodeOptions = {}) {
  const encoded = encodeProxyMessage(msg);
  const body = concatPieces(encoded.pieces);
  async function* chunks() {
    for (let i = 0; i < body.length; i += 7) yield body.subarray(i, i + 7);
  }
  return decodeProxyMessage(encoded.contentType, chunks(), encoded.headers, options);
}

const codeOf = async (fn: () => Promise<unknown> | unknown): Promise<string> => {
  try {
    await fn();
  } catch (err) {
    return (err as { code: string }).code;
  }
  return 'no error';
};

/** Bodies as their bytes, for comparing contents. */
const bytesOf = (b: Body) => b.bytes();
function plain(content: ProxyContent | undefined): unknown {
  if (!content) return content;
  if (content.kind === 'rest') return { ...content, ...(content.body ? { body: bytesOf(content.body) } : {}) };
  return { ...content, ...(content.attachments ? { attachments: content.attachments.map((a) => ({ ...a, body: bytesOf(a.body) })) } : {}) };
}
const body = (b: Buffer | string) => memoryBody(Buffer.from(b));

interface PyPart {
  type: string;
  headers: [string, string][];
  sha256?: string;
  parts?: PyPart[];
}

/** The structure Python's email package sees: content types, headers and a digest of each leaf's bytes. */
function pythonMime(contentType: string, body: Buffer): PyPart {
  const script = `
import sys, json, hashlib, email, email.policy
msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.compat32)
def walk(p):
    # The raw header: Python reads "signature/bdoc-1.0/ts" (two slashes) as invalid and says text/plain.
    out = {'type': p.get('content-type', '').split(';')[0].strip().lower(), 'headers': [[k.lower(), v] for k, v in p.items() if k.lower() != 'content-type']}
    if p.is_multipart():
        out['parts'] = [walk(c) for c in p.get_payload()]
    else:
        out['sha256'] = hashlib.sha256(p.get_payload(decode=True)).hexdigest()
    return out
print(json.dumps(walk(msg)))
`;
  const input = Buffer.concat([Buffer.from(`Content-Type: ${contentType}\r\n\r\n`), body]);
  const out = JSON.parse(execFileSync('python3', ['-c', script], { input }).toString('utf8')) as PyPart;
  return { ...out, headers: [] };
}
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('round trips', () => {
  it('a SOAP request: OCSP first, message, signature last; transport headers; bytes unchanged', async () => {
    const msg: ProxyMessage = {
      ocspResponses: [OCSP, OCSP],
      content: { kind: 'soap', soap: SOAP, contentType: 'text/xml; charset=UTF-8' },
      signature: { signatureXml: SIG },
      originalContentType: 'text/xml; charset=utf-8',
      originalSoapAction: '""',
      proxyVersion: '7.8.0',
      requestId: '6f1c2f5e-8a44-4d2b-9f55-1d2a3b4c5d6e',
    };
    const { wire, decoded } = await trip(msg, { direction: 'request' });
    expect(wire.contentType).toMatch(/^multipart\/mixed; charset=UTF-8; boundary=xtop[A-Za-z]{30}$/);
    expect(wire.length).toBe(wire.body.length);
    expect(wire.headers).toEqual({
      'x-hash-algorithm': 'SHA-512',
      'x-original-content-type': 'text/xml; charset=utf-8',
      'x-original-soapaction': '""',
      'x-proxy-version': '7.8.0',
      'x-road-request-id': '6f1c2f5e-8a44-4d2b-9f55-1d2a3b4c5d6e',
    });
    expect(decoded.isFault).toBe(false);
    expect(decoded.ocspResponses).toEqual([OCSP, OCSP]);
    expect(decoded.content).toEqual({ kind: 'soap', soap: SOAP, contentType: 'text/xml; charset=UTF-8', partHeaders: [] });
    expect(decoded.soapHeader).toMatchObject({ id: 'q-1', service: { serviceCode: 'getRandom' } });
    expect(decoded.signature).toEqual({ signatureXml: SIG });
    expect(decoded).toMatchObject({ hashAlgorithm: 'SHA-512', originalSoapAction: '""', proxyVersion: '7.8.0', requestId: msg.requestId, originalContentType: msg.originalContentType });
    expect(pythonMime(wire.contentType, wire.body).parts!.map((p) => [p.type, p.sha256])).toEqual([
      ['application/ocsp-response', sha256(OCSP)],
      ['application/ocsp-response', sha256(OCSP)],
      ['text/xml', sha256(SOAP)],
      ['signature/bdoc-1.0/ts', sha256(SIG)],
    ]);
  });

  it('SOAP with attachments: nested multipart/mixed, each attachment with its headers and exact bytes, then the hash chain pair', async () => {
    const binary = Buffer.from([0, 1, 2, 0x0d, 0x0a, 0x2d, 0x2d, 0x78, 0x74, 0x6f, 0x70, 0xff, 0xfe, 0x0d, 0x0a]); // "\r\n--xtop" inside
    const attachments = [
      { contentType: 'text/plain; charset=UTF-8', headers: [['Content-Location', 'attachment.txt']] as [string, string][], body: body('hello\r\nworld') },
      { contentType: 'application/octet-stream', headers: [['Content-ID', '<data.bin>'], ['x-custom', 'a b']] as [string, string][], body: memoryBody(binary) },
      { contentType: 'application/json', headers: [], body: body('') },
    ];
    const content: SoapContent = { kind: 'soap', soap: SOAP, contentType: 'text/xml; charset=UTF-8', partHeaders: [['Content-ID', '<root>']], attachments };
    const msg: ProxyMessage = { content, signature: { signatureXml: SIG, hashChainResult: '<hashchainresult/>', hashChain: '<hashchain/>' } };
    const { wire, decoded } = await trip(msg, { direction: 'response' });
    expect(plain(decoded.content)).toEqual(plain(content));
    expect(plain((await tripInChunks(msg, { direction: 'response' })).content)).toEqual(plain(content));
    expect(decoded.signature).toEqual({ signatureXml: SIG, hashChainResult: Buffer.from('<hashchainresult/>'), hashChain: Buffer.from('<hashchain/>') });
    const parts = signedPartsOf(decoded.content!, decoded.signature);
    expect({ ...parts, attachments: parts.attachments.map(bytesOf) }).toEqual({
      message: SOAP,
      attachments: attachments.map((a) => a.body.bytes()),
      hashChainResult: Buffer.from('<hashchainresult/>'),
      hashChain: Buffer.from('<hashchain/>'),
    });

    const py = pythonMime(wire.contentType, wire.body);
    expect(py.parts!.map((p) => p.type)).toEqual(['text/xml', 'multipart/mixed', 'application/hash-chain-result', 'application/hash-chain', 'signature/bdoc-1.0/ts']);
    expect(py.parts![0]!.headers).toEqual([['content-id', '<root>']]);
    expect(py.parts![1]!.parts).toEqual(attachments.map((a) => ({ type: a.contentType.split(';')[0], headers: a.headers.map(([n, v]) => [n.toLowerCase(), v]), sha256: sha256(a.body.bytes()) })));
  });

  it('attachments go to the spool as they arrive, and a failed decode leaves no spool file behind', async () => {
    const { SpoolFolder } = await import('../../src/platform/spool.ts');
    const { mkdtempSync, readdirSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'xrd-pm-spool-'));
    const spool = new SpoolFolder(dir, { thresholdBytes: 1000 });
    const big = memoryBody(Buffer.alloc(50_000, 7));
    const msg: ProxyMessage = { content: { kind: 'soap', soap: SOAP, contentType: 'text/xml', attachments: [{ contentType: 'application/octet-stream', headers: [], body: big }] }, signature: { signatureXml: SIG, hashChainResult: '<r/>', hashChain: '<c/>' } };
    const decoded = await tripInChunks(msg, { spool });
    const att = (decoded.content as SoapContent).attachments![0]!.body;
    expect(att.file).toBeDefined();
    expect(att.digest('sha512')).toEqual(big.digest('sha512'));
    att.dispose();
    expect(readdirSync(dir)).toEqual([]);
    const encoded = encodeProxyMessage(msg);
    const wire = concatPieces(encoded.pieces);
    const cut = wire.subarray(0, wire.indexOf('application/hash-chain-result') - 60); // the signature never comes
    expect(await codeOf(() => decodeProxyMessage(encoded.contentType, cut, { 'x-hash-algorithm': 'SHA-512' }, { spool }))).toBe('MissingSignature');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a REST request with a body says x-road-message-type REST; a response without a body has no body part, an empty body an empty one', async () => {
    const headerPart = restRequestHeaderPart('POST', '/r1/DEV/COM/1111/PROVIDER/rest-test/hello?name=A%20B', [
      ['X-Road-Client', 'DEV/COM/2222/CLIENT'],
      ['Content-Type', 'application/json'],
      ['x-road-request-id', 'rid-1'],
      ['x-road-id', 'q-1'],
    ]);
    const restBody = body('{"name":"ünï"}');
    const req = await trip({ ocspResponses: [OCSP], content: { kind: 'rest', role: 'request', headerPart, body: restBody }, signature: { signatureXml: SIG }, requestId: 'rid-1' }, { direction: 'request' });
    expect(req.wire.headers['x-road-message-type']).toBe('REST');
    expect(plain(req.decoded.content)).toEqual({ kind: 'rest', role: 'request', headerPart, body: restBody.bytes() });
    expect(req.decoded.messageType).toBe('REST');
    expect(req.decoded.restRequest).toMatchObject({ method: 'POST', queryId: 'q-1', requestId: 'rid-1', servicePath: '/hello?name=A%20B' });
    expect(signedPartsOf(req.decoded.content!).attachments.map(bytesOf)).toEqual([restBody.bytes()]);
    expect(pythonMime(req.wire.contentType, req.wire.body).parts!.map((p) => p.type)).toEqual([
      'application/ocsp-response',
      'application/x-road-rest-request',
      'application/x-road-rest-body',
      'signature/bdoc-1.0/ts',
    ]);

    const responsePart = restResponseHeaderPart(204, 'No Content', [['x-road-id', 'q-1'], ['x-road-request-hash', 'aGFzaA==']]);
    const noBody = await trip({ content: { kind: 'rest', role: 'response', headerPart: responsePart }, signature: { signatureXml: SIG } }, { direction: 'response', kind: 'rest' });
    expect(noBody.wire.headers).toEqual({ 'x-hash-algorithm': 'SHA-512' });
    expect(noBody.decoded.content).toEqual({ kind: 'rest', role: 'response', headerPart: responsePart });
    expect(signedPartsOf(noBody.decoded.content!).attachments).toEqual([]);
    const emptyBody = await trip({ content: { kind: 'rest', role: 'response', headerPart: responsePart, body: body('') }, signature: { signatureXml: SIG } });
    expect(plain(emptyBody.decoded.content)).toEqual({ kind: 'rest', role: 'response', headerPart: responsePart, body: Buffer.alloc(0) });
    expect(signedPartsOf(emptyBody.decoded.content!).attachments.map(bytesOf)).toEqual([Buffer.alloc(0)]);
  });

  it('a real signed message and a real batch signature from the reference vectors still verify after the trip, and not when a byte changes', async () => {
    for (const name of ['valid-signed-message', 'valid-signed-hashchain']) {
      const c = container(name);
      const signature = { signatureXml: c.signatureXml, ...(c.hashChainResult && c.hashChain ? { hashChainResult: c.hashChainResult, hashChain: c.hashChain } : {}) };
      const { decoded } = await trip({ ocspResponses: [OCSP], content: { kind: 'soap', soap: c.message, contentType: 'text/xml; charset=UTF-8' }, signature });
      const parts = signedPartsOf(decoded.content!, decoded.signature);
      // The batch vector's container does not carry its attachment: verify what is here.
      const core = verifySignatureCore(parseSignature(decoded.signature!.signatureXml), parts, { allowMissingParts: true });
      expect(core.verifiedParts).toContain('/message.xml');
      const tampered = Buffer.from(parts.message);
      tampered[tampered.length - 20] ^= 1;
      expect(() => verifySignatureCore(parseSignature(decoded.signature!.signatureXml), { ...parts, message: tampered }, { allowMissingParts: true })).toThrow();
    }
  });
});

describe('the layout the reference writes and reads', () => {
  it('encodes byte for byte as the reference MultipartEncoder lays it out', () => {
    const wire = encodeProxyMessage(
      {
        ocspResponses: [Buffer.from([0x30, 0x03, 1, 2, 3])],
        content: { kind: 'soap', soap: Buffer.from('<soap/>'), contentType: 'text/xml; charset=UTF-8', attachments: [{ contentType: 'text/plain', headers: [['content-id', '<a>']], body: body('att') }] },
        signature: { signatureXml: '<sig/>', hashChainResult: '<hcr/>', hashChain: '<hc/>' },
      },
      { boundary: 'xtopB', attachmentBoundary: 'xattB' },
    );
    expect(wire.contentType).toBe('multipart/mixed; charset=UTF-8; boundary=xtopB');
    const expected = Buffer.concat([
      Buffer.from('--xtopB\r\ncontent-type: application/ocsp-response\r\n\r\n'),
      Buffer.from([0x30, 0x03, 1, 2, 3]),
      Buffer.from(
        '\r\n--xtopB\r\ncontent-type: text/xml; charset=UTF-8\r\n\r\n<soap/>' +
          '\r\n--xtopB\r\ncontent-type: multipart/mixed; charset=UTF-8; boundary=xattB\r\n\r\n' +
          '\r\n--xattB\r\ncontent-type: text/plain\r\ncontent-id: <a>\r\n\r\natt\r\n--xattB--\r\n' +
          '\r\n--xtopB\r\ncontent-type: application/hash-chain-result\r\n\r\n<hcr/>' +
          '\r\n--xtopB\r\ncontent-type: application/hash-chain\r\n\r\n<hc/>' +
          '\r\n--xtopB\r\ncontent-type: signature/bdoc-1.0/ts\r\n\r\n<sig/>' +
          '\r\n--xtopB--\r\n',
      ),
    ]);
    expect(concatPieces(wire.pieces).toString('latin1')).toBe(expected.toString('latin1'));
    expect(wire.length).toBe(expected.length);
  });

  it('decodes a message laid out by hand as the reference sends it: capitalised headers, LF line ends, padding after delimiters, preamble', async () => {
    const soap = SOAP.toString().trimEnd().replaceAll('\r\n', '\n');
    const message = Buffer.from(
      'preamble, ignored\n' +
        '--xtop1357783211hcn1yiro \n' +
        'Content-Type: text/xml ; charset=UTF-8\n' +
        '\n' +
        soap + '\n' +
        '--xtop1357783211hcn1yiro\n' +
        'Content-Type: multipart/mixed; charset=UTF-8; boundary=xtop569125687h3h10du0 \n' +
        '\n' +
        '--xtop569125687h3h10du0\n' +
        'Content-Type: text/plain; charset=UTF-8\n' +
        'Content-Location: attachment.txt\n' +
        '\n' +
        'first line\nsecond line\n' +
        '--xtop569125687h3h10du0 \n' +
        'Content-Type: application/octet-stream\n' +
        'Content-Transfer-Encoding: base64\n' +
        'Content-Id: <data.bin>\n' +
        '\n' +
        'AAECAw==\n' +
        '--xtop569125687h3h10du0--\n' +
        '\n' +
        '--xtop1357783211hcn1yiro \n' +
        'Content-Type: application/hash-chain-result\n\n<hcr/>\n' +
        '--xtop1357783211hcn1yiro \n' +
        'Content-Type: application/hash-chain\n\n<hc/>\n' +
        '--xtop1357783211hcn1yiro \n' +
        'Content-Type: signature/bdoc-1.0/ts \n\n<sig/>\n' +
        '--xtop1357783211hcn1yiro--\n',
    );
    const m = await decodeProxyMessage('multipart/mixed; charset=UTF-8; boundary=xtop1357783211hcn1yiro', message, { 'X-Hash-Algorithm': 'SHA-512' }, { direction: 'response', kind: 'soap' });
    expect(plain(m.content)).toEqual({
      kind: 'soap',
      soap: Buffer.from(soap),
      contentType: 'text/xml ; charset=UTF-8',
      partHeaders: [],
      attachments: [
        { contentType: 'text/plain; charset=UTF-8', headers: [['Content-Location', 'attachment.txt']], body: Buffer.from('first line\nsecond line') },
        { contentType: 'application/octet-stream', headers: [['Content-Transfer-Encoding', 'base64'], ['Content-Id', '<data.bin>']], body: Buffer.from('AAECAw==') },
      ],
    });
    expect(m.signature).toEqual({ signatureXml: Buffer.from('<sig/>'), hashChainResult: Buffer.from('<hcr/>'), hashChain: Buffer.from('<hc/>') });
  });

  it('a nested boundary that extends the outer one is content of the nested part, not a delimiter', async () => {
    const message = Buffer.from(
      `--abc\r\ncontent-type: text/xml\r\n\r\n${SOAP}\r\n` +
        '--abc\r\ncontent-type: multipart/mixed; boundary=abcd\r\n\r\n' +
        '--abcd\r\ncontent-type: text/plain\r\n\r\none\r\n--abcd\r\ncontent-type: text/plain\r\n\r\ntwo --abc not a delimiter\r\n--abcd--\r\n' +
        '\r\n--abc\r\ncontent-type: signature/bdoc-1.0/ts\r\n\r\n<sig/>\r\n--abc--\r\n',
    );
    const m = await decodeProxyMessage('multipart/mixed; boundary="abc"', message, { 'x-hash-algorithm': 'sha-512' });
    expect((m.content as SoapContent).attachments!.map((a) => a.body.bytes().toString())).toEqual(['one', 'two --abc not a delimiter']);
  });
});

describe('faults', () => {
  const fault = { faultCode: 'Server.ServerProxy.AccessDenied', faultString: 'Request is not allowed: DEV/COM/1111/PROVIDER/getRandom', detail: 'e-1' };

  it('a fault before the answer began is the whole body, text/xml, with no transport headers', async () => {
    const { wire, decoded } = await trip({ fault }, { direction: 'response', kind: 'rest' });
    expect(wire.contentType).toBe('text/xml; charset=UTF-8');
    expect(wire.headers).toEqual({});
    expect(wire.body).toEqual(soapFault(fault.faultCode, fault.faultString, fault.detail));
    expect(decoded).toMatchObject({ isFault: true, fault: { ...fault, xml: wire.body }, ocspResponses: [] });
    expect(decoded.content).toBeUndefined();
    // The server proxy never accepts one as a request.
    expect(await codeOf(() => decodeProxyMessage(wire.contentType, wire.body, {}, { direction: 'request' }))).toBe('InvalidContentType');
  });

  it('a text/xml answer that is not a fault says what is wrong with it, or that a regular message is out of place (ProxyMessageDecoder.parseFault)', async () => {
    expect(await codeOf(() => decodeProxyMessage('text/xml', SOAP, {}, { direction: 'response' }))).toBe('InvalidMessage');
    expect(await codeOf(() => decodeProxyMessage('text/xml', Buffer.alloc(0), {}, { direction: 'response' }))).toBe('InvalidSoap');
    const noBody = Buffer.from(SOAP.toString().replace(/<SOAP-ENV:Body>.*<\/SOAP-ENV:Body>/, ''));
    expect(await codeOf(() => decodeProxyMessage('text/xml', noBody, {}, { direction: 'response' }))).toBe('MissingBody');
  });

  it('a fault in place of the signature (signing failed after the message was sent) keeps the content and says isFault', async () => {
    const content = { kind: 'soap', soap: SOAP, contentType: 'text/xml; charset=UTF-8' } as const;
    const { wire, decoded } = await trip({ content, fault }, { direction: 'response' });
    expect(pythonMime(wire.contentType, wire.body).parts!.map((p) => p.type)).toEqual(['text/xml', 'text/xml']);
    expect(decoded).toMatchObject({ isFault: true, content: { soap: SOAP }, fault });
    expect(decoded.signature).toBeUndefined();
    expect(await codeOf(() => decodeProxyMessage(wire.contentType, wire.body, wire.headers, { direction: 'request' }))).toBe('MissingSignature');
  });

  it("a service's own fault passed on unsigned as the only part is returned as it was written", async () => {
    const serviceFault = Buffer.from('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Server</faultcode><faultstring>db down</faultstring></s:Fault></s:Body></s:Envelope>');
    const message = Buffer.from(`--xtopF\r\ncontent-type: text/xml; charset=UTF-8\r\n\r\n${serviceFault}\r\n--xtopF--\r\n`);
    const m = await decodeProxyMessage('multipart/mixed; charset=UTF-8; boundary=xtopF', message, { 'x-hash-algorithm': 'SHA-512' }, { direction: 'response' });
    expect(m).toMatchObject({ isFault: true, fault: { faultCode: 's:Server', faultString: 'db down', xml: serviceFault } });
    // Passing the received fault on sends its document unchanged.
    expect(concatPieces(encodeProxyMessage({ fault: m.fault! }).pieces)).toEqual(serviceFault);
  });
});

describe('malformed input is refused with a code', () => {
  const H = { 'x-hash-algorithm': 'SHA-512' };
  const S = SOAP.toString();
  const mp = (...parts: [string, string][]) =>
    Buffer.from(parts.map(([type, b]) => `--b\r\ncontent-type: ${type}\r\n\r\n${b}\r\n`).join('') + '--b--\r\n');
  const decode = (message: Buffer, options: DecodeOptions = {}, headers: Record<string, string> = H, contentType = 'multipart/mixed; boundary=b') =>
    codeOf(() => decodeProxyMessage(contentType, message, headers, options));
  const ok = mp(['text/xml', S], ['signature/bdoc-1.0/ts', '<sig/>']);

  it('content types', async () => {
    expect(await decode(ok)).toBe('no error');
    expect(await decode(ok, {}, H, 'application/json')).toBe('InvalidContentType');
    expect(await decode(ok, {}, H, '')).toBe('InvalidContentType');
    expect(await decode(ok, {}, H, 'multipart/mixed')).toBe('InvalidContentType');
    expect(await decode(mp(['image/png', 'x'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidContentType');
    expect(await decode(mp(['text/xml', S], ['image/png', 'x']))).toBe('InvalidContentType');
    expect(await decode(mp(['text/xml', S], ['text/xml', '<not-a-fault/>']))).toBe('InvalidContentType');
    expect(await decode(mp(['text/xml', S], ['multipart/mixed', ''], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidContentType');
    const noType = Buffer.from(`--b\r\ncontent-type: text/xml\r\n\r\n${S}\r\n--b\r\ncontent-type: multipart/mixed; boundary=n\r\n\r\n--n\r\nx-a: 1\r\n\r\nbody\r\n--n--\r\n\r\n--b\r\ncontent-type: signature/bdoc-1.0/ts\r\n\r\n<sig/>\r\n--b--\r\n`);
    expect(await decode(noType)).toBe('InvalidContentType');
  });

  it('the message is read as it is decoded: a SOAP part that is not an X-Road message says why', async () => {
    expect(await decode(mp(['text/xml', '<s/>'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidSoap');
    expect(await decode(mp(['text/xml', ''], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidSoap');
    expect(await decode(mp(['application/x-road-rest-request', 'GET\r\n/r1/A/B/C/D/e\r\nHost:x\r\n'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidMessage');
  });

  it('transport headers: a request must name its hash algorithm, an answer without one is read as SHA-512', async () => {
    expect(await decode(ok, { direction: 'request' }, {})).toBe('InvalidMessage');
    expect(await decode(ok, { direction: 'response' }, {})).toBe('no error');
    expect(await decode(ok, {}, { 'x-hash-algorithm': 'MD5' })).toBe('InvalidMessage');
  });

  it('a body without delimiters has no parts, and one cut short ends there, as the reference reads them', async () => {
    expect(await decode(Buffer.from('no delimiter at all'))).toBe('MissingSoap');
    expect(await decode(Buffer.alloc(0))).toBe('MissingSoap');
    expect(await decode(ok.subarray(0, ok.length - 8))).toBe('no error');
    expect(await decode(ok.subarray(0, ok.indexOf('--b\r\ncontent-type: signature')))).toBe('MissingSignature');
  });

  it('order, missing and extra parts', async () => {
    expect(await decode(mp(['text/xml', S]))).toBe('MissingSignature');
    expect(await decode(mp(['application/ocsp-response', '0\x00']))).toBe('MissingSoap');
    expect(await decode(mp(['signature/bdoc-1.0/ts', '<sig/>'], ['text/xml', S]))).toBe('InvalidMessage');
    expect(await decode(mp(['text/xml', S], ['signature/bdoc-1.0/ts', '<sig/>'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidMessage');
    expect(await decode(mp(['text/xml', S], ['application/ocsp-response', '0\x00'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidMessage');
    expect(await decode(mp(['text/xml', S], ['application/x-road-rest-body', '{}'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidMessage');
    expect(await decode(mp(['text/xml', S], ['application/hash-chain', '<hc/>'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidMessage');
    expect(await decode(mp(['text/xml', S], ['application/hash-chain-result', '<hcr/>'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidMessage');
    expect(await decode(mp(['application/ocsp-response', 'not DER'], ['text/xml', S], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('IOError');
  });

  it('the wrong kind of message for the direction or what was asked', async () => {
    const restRequest = mp(['application/x-road-rest-request', 'GET\r\n/r1/A/B/C/D/e\r\nX-Road-Client:A/B/C/D\r\nx-road-id:q\r\n'], ['signature/bdoc-1.0/ts', '<sig/>']);
    expect(await decode(restRequest, { direction: 'request' }, { ...H, 'x-road-message-type': 'REST' })).toBe('no error');
    expect(await decode(restRequest, { direction: 'request' })).toBe('MissingSoap');
    expect(await decode(restRequest, { direction: 'response' })).toBe('MissingRest');
    expect(await decode(ok, { kind: 'rest' })).toBe('MissingRest');
    const serviceFault = mp(['text/xml', soapFault('Server', 'x').toString()]);
    expect(await decode(serviceFault, { direction: 'response' })).toBe('no error');
    expect(await decode(serviceFault, { direction: 'request' })).toBe('MissingSoap');
  });

  it('too many parts or attachments, before the rest is read', async () => {
    const der = '0\x00';
    expect(await decode(mp(...Array.from({ length: 62 }, () => ['application/ocsp-response', der] as [string, string]), ['text/xml', S], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('no error');
    expect(await decode(mp(...Array.from({ length: 63 }, () => ['application/ocsp-response', der] as [string, string]), ['text/xml', S], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidMessage');
    const attachments = Array.from({ length: 11 }, (_, n) => ({ contentType: 'text/plain', headers: [], body: body(String(n)) }));
    const wire = encodeProxyMessage({ content: { kind: 'soap', soap: SOAP, contentType: 'text/xml', attachments }, signature: { signatureXml: SIG } });
    const bytes = concatPieces(wire.pieces);
    expect(await codeOf(() => decodeProxyMessage(wire.contentType, bytes, wire.headers, { maxAttachments: 11 }))).toBe('no error');
    expect(await codeOf(() => decodeProxyMessage(wire.contentType, bytes, wire.headers, { maxAttachments: 10 }))).toBe('InvalidMessage');
    expect(await codeOf(() => decodeProxyMessage(wire.contentType, bytes, wire.headers, { maxBytes: 100 }))).toBe('MessageTooLarge');
  });
});

describe('the SOAP package for the information system (ProxyMessage.writeSoapContent)', () => {
  const attachments = [{ contentType: 'application/octet-stream', headers: [['Content-ID', '<a1>']] as [string, string][], body: body(Buffer.from([1, 2, 3])) }];

  it('is rebuilt with the boundary of x-original-content-type, the SOAP part first', () => {
    const original = 'multipart/related; type="text/xml"; charset=UTF-8; boundary=jetty771';
    const pkg = soapPackagePieces({ kind: 'soap', soap: SOAP, contentType: 'text/xml; charset=UTF-8', partHeaders: [['Content-ID', '<root>']], attachments }, original);
    expect(pkg.contentType).toBe(original);
    const py = pythonMime(pkg.contentType, concatPieces(pkg.pieces));
    expect(py.type).toBe('multipart/related');
    expect(py.parts).toEqual([
      { type: 'text/xml', headers: [['content-id', '<root>']], sha256: sha256(SOAP) },
      { type: 'application/octet-stream', headers: [['content-id', '<a1>']], sha256: sha256(Buffer.from([1, 2, 3])) },
    ]);
  });

  it('is the bare envelope as text/xml when there was no package', () => {
    const bare = soapPackagePieces({ kind: 'soap', soap: SOAP, contentType: 'text/xml' }, 'text/xml; charset=utf-8');
    expect({ contentType: bare.contentType, body: concatPieces(bare.pieces) }).toEqual({ contentType: 'text/xml; charset=UTF-8', body: SOAP });
    const made = soapPackagePieces({ kind: 'soap', soap: SOAP, contentType: 'text/xml', attachments });
    expect(made.contentType).toMatch(/^multipart\/related; type="text\/xml"; charset=UTF-8; boundary=xatt[A-Za-z]{30}$/);
    expect(pythonMime(made.contentType, concatPieces(made.pieces)).parts!.map((p) => p.type)).toEqual(['text/xml', 'application/octet-stream']);
  });
});
