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
import { restRequestHeaderPart, restResponseHeaderPart } from '../../src/protocol/message-header.ts';
import {
  decodeProxyMessage,
  encodeProxyMessage,
  signedPartsOf,
  soapPackageOf,
  type DecodeOptions,
  type ProxyMessage,
  type SoapContent,
} from '../../src/protocol/proxy-message.ts';
import { readAsic } from '../../src/signature/asic.ts';
import { parseSignature, verifySignatureCore } from '../../src/signature/verifier.ts';
import { VECTORS, fromContainer } from '../support/vectors.ts';

const container = (name: string) => readAsic(readFileSync(join(VECTORS, 'asic', `${name}.asice`)));
const OCSP = fromContainer('valid-signed-message.asice').ocsp;
const SOAP = Buffer.from(
  '<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xrd="http://x-road.eu/xsd/xroad.xsd">' +
    '<SOAP-ENV:Header><xrd:id>q-1</xrd:id></SOAP-ENV:Header><SOAP-ENV:Body><getRandom xmlns="http://test.x-road.fi/producer"/></SOAP-ENV:Body></SOAP-ENV:Envelope>\r\n',
);
const SIG = Buffer.from('<asic:XAdESSignatures xmlns:asic="http://uri.etsi.org/02918/v1.2.1#">…</asic:XAdESSignatures>');

