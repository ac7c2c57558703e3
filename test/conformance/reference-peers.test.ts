/**
 * The strict peers themselves. Their checks (test/support/reference-checks.ts) fail loudly: each
 * message here breaks one reference rule and must be reported under that rule, and a correct
 * message must not be (messages laid out with our encoder and the reference's vectors
 * getstate.query and test.ocsp). The reference client proxy emulation
 * (test/support/reference-client-proxy.ts) lays out bytes as MultipartEncoder does and orders
 * headers as java.util.HashMap iterates them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { concatPieces, memoryBody } from '../../src/platform/spool.ts';
import { encodeProxyMessage, type ProxyMessage } from '../../src/protocol/proxy-message.ts';
import { checkRequestAsServerProxy, checkResponseAsClientProxy, type WireRequest, type WireResponse } from '../support/reference-checks.ts';
import { encodeReferenceBody, javaHashMapOrder } from '../support/reference-client-proxy.ts';
import { VECTORS } from '../support/vectors.ts';

const QUERIES = join(VECTORS, 'proxy-queries');
const OCSP = readFileSync(join(QUERIES, 'test.ocsp'));
const SOAP = readFileSync(join(QUERIES, 'getstate.query'));
const NO_CLIENT_CERT = 'ServerMessageProcessor.verifySslClientCert: the client presents its TLS authentication certificate';

/** A signature whose references carry the SHA-512 of each part, as the Verifier compares them. */
function signatureOver(parts: Record<string, Buffer>): Buffer {
  const refs = Object.entries(parts)
    .map(([uri, data]) => `<ds:Reference URI="${uri}"><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha512"/><ds:DigestValue>${createHash('sha512').update(data).digest('base64')}</ds:DigestValue></ds:Reference>`)
    .join('');
  return Buffer.from(`<asic:XAdESSignatures xmlns:asic="http://uri.etsi.org/02918/v1.2.1#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:Signature><ds:SignedInfo>${refs}</ds:SignedInfo></ds:Signature></asic:XAdESSignatures>`);
}

function wire(msg: ProxyMessage, edit: (headers: [string, string][]) => [string, string][] = (h) => h, bodyEdit: (b: Buffer) => Buffer = (b) => b) {
  const encoded = encodeProxyMessage(msg, { boundary: 'xtopConformanceChecks' });
  return { headers: edit([['Content-Type', encoded.contentType], ...Object.entries(encoded.headers)]), body: bodyEdit(concatPieces(encoded.pieces)) };
}

const soapRequest = (soap = SOAP): ProxyMessage => ({
  ocspResponses: [OCSP],
  content: { kind: 'soap', soap, contentType: 'text/xml; charset=UTF-8' },
  signature: { signatureXml: signatureOver({ '/message.xml': soap }) },
  proxyVersion: '7.8.0',
  requestId: randomUUID(),
  originalContentType: 'text/xml; charset=UTF-8',
});

async function requestRules(req: Omit<WireRequest, 'method'>): Promise<string[]> {
  const { violations } = await checkRequestAsServerProxy({ method: 'POST', ...req });
  return violations.map((v) => v.rule).filter((r) => r !== NO_CLIENT_CERT);
}