/** Encodes, then decodes what went over the wire, as the peer would. */
function trip(msg: ProxyMessage, options: DecodeOptions = {}) {
  const wire = encodeProxyMessage(msg);
  return { wire, decoded: decodeProxyMessage(wire.contentType, wire.body, wire.headers, options) };
}

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return (err as { code: string }).code;
  }
  return 'no error';
};

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
  it('a SOAP request: OCSP first, message, signature last; transport headers; bytes unchanged', () => {
    const msg: ProxyMessage = {
      ocspResponses: [OCSP, OCSP],
      content: { kind: 'soap', soap: SOAP, contentType: 'text/xml; charset=UTF-8' },
      signature: { signatureXml: SIG },
      originalContentType: 'text/xml; charset=utf-8',
      originalSoapAction: '""',
      proxyVersion: '7.8.0',
      requestId: '6f1c2f5e-8a44-4d2b-9f55-1d2a3b4c5d6e',
    };
    const { wire, decoded } = trip(msg, { direction: 'request' });
    expect(wire.contentType).toMatch(/^multipart\/mixed; charset=UTF-8; boundary=xtop[A-Za-z]{30}$/);
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
    expect(decoded.signature).toEqual({ signatureXml: SIG });
    expect(decoded).toMatchObject({ hashAlgorithm: 'SHA-512', originalSoapAction: '""', proxyVersion: '7.8.0', requestId: msg.requestId, originalContentType: msg.originalContentType });
    expect(pythonMime(wire.contentType, wire.body).parts!.map((p) => [p.type, p.sha256])).toEqual([
      ['application/ocsp-response', sha256(OCSP)],
      ['application/ocsp-response', sha256(OCSP)],
      ['text/xml', sha256(SOAP)],
      ['signature/bdoc-1.0/ts', sha256(SIG)],
    ]);
  });

  it('SOAP with attachments: nested multipart/mixed, each attachment with its headers and exact bytes, then the hash chain pair', () => {
    const binary = Buffer.from([0, 1, 2, 0x0d, 0x0a, 0x2d, 0x2d, 0x78, 0x74, 0x6f, 0x70, 0xff, 0xfe, 0x0d, 0x0a]); // "\r\n--xtop" inside
    const attachments = [
      { contentType: 'text/plain; charset=UTF-8', headers: [['content-location', 'attachment.txt']] as [string, string][], body: Buffer.from('hello\r\nworld') },
      { contentType: 'application/octet-stream', headers: [['content-id', '<data.bin>'], ['x-custom', 'a b']] as [string, string][], body: binary },
      { contentType: 'application/json', headers: [], body: Buffer.alloc(0) },
    ];
    const content: SoapContent = { kind: 'soap', soap: SOAP, contentType: 'text/xml; charset=UTF-8', partHeaders: [['content-id', '<root>']], attachments };
    const msg: ProxyMessage = { content, signature: { signatureXml: SIG, hashChainResult: '<hashchainresult/>', hashChain: '<hashchain/>' } };
    const { wire, decoded } = trip(msg, { direction: 'response' });
    expect(decoded.content).toEqual(content);
    expect(decoded.signature).toEqual({ signatureXml: SIG, hashChainResult: Buffer.from('<hashchainresult/>'), hashChain: Buffer.from('<hashchain/>') });
    expect(signedPartsOf(decoded.content!, decoded.signature)).toEqual({
      message: SOAP,
      attachments: attachments.map((a) => a.body),
      hashChainResult: Buffer.from('<hashchainresult/>'),
      hashChain: Buffer.from('<hashchain/>'),
    });

    const py = pythonMime(wire.contentType, wire.body);
    expect(py.parts!.map((p) => p.type)).toEqual(['text/xml', 'multipart/mixed', 'application/hash-chain-result', 'application/hash-chain', 'signature/bdoc-1.0/ts']);
    expect(py.parts![0]!.headers).toEqual([['content-id', '<root>']]);
    expect(py.parts![1]!.parts).toEqual(attachments.map((a) => ({ type: a.contentType.split(';')[0], headers: a.headers, sha256: sha256(a.body) })));
  });

  it('a REST request with a body says x-road-message-type REST; a response without a body has no body part, an empty body an empty one', () => {
    const headerPart = restRequestHeaderPart('POST', '/r1/DEV/COM/1111/PROVIDER/rest-test/hello?name=A%20B', [
      ['X-Road-Client', 'DEV/COM/2222/CLIENT'],
      ['Content-Type', 'application/json'],
      ['x-road-request-id', 'rid-1'],
    ]);
    const body = Buffer.from('{"name":"ünï"}');
    const req = trip({ ocspResponses: [OCSP], content: { kind: 'rest', role: 'request', headerPart, body }, signature: { signatureXml: SIG }, requestId: 'rid-1' }, { direction: 'request' });
    expect(req.wire.headers['x-road-message-type']).toBe('REST');
    expect(req.decoded.content).toEqual({ kind: 'rest', role: 'request', headerPart, body });
    expect(req.decoded.messageType).toBe('REST');
    expect(signedPartsOf(req.decoded.content!)).toEqual({ message: headerPart, attachments: [body] });
    expect(pythonMime(req.wire.contentType, req.wire.body).parts!.map((p) => p.type)).toEqual([
      'application/ocsp-response',
      'application/x-road-rest-request',
      'application/x-road-rest-body',
      'signature/bdoc-1.0/ts',
    ]);

    const responsePart = restResponseHeaderPart(204, 'No Content', [['x-road-id', 'q-1'], ['x-road-request-hash', 'aGFzaA==']]);
    const noBody = trip({ content: { kind: 'rest', role: 'response', headerPart: responsePart }, signature: { signatureXml: SIG } }, { direction: 'response', kind: 'rest' });
    expect(noBody.wire.headers).toEqual({ 'x-hash-algorithm': 'SHA-512' });
    expect(noBody.decoded.content).toEqual({ kind: 'rest', role: 'response', headerPart: responsePart });
    expect(signedPartsOf(noBody.decoded.content!).attachments).toEqual([]);
    const emptyBody = trip({ content: { kind: 'rest', role: 'response', headerPart: responsePart, body: Buffer.alloc(0) }, signature: { signatureXml: SIG } });
    expect(emptyBody.decoded.content).toEqual({ kind: 'rest', role: 'response', headerPart: responsePart, body: Buffer.alloc(0) });
    expect(signedPartsOf(emptyBody.decoded.content!).attachments).toEqual([Buffer.alloc(0)]);
  });

  it('a real signed message and a real batch signature from the reference vectors still verify after the trip, and not when a byte changes', () => {
    for (const name of ['valid-signed-message', 'valid-signed-hashchain']) {
      const c = container(name);
      const signature = { signatureXml: c.signatureXml, ...(c.hashChainResult && c.hashChain ? { hashChainResult: c.hashChainResult, hashChain: c.hashChain } : {}) };
      const { decoded } = trip({ ocspResponses: [OCSP], content: { kind: 'soap', soap: c.message, contentType: 'text/xml; charset=UTF-8' }, signature });
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
        content: { kind: 'soap', soap: Buffer.from('<soap/>'), contentType: 'text/xml; charset=UTF-8', attachments: [{ contentType: 'text/plain', headers: [['content-id', '<a>']], body: Buffer.from('att') }] },
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
    expect(wire.body.toString('latin1')).toBe(expected.toString('latin1'));
  });

  it('decodes a message laid out by hand as the reference sends it: capitalised headers, LF line ends, padding after delimiters, preamble', () => {
    const body = Buffer.from(
      'preamble, ignored\n' +
        '--xtop1357783211hcn1yiro \n' +
        'Content-Type: text/xml ; charset=UTF-8\n' +
        '\n' +
        '<Envelope/>\n' +
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
    const m = decodeProxyMessage('multipart/mixed; charset=UTF-8; boundary=xtop1357783211hcn1yiro', body, { 'X-Hash-Algorithm': 'SHA-512' }, { direction: 'response', kind: 'soap' });
    expect(m.content).toEqual({
      kind: 'soap',
      soap: Buffer.from('<Envelope/>'),
      contentType: 'text/xml ; charset=UTF-8',
      partHeaders: [],
      attachments: [
        { contentType: 'text/plain; charset=UTF-8', headers: [['content-location', 'attachment.txt']], body: Buffer.from('first line\nsecond line') },
        { contentType: 'application/octet-stream', headers: [['content-transfer-encoding', 'base64'], ['content-id', '<data.bin>']], body: Buffer.from('AAECAw==') },
      ],
    });
    expect(m.signature).toEqual({ signatureXml: Buffer.from('<sig/>'), hashChainResult: Buffer.from('<hcr/>'), hashChain: Buffer.from('<hc/>') });
  });

  it('a nested boundary that extends the outer one is content of the nested part, not a delimiter', () => {
    const body = Buffer.from(
      '--abc\r\ncontent-type: text/xml\r\n\r\n<s/>\r\n' +
        '--abc\r\ncontent-type: multipart/mixed; boundary=abcd\r\n\r\n' +
        '--abcd\r\ncontent-type: text/plain\r\n\r\none\r\n--abcd\r\ncontent-type: text/plain\r\n\r\ntwo --abc not a delimiter\r\n--abcd--\r\n' +
        '\r\n--abc\r\ncontent-type: signature/bdoc-1.0/ts\r\n\r\n<sig/>\r\n--abc--\r\n',
    );
    const m = decodeProxyMessage('multipart/mixed; boundary="abc"', body, { 'x-hash-algorithm': 'sha-512' });
    expect((m.content as SoapContent).attachments!.map((a) => a.body.toString())).toEqual(['one', 'two --abc not a delimiter']);
  });
});