describe('a request, as the reference server proxy receives it', () => {
  it('a correct SOAP request breaks no rule (but for the TLS certificate it has none of here)', async () => {
    const { violations } = await checkRequestAsServerProxy({ method: 'POST', ...wire(soapRequest()) });
    expect(violations.map((v) => v.rule)).toEqual([NO_CLIENT_CERT]);
  });

  it('ClientProxyVersionVerifier: x-proxy-version 7.5.0, or none, is below 7.6.0', async () => {
    const rule = 'ClientProxyVersionVerifier: x-proxy-version ≥ server-min-supported-client-version 7.6.0';
    expect(await requestRules(wire({ ...soapRequest(), proxyVersion: '7.5.0' }))).toEqual([rule]);
    expect(await requestRules(wire({ ...soapRequest(), proxyVersion: undefined }))).toEqual([rule]);
  });

  it('Verifier.verify: a SOAP byte changed after signing', async () => {
    const signed = soapRequest();
    const tampered = Buffer.from(SOAP.toString().replace('getState>aäõ', 'getState>AäÕ'));
    const msg = { ...signed, content: { kind: 'soap' as const, soap: tampered, contentType: 'text/xml; charset=UTF-8' } };
    expect(await requestRules(wire(msg))).toEqual([expect.stringMatching(/^Verifier\.verify:/)]);
  });

  it('ProxyMessageDecoder.ContentHandler: a part after the signature', async () => {
    const rules = await requestRules(wire(soapRequest(), undefined, (b) => Buffer.from(b.toString('latin1').replace(/--\r\n$/, '\r\ncontent-type: text/plain\r\n\r\nmore\r\n--xtopConformanceChecks--\r\n'), 'latin1')));
    expect(rules).toEqual(['ProxyMessageDecoder.ContentHandler: nothing after the signature ("Extra content", X_INVALID_MESSAGE)']);
  });

  it('ServerMessageProcessor.readMessage: an unquoted x-original-soapaction', async () => {
    expect(await requestRules(wire({ ...soapRequest(), originalSoapAction: 'urn:getState' }))).toEqual([
      'ServerMessageProcessor.readMessage: validateSoapActionHeader(x-original-soapaction) (X_INVALID_SOAP_ACTION)',
    ]);
  });

  it('RestRequest(byte[]) and ServerProxyHandler: a hop-by-hop header in the header part, no x-road-message-type, another request id', async () => {
    const headerPart = Buffer.from('GET\r\n/r1/EE/BUSINESS/producer/SUB/getState\r\nHost:ss1\r\nX-Road-Client:EE/BUSINESS/consumer\r\nx-road-request-id:other\r\nx-road-id:q-1\r\n');
    const msg: ProxyMessage = { ocspResponses: [OCSP], content: { kind: 'rest', role: 'request', headerPart }, signature: { signatureXml: signatureOver({ '/message.xml': headerPart }) }, proxyVersion: '7.8.0', requestId: randomUUID() };
    const rules = await requestRules(wire(msg, (h) => h.filter(([n]) => n !== 'x-road-message-type')));
    expect(rules).toEqual([
      'ServerProxyHandler.createRequestProcessor: x-road-message-type is exactly "REST" for a REST request',
      'RestRequest(byte[]): the REST request header part: no hop-by-hop header (RestMessage.SKIPPED_HEADERS, "Invalid header")',
      'RestRequest.decodeHeaders: x-road-request-id (exact name) equals the HTTP header x-road-request-id',
    ]);
  });

  it('SignatureCtx.getDataToBeSigned: a REST body signed without a hash chain', async () => {
    const headerPart = Buffer.from('POST\r\n/r1/EE/BUSINESS/producer/SUB/getState\r\nX-Road-Client:EE/BUSINESS/consumer\r\nx-road-id:q-1\r\n');
    const requestId = randomUUID();
    const withId = Buffer.concat([headerPart, Buffer.from(`x-road-request-id:${requestId}\r\n`)]);
    const body = Buffer.from('{}');
    const msg: ProxyMessage = {
      ocspResponses: [OCSP],
      content: { kind: 'rest', role: 'request', headerPart: withId, body: memoryBody(body) },
      signature: { signatureXml: signatureOver({ '/message.xml': withId, '/attachment1': body }) },
      proxyVersion: '7.8.0',
      requestId,
    };
    expect(await requestRules(wire(msg))).toEqual(['SignatureCtx.getDataToBeSigned: a message of several parts (attachments, REST body) is signed through a hash chain']);
  });
});