describe('faults', () => {
  const fault = { faultCode: 'Server.ServerProxy.AccessDenied', faultString: 'Request is not allowed: DEV/COM/1111/PROVIDER/getRandom', detail: 'e-1' };

  it('a fault before the answer began is the whole body, text/xml, with no transport headers', () => {
    const { wire, decoded } = trip({ fault }, { direction: 'response', kind: 'rest' });
    expect(wire.contentType).toBe('text/xml; charset=UTF-8');
    expect(wire.headers).toEqual({});
    expect(wire.body).toEqual(soapFault(fault.faultCode, fault.faultString, fault.detail));
    expect(decoded).toMatchObject({ isFault: true, fault: { ...fault, xml: wire.body }, ocspResponses: [] });
    expect(decoded.content).toBeUndefined();
    // The server proxy never accepts one as a request.
    expect(codeOf(() => decodeProxyMessage(wire.contentType, wire.body, {}, { direction: 'request' }))).toBe('InvalidContentType');
  });

  it('a fault in place of the signature (signing failed after the message was sent) keeps the content and says isFault', () => {
    const content = { kind: 'soap', soap: SOAP, contentType: 'text/xml; charset=UTF-8' } as const;
    const { wire, decoded } = trip({ content, fault }, { direction: 'response' });
    expect(pythonMime(wire.contentType, wire.body).parts!.map((p) => p.type)).toEqual(['text/xml', 'text/xml']);
    expect(decoded).toMatchObject({ isFault: true, content: { soap: SOAP }, fault });
    expect(decoded.signature).toBeUndefined();
    expect(codeOf(() => decodeProxyMessage(wire.contentType, wire.body, wire.headers, { direction: 'request' }))).toBe('MissingSignature');
  });

  it("a service's own fault passed on unsigned as the only part is returned as it was written", () => {
    const serviceFault = Buffer.from('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Server</faultcode><faultstring>db down</faultstring></s:Fault></s:Body></s:Envelope>');
    const body = Buffer.from(`--xtopF\r\ncontent-type: text/xml; charset=UTF-8\r\n\r\n${serviceFault}\r\n--xtopF--\r\n`);
    const m = decodeProxyMessage('multipart/mixed; charset=UTF-8; boundary=xtopF', body, { 'x-hash-algorithm': 'SHA-512' }, { direction: 'response' });
    expect(m).toMatchObject({ isFault: true, fault: { faultCode: 's:Server', faultString: 'db down', xml: serviceFault } });
    // Passing the received fault on sends its document unchanged.
    expect(encodeProxyMessage({ fault: m.fault! }).body).toEqual(serviceFault);
  });
});