describe('an answer, as the reference client proxy reads it', () => {
  const requestHash = createHash('sha512').update(SOAP).digest('base64');
  const responseSoap = (hash: string) => Buffer.from(SOAP.toString().replace('</xroad:id>', `</xroad:id><xroad:requestHash algorithmId="http://www.w3.org/2001/04/xmlenc#sha512">${hash}</xroad:requestHash>`));
  const response = (soap: Buffer): ProxyMessage => ({
    content: { kind: 'soap', soap, contentType: 'text/xml; charset=UTF-8' },
    signature: { signatureXml: signatureOver({ '/message.xml': soap }) },
    originalContentType: 'text/xml; charset=UTF-8',
  });

  async function responseRules(res: Omit<WireResponse, 'status'>, status = 200): Promise<string[]> {
    const { facts } = await checkRequestAsServerProxy({ method: 'POST', ...wire(soapRequest()) });
    return (await checkResponseAsClientProxy({ status, ...res }, facts)).violations.map((v) => v.rule);
  }

  it('a correct signed answer breaks no rule', async () => {
    expect(await responseRules(wire(response(responseSoap(requestHash))))).toEqual([]);
  });

  it('AbstractClientMessageProcessor.getHashAlgoId: X-Hash-Algorithm in another spelling is not found', async () => {
    const capitalised = wire(response(responseSoap(requestHash)), (h) => h.map(([n, v]) => [n === 'x-hash-algorithm' ? 'X-Hash-Algorithm' : n, v]));
    expect(await responseRules(capitalised)).toEqual(['AbstractClientMessageProcessor.getHashAlgoId: a header named exactly x-hash-algorithm with a DigestAlgorithm name']);
  });

  it('ClientMessageProcessor.checkRequestHash: a request hash over other bytes', async () => {
    expect(await responseRules(wire(response(responseSoap(createHash('sha512').update('other bytes').digest('base64')))))).toEqual([
      'ClientMessageProcessor.checkRequestHash: xrd:requestHash is the SHA-512 of the request SOAP part (X_INCONSISTENT_RESPONSE)',
    ]);
  });

  it('ProxyMessageDecoder.parseFault and AbstractHttpSender.checkResponseStatus: a text/xml answer that is no fault, with status 502', async () => {
    expect(await responseRules({ headers: [['Content-Type', 'text/xml; charset=UTF-8']], body: SOAP }, 502)).toEqual([
      'AbstractHttpSender.checkResponseStatus: 200 or 500 (X_HTTP_ERROR)',
      'ProxyMessageDecoder.parseFault: a text/xml answer is a SOAP fault (X_INVALID_MESSAGE)',
    ]);
  });
});

describe('the reference client proxy emulation', () => {
  it('orders headers as java.util.HashMap iterates them (orders printed by OpenJDK 17 for the same keys)', () => {
    const order = (keys: string[]) => javaHashMapOrder(keys.map((k) => [k, null] as const)).map(([k]) => k);
    expect(order(['x-hash-algorithm', 'x-proxy-version', 'x-original-content-type', 'x-original-soapaction', 'x-road-request-id'])).toEqual([
      'x-hash-algorithm', 'x-original-content-type', 'x-road-request-id', 'x-proxy-version', 'x-original-soapaction',
    ]);
    expect(order(['x-hash-algorithm', 'x-proxy-version', 'x-original-content-type', 'x-road-message-type', 'x-road-request-id'])).toEqual([
      'x-road-message-type', 'x-hash-algorithm', 'x-original-content-type', 'x-road-request-id', 'x-proxy-version',
    ]);
    expect(order(['Content-Transfer-Encoding', 'Content-ID', 'Content-Disposition'])).toEqual(['Content-Disposition', 'Content-ID', 'Content-Transfer-Encoding']);
  });

  it('lays the body out as MultipartEncoder writes it: no line end before the first delimiter, an empty line before the nested attachments, CRLF before every delimiter', () => {
    const part = (contentType: string, body: string, headers: string[] = []) => ({ contentType, headers, body: Buffer.from(body) });
    const { contentType, body } = encodeReferenceBody({
      headers: [],
      boundary: 'xtopB',
      parts: [
        part('application/ocsp-response', 'O'),
        part('text/xml; charset=UTF-8', 'S'),
        { contentType: 'multipart/mixed; charset=UTF-8; boundary=xattB', nested: { boundary: 'xattB', parts: [part('text/plain', 'A', ['Content-ID: <a>'])] } },
        part('application/hash-chain-result', 'R'),
        part('application/hash-chain', 'C'),
        part('signature/bdoc-1.0/ts', 'G'),
      ],
    });
    expect(contentType).toBe('multipart/mixed; charset=UTF-8; boundary=xtopB');
    expect(body.toString()).toBe(
      '--xtopB\r\ncontent-type: application/ocsp-response\r\n\r\nO' +
        '\r\n--xtopB\r\ncontent-type: text/xml; charset=UTF-8\r\n\r\nS' +
        '\r\n--xtopB\r\ncontent-type: multipart/mixed; charset=UTF-8; boundary=xattB\r\n\r\n' +
        '\r\n--xattB\r\ncontent-type: text/plain\r\nContent-ID: <a>\r\n\r\nA' +
        '\r\n--xattB--\r\n' +
        '\r\n--xtopB\r\ncontent-type: application/hash-chain-result\r\n\r\nR' +
        '\r\n--xtopB\r\ncontent-type: application/hash-chain\r\n\r\nC' +
        '\r\n--xtopB\r\ncontent-type: signature/bdoc-1.0/ts\r\n\r\nG' +
        '\r\n--xtopB--\r\n',
    );
  });
});