describe('malformed input is refused with a code', () => {
  const H = { 'x-hash-algorithm': 'SHA-512' };
  const mp = (...parts: [string, string][]) =>
    Buffer.from(parts.map(([type, body]) => `--b\r\ncontent-type: ${type}\r\n\r\n${body}\r\n`).join('') + '--b--\r\n');
  const decode = (body: Buffer, options: DecodeOptions = {}, headers: Record<string, string> = H, contentType = 'multipart/mixed; boundary=b') =>
    codeOf(() => decodeProxyMessage(contentType, body, headers, options));
  const ok = mp(['text/xml', '<s/>'], ['signature/bdoc-1.0/ts', '<sig/>']);

  it('content types', () => {
    expect(decode(ok)).toBe('no error');
    expect(decode(ok, {}, H, 'application/json')).toBe('InvalidContentType');
    expect(decode(ok, {}, H, '')).toBe('InvalidContentType');
    expect(decode(ok, {}, H, 'multipart/mixed')).toBe('InvalidContentType');
    expect(decode(Buffer.from('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><x/></s:Body></s:Envelope>'), {}, {}, 'text/xml')).toBe('InvalidMessage');
    expect(decode(mp(['image/png', 'x'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidContentType');
    expect(decode(mp(['text/xml', '<s/>'], ['image/png', 'x']))).toBe('InvalidContentType');
    expect(decode(mp(['text/xml', '<s/>'], ['text/xml', '<not-a-fault/>']))).toBe('InvalidContentType');
    expect(decode(mp(['text/xml', '<s/>'], ['multipart/mixed', ''], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidContentType');
    const noType = Buffer.from('--b\r\ncontent-type: text/xml\r\n\r\n<s/>\r\n--b\r\ncontent-type: multipart/mixed; boundary=n\r\n\r\n--n\r\nx-a: 1\r\n\r\nbody\r\n--n--\r\n\r\n--b\r\ncontent-type: signature/bdoc-1.0/ts\r\n\r\n<sig/>\r\n--b--\r\n');
    expect(decode(noType)).toBe('InvalidContentType');
  });

  it('transport headers', () => {
    expect(decode(ok, {}, {})).toBe('InvalidMessage');
    expect(decode(ok, {}, { 'x-hash-algorithm': 'MD5' })).toBe('InvalidMessage');
  });

  it('broken MIME', () => {
    expect(decode(Buffer.from('no delimiter at all'))).toBe('MimeParsingFailed');
    expect(decode(ok.subarray(0, ok.length - 8))).toBe('MimeParsingFailed');
    expect(decode(Buffer.alloc(0))).toBe('MimeParsingFailed');
  });

  it('order, missing and extra parts', () => {
    expect(decode(mp(['text/xml', '<s/>']))).toBe('MissingSignature');
    expect(decode(mp(['application/ocsp-response', '0\x00']))).toBe('MissingSoap');
    expect(decode(mp(['signature/bdoc-1.0/ts', '<sig/>'], ['text/xml', '<s/>']))).toBe('InvalidMessage');
    expect(decode(mp(['text/xml', '<s/>'], ['signature/bdoc-1.0/ts', '<sig/>'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidMessage');
    expect(decode(mp(['text/xml', '<s/>'], ['application/ocsp-response', '0\x00'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidMessage');
    expect(decode(mp(['text/xml', '<s/>'], ['application/x-road-rest-body', '{}'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidMessage');
    expect(decode(mp(['text/xml', '<s/>'], ['application/hash-chain', '<hc/>'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidMessage');
    expect(decode(mp(['text/xml', '<s/>'], ['application/hash-chain-result', '<hcr/>'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidMessage');
    expect(decode(mp(['application/ocsp-response', 'not DER'], ['text/xml', '<s/>'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidMessage');
  });

  it('the wrong kind of message for the direction or what was asked', () => {
    const restRequest = mp(['application/x-road-rest-request', 'GET\r\n/r1/A/B/C/D/e\r\n'], ['signature/bdoc-1.0/ts', '<sig/>']);
    expect(decode(restRequest, { direction: 'request' }, { ...H, 'x-road-message-type': 'REST' })).toBe('no error');
    expect(decode(restRequest, { direction: 'request' })).toBe('MissingSoap');
    expect(decode(restRequest, { direction: 'response' })).toBe('MissingRest');
    expect(decode(ok, { kind: 'rest' })).toBe('MissingRest');
    const serviceFault = mp(['text/xml', soapFault('Server', 'x').toString()]);
    expect(decode(serviceFault, { direction: 'response' })).toBe('no error');
    expect(decode(serviceFault, { direction: 'request' })).toBe('MissingSoap');
  });

  it('too many parts or attachments, before the rest is read', () => {
    const der = '0\x00';
    expect(decode(mp(...Array.from({ length: 62 }, () => ['application/ocsp-response', der] as [string, string]), ['text/xml', '<s/>'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('no error');
    expect(decode(mp(...Array.from({ length: 63 }, () => ['application/ocsp-response', der] as [string, string]), ['text/xml', '<s/>'], ['signature/bdoc-1.0/ts', '<sig/>']))).toBe('InvalidMessage');
    const attachments = Array.from({ length: 11 }, (_, n) => ({ contentType: 'text/plain', headers: [], body: Buffer.from(String(n)) }));
    const wire = encodeProxyMessage({ content: { kind: 'soap', soap: SOAP, contentType: 'text/xml', attachments }, signature: { signatureXml: SIG } });
    expect(codeOf(() => decodeProxyMessage(wire.contentType, wire.body, wire.headers, { maxAttachments: 11 }))).toBe('no error');
    expect(codeOf(() => decodeProxyMessage(wire.contentType, wire.body, wire.headers, { maxAttachments: 10 }))).toBe('InvalidMessage');
  });
});

describe('the SOAP package for the information system', () => {
  const attachments = [{ contentType: 'application/octet-stream', headers: [['content-id', '<a1>']] as [string, string][], body: Buffer.from([1, 2, 3]) }];

  it('is rebuilt with the boundary of x-original-content-type, the SOAP part first', () => {
    const original = 'multipart/related; type="text/xml"; charset=UTF-8; boundary=jetty771';
    const pkg = soapPackageOf({ kind: 'soap', soap: SOAP, contentType: 'text/xml; charset=UTF-8', partHeaders: [['content-id', '<root>']], attachments }, original);
    expect(pkg.contentType).toBe(original);
    const py = pythonMime(pkg.contentType, pkg.body);
    expect(py.type).toBe('multipart/related');
    expect(py.parts).toEqual([
      { type: 'text/xml', headers: [['content-id', '<root>']], sha256: sha256(SOAP) },
      { type: 'application/octet-stream', headers: [['content-id', '<a1>']], sha256: sha256(Buffer.from([1, 2, 3])) },
    ]);
  });

  it('is the bare envelope as text/xml when there was no package', () => {
    expect(soapPackageOf({ kind: 'soap', soap: SOAP, contentType: 'text/xml' }, 'text/xml; charset=utf-8')).toEqual({ contentType: 'text/xml; charset=UTF-8', body: SOAP });
    const made = soapPackageOf({ kind: 'soap', soap: SOAP, contentType: 'text/xml', attachments });
    expect(made.contentType).toMatch(/^multipart\/related; type="text\/xml"; charset=UTF-8; boundary=xatt[A-Za-z]{30}$/);
    expect(pythonMime(made.contentType, made.body).parts!.map((p) => p.type)).toEqual(['text/xml', 'application/octet-stream']);
  });
});
