/**
 * The reference's proxy test cases (src/service/proxy/proxy-core/src/test/.../testsuite/testcases,
 * ../shared/xroad-vectors/README.md "proxy-queries/") replayed through both of our security servers
 * with the reference's own test messages, unchanged but for the fresh `<xroad:id>`. The proxies
 * write 7.8's fault codes (`--fault-codes snake`) so each expectation is the README's as printed.
 * Each test is named after the reference's test case.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadGlobalConf, type SecurityServer, type SharedParameters } from '../../src/globalconf/global-conf.ts';
import { boundaryOf, parseMultipart } from '../../src/protocol/multipart.ts';
import { parseSoapHeader } from '../../src/protocol/soap-message.ts';
import { ensureInternalTls } from '../../src/serverconf/internal-tls.ts';
import { ProxyQueryHarness, faultOf, query, withId, type IsAnswer } from '../support/proxy-queries.ts';

let h: ProxyQueryHarness;

const SERVICES = [
    { code: 'getState' },
    { code: 'test' },
    { code: 'testQuery' },
    { code: 'generateMtom' },
    { code: 'getState', provider: 'producer/subsys2' },
    { code: 'disabledService', disabledNotice: 'closed for maintenance' },
    { code: 'invalidServiceAddress', url: 'http://non.existing.site.com.pom/service' },
];

beforeAll(async () => {
  h = await ProxyQueryHarness.start(join(process.env.TMPDIR ?? '/tmp', `xrd-proxy-queries-${process.pid}`), ['--fault-codes', 'snake']);
  await h.configure(SERVICES);
}, 300_000);

afterAll(async () => {
  await h?.close();
});

/** A SOAP response, not a fault, whose header answers the request the information system sent. */
function expectSuccess(answer: IsAnswer, requestFile: string): void {
  expect(faultOf(answer.body), answer.body.toString()).toBeUndefined();
  expect(answer.status).toBe(200);
  const sent = parseSoapHeader(soapPartOf(withId(query(requestFile), lastId()), 'text/xml'));
  const got = parseSoapHeader(soapPartOf(answer.body, String(answer.headers['content-type'])));
  expect({ client: got.client, service: got.service, id: got.id, userId: got.userId, issue: got.issue }).toEqual({ client: sent.client, service: sent.service, id: sent.id, userId: sent.userId, issue: sent.issue });
}

const lastId = (): string => /<xroad:id>([^<]*)<\/xroad:id>/.exec(h.received.at(-1)?.body.toString('latin1') ?? '')?.[1] ?? '';

function soapPartOf(body: Buffer, contentType: string): Buffer {
  if (!contentType.toLowerCase().startsWith('multipart/')) return body;
  return parseMultipart(body, boundaryOf(contentType)!)[0]!.body;
}

const faultCode = (answer: IsAnswer) => faultOf(answer.body)?.code;

describe('messages that go through (MessageTestCase success)', () => {
  it('NormalMessage: getstate.query answered by getstate.answer; the service gets the SOAP as sent, text/xml', async () => {
    h.answerWith({ file: 'getstate.answer' });
    const answer = await h.send('getstate.query');
    expectSuccess(answer, 'getstate.query');
    const got = h.received.at(-1)!;
    expect(got.body).toEqual(withId(query('getstate.query'), lastId()));
    expect(got.headers['content-type']).toBe('text/xml; charset=UTF-8');
    expect(answer.headers['content-type']).toMatch(/^text\/xml; charset=UTF-8$/i);
  });

  it('SoapActionHeader, SoapActionEmptyHeader: the service gets the SOAPAction the information system sent', async () => {
    h.answerWith({ file: 'getstate.answer' });
    for (const value of ['""', '']) {
      expectSuccess(await h.send('getstate.query', { headers: { SOAPAction: value } }), 'getstate.query');
      expect(h.received.at(-1)!.headers.soapaction).toBe(value);
    }
  });

  it('ResponseWithRequestHash: the service’s own requestHash is dropped and ours goes right after xroad:id', async () => {
    h.answerWith({ file: 'requesthash.answer' });
    const answer = await h.send('getstate.query');
    expectSuccess(answer, 'getstate.query');
    const text = answer.body.toString('utf8');
    expect(text.match(/requestHash/g)).toHaveLength(2);
    expect(text).not.toContain('>foo<');
    const sent = withId(query('getstate.query'), lastId());
    expect(text).toMatch(new RegExp(`</xroad:id><xroad:requestHash algorithmId="http://www.w3.org/2001/04/xmlenc#sha512">${createHash('sha512').update(sent).digest('base64').replaceAll('+', '\\+')}</xroad:requestHash>`));
  });

  it('NonUtf8ResponseContentType: an answer sent as text/xml without a charset', async () => {
    h.answerWith({ file: 'getstate-iso88591.answer', contentType: 'text/xml' });
    expectSuccess(await h.send('getstate.query'), 'getstate.query');
  });

  it('NormalSubsystem: subsystem to subsystem', async () => {
    h.answerWith({ file: 'getstate-subsystem.answer' });
    expectSuccess(await h.send('getstate-subsystem.query'), 'getstate-subsystem.query');
  });

  it('Utf8BomNormalSubsystem: a BOM before the request and the answer; the request hash covers the BOM', async () => {
    h.answerWith({ body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), query('getstate-subsystem.answer')]) });
    // The answer's id must be the request's: the harness puts it into the body the service returns.
    const answer = await sendWithAnswerId('getstate-subsystem.query', 'getstate-subsystem.answer', { bom: true });
    expect(faultCode(answer), answer.body.toString()).toBeUndefined();
    const sent = h.received.at(-1)!.body;
    expect(sent.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    expect(parseSoapHeader(answer.body).requestHash).toBe(createHash('sha512').update(sent).digest('base64'));
  });

  for (const [name, request, response] of [
    ['DefaultNamespaceMessage', 'getstate-defaultnamespace.query', 'getstate.answer'],
    ['NoWhitespaceMessage', 'nowhitespace.query', 'nowhitespace.answer'],
    ['MissingUserIdHeader', 'missing-userId.query', 'missing-userId.answer'],
  ] as const) {
    it(`${name}: ${request} answered by ${response}`, async () => {
      h.answerWith({ file: response });
      expectSuccess(await h.send(request), request);
    });
  }

  it('CDATAMessage: CDATA in the header and body reach both sides as sent', async () => {
    h.answerWith({ file: 'cdata.answer' });
    const answer = await h.send('cdata.query');
    expectSuccess(answer, 'cdata.query');
    expect(h.received.at(-1)!.body.toString()).toContain('<![CDATA[');
    expect(answer.body.toString()).toContain('<![CDATA[');
  });

  it('XmlEncodedMessage: the entity-encoded userId is read decoded on both sides', async () => {
    h.answerWith({ file: 'xmlencoded.answer' });
    const answer = await h.send('xmlencoded.query');
    expectSuccess(answer, 'xmlencoded.query');
    expect(parseSoapHeader(answer.body).userId).toBe(`<"EE37702211234" & 'xml encoded'>`);
  });

  it('SplitHeaderMessage: xroad:issue over several lines is unchanged on both sides', async () => {
    h.answerWith({ file: 'split-header.answer' });
    const answer = await h.send('split-header.query');
    expectSuccess(answer, 'split-header.query');
    expect(h.received.at(-1)!.body.toString()).toContain('w\naa\nww\n');
    expect(answer.body.toString()).toContain('w\naa\nww\n');
  });

  it('CommentMessage: the comment first in the answer’s header reaches the information system', async () => {
    h.answerWith({ file: 'simple-comment.answer' });
    const answer = await h.send('simple.query');
    expectSuccess(answer, 'simple.query');
    expect(answer.body.toString()).toMatch(/<SOAP-ENV:Header>\s*<!-- multiline\n\s*comment -->/);
  });
});

/** Sends a request whose answer file carries the same fresh id (the harness does this for files). */
async function sendWithAnswerId(request: string, answer: string, options: Parameters<ProxyQueryHarness['send']>[1] = {}): Promise<IsAnswer> {
  const originalAnswer = query(answer);
  // Stamped by the service from the request it received.
  h.answerWith({ file: answer });
  const result = await h.send(request, options);
  void originalAnswer;
  return result;
}

describe('what the information system did wrong (client.*)', () => {
  for (const [name, file, contentType, code] of [
    ['FaultyRequestContentType', 'getstate.query', 'blah', 'client.invalid_content_type'],
    ['EmptyQuery', 'empty.query', 'text/xml', 'client.invalid_soap'],
    ['EmptyMultipartRequest', 'empty.query', 'multipart/related; boundary=x', 'client.missing_soap'],
    ['MissingHeader', 'no-header.query', undefined, 'client.missing_header'],
    ['MissingBody', 'missing-body.query', undefined, 'client.missing_body'],
    ['FaultyHeader', 'faulty-header2.query', undefined, 'client.duplicate_header_field'],
    ['MissingProtocolVersionHeader', 'missing-protocolVersion.query', undefined, 'client.missing_header_field'],
    ['MalformedProtocolVersionHeader', 'malformed-protocolVersion.query', undefined, 'client.invalid_protocol_version'],
    ['WrongProtocolVersionHeader', 'wrong-protocolVersion.query', undefined, 'client.invalid_protocol_version'],
    ['MissingObjectTypeMessage', 'missingobjecttype.query', undefined, 'client.invalid_xml'],
    ['MalformedBody1', 'malformed-body1.query', undefined, 'client.invalid_body'],
    ['MalformedBody2', 'malformed-body2.query', undefined, 'client.invalid_body'],
    ['MalformedBody3', 'malformed-body3.query', undefined, 'client.inconsistent_headers'],
    ['SoapFaultToClientProxy', 'fault.query', undefined, 'client.code'],
    ['AttachmentNoSoap', 'attachm-no-soap.query', 'multipart/related; charset=UTF-8; boundary=jetty771207119h3h10dty', 'client.invalid_content_type'],
    ['AttachmentFaultySoap', 'attachm-faulty-soap.query', 'multipart/related; charset=UTF-8; boundary=jetty771207119h3h10dty', 'client.missing_header_field'],
    ['AttachmentFaulty', 'attachm-error.query', 'multipart/related; charset=UTF-8; boundary=jetty771207119h3h10dty', 'client.invalid_content_type'],
    ['MissingOrg', 'missing-org.query', undefined, 'server.clientproxy.unknown_member'],
  ] as const) {
    it(`${name}: ${file} → ${code}`, async () => {
      const before = h.received.length;
      const answer = await h.send(file, contentType ? { contentType } : {});
      expect(faultCode(answer), answer.body.toString()).toBe(code);
      expect(h.received.length).toBe(before);
    });
  }

  it('SoapActionMalformedHeader: an unquoted SOAPAction → client.invalid_soap_action', async () => {
    expect(faultCode(await h.send('getstate.query', { headers: { SOAPAction: 'http://example.org/action' } }))).toBe('client.invalid_soap_action');
  });

  it('WrongHttpMethod: GET → client.invalid_http_method', async () => {
    expect(faultCode(await h.send('getstate.query', { method: 'GET' }))).toBe('client.invalid_http_method');
  });
});

describe('what the service did wrong (server.serverproxy.service_failed.*), and its faults passed on', () => {
  for (const [name, answer, code] of [
    ['FaultyResponseContentType', { file: 'getstate.answer', contentType: 'blah' }, 'server.serverproxy.service_failed.invalid_content_type'],
    ['EmptyResponse', { body: Buffer.alloc(0) }, 'server.serverproxy.service_failed.invalid_soap'],
    ['EmptyMultipartResponse', { body: Buffer.alloc(0), contentType: 'multipart/related; boundary=x' }, 'server.serverproxy.service_failed.invalid_message'],
    ['FaultyHeaderResponse', { file: 'faulty-header.query' }, 'server.serverproxy.service_failed.missing_header_field'],
    ['MissingHeaderResponse', { file: 'no-header.query' }, 'server.serverproxy.service_failed.missing_header'],
    ['MissingBodyResponse', { file: 'missing-body.query' }, 'server.serverproxy.service_failed.missing_body'],
    ['MalformedBodyResponse', { file: 'malformed-body2.query' }, 'server.serverproxy.service_failed.invalid_body'],
    ['AttachmentFaultySoapResponse', { file: 'attachm-faulty-soap.query', contentType: 'multipart/related; charset=UTF-8; boundary=jetty771207119h3h10dty' }, 'server.serverproxy.service_failed.missing_header_field'],
    ['AttachmentNoSoapResponse', { file: 'attachm-no-soap.query', contentType: 'multipart/related; charset=UTF-8; boundary=jetty771207119h3h10dty' }, 'server.serverproxy.service_failed.invalid_content_type'],
    ['ServerProxyAttachmentError', { file: 'attachm-error.query', contentType: 'multipart/related; charset=UTF-8; boundary=jetty771207119h3h10dty' }, 'server.serverproxy.service_failed.invalid_content_type'],
    ['ServiceFaultyMultipart', { file: 'faulty-multipart.query', contentType: 'multipart/related; boundary=jetty771207119h3h10dty; charset=utf-8' }, 'server.serverproxy.service_failed.invalid_message'],
    ['ServiceHttpError', { file: 'getstate.answer', status: 502 }, 'server.serverproxy.service_failed.http_error'],
    ['ServiceConnectionAborted', { abortWithLength: 1000, contentType: null }, 'server.serverproxy.service_failed.invalid_content_type'],
    ['ServiceFaultyFault', { file: 'faulty-fault.answer' }, 'soap:Server'],
    ['ServiceReturnsFault', { file: 'fault.query', status: 500 }, 'CODE'],
  ] as const) {
    it(`${name} → ${code}`, async () => {
      h.answerWith(answer);
      const got = await h.send('getstate.query');
      expect(faultCode(got), got.body.toString()).toBe(code);
    });
  }

  it('ServerClientInconsistency: an answer for another query → server.clientproxy.service_failed.inconsistent_response', async () => {
    h.answerWith({ file: 'getstate.query' });
    expect(faultCode(await h.send('xml.query'))).toBe('server.clientproxy.service_failed.inconsistent_response');
  });

  it('ServerProxyEmptyResponse: proxyemulator.query answered with nothing → server.serverproxy.service_failed.invalid_soap', async () => {
    h.answerWith({ body: Buffer.alloc(0) });
    expect(faultCode(await h.send('proxyemulator.query'))).toBe('server.serverproxy.service_failed.invalid_soap');
  });
});

describe('what the provider’s server refuses (server.serverproxy.*)', () => {
  it('UnknownService, ServiceDisabled, NotAllowed', async () => {
    const service = (code: string) => withId(query('getstate.query'), 'x').toString().replaceAll('getState', code);
    expect(faultCode(await h.send(Buffer.from(service('noSuchService'))))).toBe('server.serverproxy.unknown_service');
    expect(faultCode(await h.send(Buffer.from(service('disabledService'))))).toBe('server.serverproxy.service_disabled');
    // NotAllowed: the reference's test denies the call in its access rights; so do ours, for a moment.
    await h.configure(SERVICES.map((s) => (s.code === 'test' ? { ...s, allowed: [] } : s)));
    try {
      expect(faultCode(await h.send('notAllowed.query'))).toBe('server.serverproxy.access_denied');
    } finally {
      await h.configure(SERVICES);
    }
  });

  it('InvalidServiceAddress: a service host that does not resolve → server.serverproxy.service_failed.unknown_host', async () => {
    const request = withId(query('getstate.query'), 'x').toString().replaceAll('getState', 'invalidServiceAddress');
    expect(faultCode(await h.send(Buffer.from(request)))).toBe('server.serverproxy.service_failed.unknown_host');
  });
});

/** The parts of a multipart body: content types, other headers and bytes. */
function partsOf(body: Buffer, contentType: string) {
  return parseMultipart(body, boundaryOf(contentType)!).map((p) => ({ type: p.headers.get('content-type'), headers: p.headerList.filter(([n]) => n.toLowerCase() !== 'content-type'), body: p.body }));
}

const PACKAGE = 'multipart/related; charset=UTF-8; boundary=jetty771207119h3h10dty';

describe('SOAP with attachments and MTOM pass through intact (pr-mess §2.4)', () => {
  it('Attachment: a nested multipart is read to its leaf parts; the service gets the inner part with its own header', async () => {
    h.answerWith({ file: 'attachm.answer' });
    const answer = await h.send('attachm.query', { contentType: PACKAGE });
    expectSuccessOf(answer, 'attachm.query');
    const got = h.received.at(-1)!;
    expect(got.headers['content-type']).toBe(PACKAGE);
    const parts = partsOf(got.body, PACKAGE);
    expect(parts.map((p) => p.type)).toEqual(['text/xml; charset="utf-8"', 'text/plain']);
    expect(parts[1]).toMatchObject({ headers: [['Client-Header', 'FooBar']], body: Buffer.from('blaah') });
  });

  it('Attachment2, SeveralAttachments, SeveralAttachmentsResponse: packages both ways, every part as sent', async () => {
    const noCharset = 'multipart/related; boundary=jetty771207119h3h10dty';
    h.answerWith({ file: 'attachm2.answer', contentType: PACKAGE });
    const two = await h.send('attachm2.query', { contentType: noCharset });
    expectSuccessOf(two, 'attachm2.query');
    expect(h.received.at(-1)!.headers['content-type']).toBe(noCharset);
    expect(two.headers['content-type']).toBe(PACKAGE);
    // The service's nested multipart reaches the information system as its leaf part, as the reference reads it.
    expect(partsOf(two.body, PACKAGE).map((p) => p.type)).toEqual(['text/xml', 'text/plain']);

    h.answerWith({ file: 'attachm.answer' });
    expectSuccessOf(await h.send('attachments.query', { contentType: PACKAGE }), 'attachments.query');
    const sent = partsOf(withId(query('attachments.query'), lastId()), PACKAGE);
    const received = partsOf(h.received.at(-1)!.body, PACKAGE);
    expect(received.map((p) => [p.type, p.headers, p.body])).toEqual(sent.map((p) => [p.type, p.headers, p.body]));

    h.answerWith({ file: 'attachments.answer', contentType: PACKAGE });
    const several = await h.send('attachments.query', { contentType: PACKAGE });
    expectSuccessOf(several, 'attachments.query');
    const answered = partsOf(withId(query('attachments.answer'), lastId()), PACKAGE);
    expect(partsOf(several.body, PACKAGE).slice(1).map((p) => [p.type, p.headers, p.body])).toEqual(answered.slice(1).map((p) => [p.type, p.headers, p.body]));
  });

  it('Utf8BomAttachment2: the SOAP part starts with a BOM; the request hash is over the part’s bytes without the line end before the boundary', async () => {
    h.answerWith({ file: 'attachm2-utf8bom-inside.answer', contentType: PACKAGE });
    const answer = await h.send('attachm2-utf8bom-inside.query', { contentType: PACKAGE });
    expect(faultOf(answer.body), answer.body.toString()).toBeUndefined();
    const soapPart = partsOf(h.received.at(-1)!.body, PACKAGE)[0]!.body;
    expect(soapPart.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    expect(soapPart.toString().endsWith('</SOAP-ENV:Envelope>\n')).toBe(true);
    const answeredSoap = partsOf(answer.body, String(answer.headers['content-type']))[0]!.body;
    expect(parseSoapHeader(answeredSoap).requestHash).toBe(createHash('sha512').update(soapPart).digest('base64'));
  });

  it('AttachmentMTOM: the service gets exactly the information system’s Content-Type and part headers, and the information system exactly the service’s', async () => {
    const mtom = 'Multipart/Related; start-info="application/soap+xml"; type="application/xop+xml"; boundary="jetty771207119h3h10dty"';
    h.answerWith({ file: 'attachm-mtom.answer', contentType: `${mtom};charset=UTF-8` });
    const answer = await h.send('attachm-mtom.query', { contentType: mtom });
    expectSuccessOf(answer, 'attachm-mtom.query');
    const got = h.received.at(-1)!;
    expect(got.headers['content-type']).toBe(mtom);
    const parts = partsOf(got.body, mtom);
    expect(parts[0]).toMatchObject({ type: 'application/xop+xml; type="application/soap+xml"; charset=utf-8', headers: [['Content-ID', '<foo>']] });
    expect(parts[1]!.type).toBe('text/plain; charset=UTF-8; name=attachment.txt');
    expect(parts[1]!.headers).toEqual(partsOf(withId(query('attachm-mtom.query'), lastId()), mtom)[1]!.headers);
    expect(answer.headers['content-type']).toBe(`${mtom};charset=UTF-8`);
    const back = partsOf(answer.body, `${mtom};charset=UTF-8`);
    expect(back.map((p) => [p.type, p.headers])).toEqual(partsOf(withId(query('attachm-mtom.answer'), lastId()), mtom).map((p) => [p.type, p.headers]));
  });

  it('SoapFaultInMultipartResponse: a fault as the SOAP part of the service’s MTOM answer reaches the information system with its detail', async () => {
    const mtom = 'multipart/related; type="application/xop+xml"; boundary=jetty771207119h3h10dty';
    h.answerWith({ file: 'soapfault-mtom.answer', contentType: mtom });
    const answer = await h.send('soapfault-mtom.query', { contentType: mtom });
    expect(faultOf(answer.body)).toBeDefined();
    expect(answer.body.toString()).toContain('<error>Unable to create payload, try increasing the size</error>');
  });

  it('MimeSoap: a package of the SOAP part alone reaches the service as one, with nothing added', async () => {
    h.answerWith({ file: 'mimesoap.answer', contentType: PACKAGE });
    const answer = await h.send('mimesoap.query', { contentType: PACKAGE.toUpperCase().replace('BOUNDARY=JETTY771207119H3H10DTY', 'boundary=jetty771207119h3h10dty') });
    expectSuccessOf(answer, 'mimesoap.query');
    const got = h.received.at(-1)!;
    expect(String(got.headers['content-type']).toLowerCase()).toBe(PACKAGE.toLowerCase());
    expect(partsOf(got.body, PACKAGE)).toHaveLength(1);
  });
});

/** expectSuccess for a request sent as a package: its SOAP part is what the header is read from. */
function expectSuccessOf(answer: IsAnswer, requestFile: string): void {
  expect(faultOf(answer.body), answer.body.toString()).toBeUndefined();
  const sent = parseSoapHeader(partsOf(withId(query(requestFile), lastId()), PACKAGE)[0]!.body);
  const got = parseSoapHeader(soapPartOf(answer.body, String(answer.headers['content-type'])));
  expect({ client: got.client, service: got.service, id: got.id, userId: got.userId, issue: got.issue }).toEqual({ client: sent.client, service: sent.service, id: sent.id, userId: sent.userId, issue: sent.issue });
}

describe('a client proxy that sends the server proxy what it should not (→PSS)', () => {
  for (const [name, file, contentType, method, code] of [
    ['InvalidContentTypeFromClientProxy', 'getstate.query', 'text/xml', 'POST', 'server.serverproxy.service_failed.invalid_content_type'],
    ['ServerProxyProcessingError', 'getstate.query', 'multipart/mixed; boundary=foobar', 'POST', 'server.serverproxy.missing_soap'],
    ['NoSignatureToServerProxy', 'no-signature.query', 'multipart/mixed; boundary=jetty42534330h7vzfqv2;charset=ISO-8859-1', 'POST', 'server.serverproxy.missing_signature'],
    ['NoSoapToServerProxy', 'no-soap.query', 'multipart/mixed; boundary=jetty771207119h3h10dty', 'POST', 'server.serverproxy.service_failed.invalid_soap'],
    ['UnsignedMessageFromClientProxy', 'attachm.query', 'multipart/mixed; charset=UTF-8; boundary=jetty771207119h3h10dty', 'POST', 'server.serverproxy.missing_signature'],
    ['WrongHttpMethodServerProxy', 'getstate.query', 'text/xml', 'GET', 'server.serverproxy.invalid_http_method'],
  ] as const) {
    it(`${name} → ${code}`, async () => {
      const answer = await h.toServerProxy(file, contentType, method);
      expect(answer.status).toBe(200);
      expect(faultCode(answer), answer.body.toString()).toBe(code);
    });
  }
});

describe('who may send the server proxy anything (AuthTrustManager: a registered authentication certificate, before any byte is read)', () => {
  // 60,000 attributes on one element: what once held the server proxy's event loop for seconds.
  const flood = Buffer.from(`<x ${Array.from({ length: 60_000 }, (_, i) => `a${i}="1"`).join(' ')}/>`);
  const refused = (tls: import('node:https').RequestOptions) =>
    h.toServerProxy(flood, 'text/xml', 'POST', { as: 'stranger', tls }).then(
      (answer) => `answered ${answer.status}`,
      (err: NodeJS.ErrnoException) => err.code ?? err.message,
    );

  it('attack: an attribute flood over TLS without a client certificate is not read: the connection is closed', async () => {
    expect(await refused({})).toMatch(/^(ECONNRESET|EPIPE|socket hang up)$/);
  });

  it('attack: a certificate no central server registered (self-signed, or issued to an information system) is not enough', async () => {
    const stranger = ensureInternalTls(join(process.env.TMPDIR ?? '/tmp', `xrd-stranger-${process.pid}`));
    expect(await refused({ cert: stranger.certPem, key: stranger.keyPem })).toMatch(/^(ECONNRESET|EPIPE|socket hang up)$/);
    const is = h.instance.clientIs;
    expect(await refused({ cert: readFileSync(is.certFile), key: readFileSync(is.keyFile) })).toMatch(/^(ECONNRESET|EPIPE|socket hang up)$/);
  });

  it('ss2, with its registered authentication certificate, is read and answered as before', async () => {
    const answer = await h.toServerProxy(flood, 'text/xml');
    expect(answer.status).toBe(200);
    expect(faultCode(answer)).toMatch(/^server\.serverproxy\./);
  });
});

describe('a provider’s server that answers what it should not (UsingDummyServerProxy)', () => {
  let current: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void = () => undefined;
  let stop: () => Promise<void> = async () => undefined;
  beforeAll(async () => {
    stop = await h.stubServerProxy((req, res) => current(req, res));
  }, 60_000);
  afterAll(async () => {
    await stop();
  }, 60_000);

  const reply = (contentType: string | undefined, body: Buffer, options: { status?: number; abortWithLength?: number; hash?: boolean } = {}) =>
    (_req: unknown, res: import('node:http').ServerResponse) => {
      const headers: Record<string, string> = { ...(contentType ? { 'content-type': contentType } : {}), ...(options.hash === false ? {} : { 'x-hash-algorithm': 'SHA-512' }) };
      if (options.abortWithLength !== undefined) {
        res.writeHead(options.status ?? 200, { ...headers, 'content-length': String(options.abortWithLength) });
        res.flushHeaders();
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      res.writeHead(options.status ?? 200, { ...headers, 'content-length': String(body.length) });
      res.end(body);
    };

  for (const [name, respond, code, request] of [
    ['ServerProxyConnectionAborted2', reply('text/xml', Buffer.alloc(0), { abortWithLength: 1000 }), 'server.clientproxy.service_failed.io_error'],
    ['ServerProxyConnectionAborted3', reply('multipart/mixed; boundary=foobar', Buffer.alloc(0), { abortWithLength: 1000 }), 'server.clientproxy.service_failed.io_error'],
    ['ServerProxyHttpError', reply('text/xml', Buffer.from('bad gateway'), { status: 502 }), 'server.clientproxy.http_error'],
    ['ServerProxyNoBoundary', reply('multipart/mixed', query('getstate.query')), 'server.clientproxy.service_failed.invalid_content_type'],
    ['ServerProxyInvalidFault', reply('text/xml; charset="UTF-8"; boundary=foobar', query('getstate.query')), 'server.clientproxy.service_failed.invalid_message'],
    ['ServerProxyMissingBody', reply('text/xml', query('missing-body.query')), 'server.clientproxy.service_failed.missing_body'],
    ['ServerProxyEmptyFault', reply('text/xml', Buffer.alloc(0)), 'server.clientproxy.service_failed.invalid_soap'],
    ['ServerProxyFaultyAttachment', reply('multipart/mixed; charset=UTF-8; boundary=jetty771207119h3h10dty', query('attachm-error.query')), 'server.clientproxy.service_failed.invalid_content_type'],
    ['UnsignedMessageFromServerProxy', reply('multipart/mixed; boundary=jetty42534330h7vzfqv2;charset=ISO-8859-1', query('no-signature.query'), { hash: false }), 'server.clientproxy.missing_signature'],
    ['InvalidContentTypeFromServerProxy', reply('oih', query('getstate.query')), 'server.clientproxy.service_failed.invalid_content_type', 'proxyemulator.query'],
  ] as const) {
    it(`${name} → ${code}`, async () => {
      current = respond;
      const answer = await h.send(request ?? 'getstate.query');
      expect(faultCode(answer), answer.body.toString()).toBe(code);
    });
  }
});

describe('HTTPS to the service (SslToService*, CustomSSLSocketFactory)', () => {
  const configureTls = (sslAuthentication: boolean, isCerts: readonly Buffer[]) =>
    h.configure(SERVICES.map((s) => (s.code === 'getState' ? { ...s, url: `${h.secureServiceUrl}/service`, sslAuthentication } : s)), { providerIsCerts: isCerts });
  afterAll(() => h.configure(SERVICES));

  it('SslToServiceNoAuth: TLS authentication off, any certificate; our internal TLS certificate is presented', async () => {
    await configureTls(false, []);
    h.answerWith({ file: 'getstate.answer' });
    expectSuccess(await h.send('getstate.query'), 'getstate.query');
    const internal = new X509Certificate(readFileSync(join(h.instance.provider.proxyDataDir, 'internal-tls', 'internal.crt')));
    expect(h.received.at(-1)!.clientCert).toEqual(Buffer.from(internal.raw));
  });

  it('SslToServiceAuth: on, and the service’s certificate is one of its client’s IS certificates', async () => {
    await configureTls(true, [h.serviceCert]);
    h.answerWith({ file: 'getstate.answer' });
    expectSuccess(await h.send('getstate.query'), 'getstate.query');
  });

  it('SslToServiceNoISCerts, SslToServiceWrongISCert → server.serverproxy.service_failed.ssl_authentication_failed', async () => {
    const before = h.received.length;
    await configureTls(true, []);
    expect(faultCode(await h.send('getstate.query'))).toBe('server.serverproxy.service_failed.ssl_authentication_failed');
    const other = new X509Certificate(readFileSync(join(h.instance.dir, 'is', 'clientcert.pem')));
    await configureTls(true, [Buffer.from(other.raw)]);
    expect(faultCode(await h.send('getstate.query'))).toBe('server.serverproxy.service_failed.ssl_authentication_failed');
    expect(h.received.length).toBe(before);
  });
});

describe('where the provider is (global configuration)', () => {
  const ss1 = (change: (s: SecurityServer) => SecurityServer) =>
    h.instance.pki.changeSharedParameters((shared) => ({ ...shared, securityServers: shared.securityServers.map((s) => (s.serverCode === 'ss1' ? change(s) : s)) }));
  const withExtraServers = (addresses: string[]) =>
    h.instance.pki.changeSharedParameters((shared) => ({
      ...shared,
      securityServers: [
        ...shared.securityServers,
        ...addresses.map((address, i) => ({ owner: { instance: 'EE', memberClass: 'BUSINESS', memberCode: 'producer' }, serverCode: `extra${i}`, address, authCertHashes: [], clients: [{ instance: 'EE', memberClass: 'BUSINESS', memberCode: 'producer' }] })),
      ],
    }));
  let original: SharedParameters;
  beforeAll(() => {
    original = loadGlobalConf(h.instance.pki.globalConfDir).own;
  });
  afterEach(async () => {
    h.instance.pki.changeSharedParameters(() => original);
    // The proxies read the configuration folder at most once a second.
    await new Promise((r) => setTimeout(r, 1300));
  });
  const settle = () => new Promise((r) => setTimeout(r, 1300));

  it('ServerProxyMaintenanceMode: the provider’s only server is in maintenance → server.clientproxy.maintenance_mode, with its message', async () => {
    ss1((s) => ({ ...s, maintenanceMode: { message: 'back at noon' } }));
    await settle();
    const answer = await h.send('getstate.query');
    expect(faultOf(answer.body)).toMatchObject({ code: 'server.clientproxy.maintenance_mode', string: expect.stringContaining('Message from "127.0.0.1" administrator: back at noon') });
  });

  it('InvalidProviderAddress3: no server of the provider has an address → server.clientproxy.unknown_member', async () => {
    ss1((s) => ({ ...s, address: '' }));
    await settle();
    expect(faultCode(await h.send('attachm.query', { contentType: PACKAGE }))).toBe('server.clientproxy.unknown_member');
  });

  it('SslSelectFastestProxy: of server.invalid., localhost and 127.0.0,1 the one that answers is used; none → server.clientproxy.network_error', async () => {
    ss1((s) => ({ ...s, address: 'localhost' }));
    withExtraServers(['server.invalid.', '127.0.0,1']);
    await settle();
    h.answerWith({ file: 'getstate.answer' });
    expectSuccess(await h.send('getstate.query'), 'getstate.query');
    ss1((s) => ({ ...s, address: '127.0.0.254' }));
    await settle();
    expect(faultCode(await h.send('getstate.query'))).toMatch(/^server\.clientproxy\.network_error/);
  });
});

describe('which server, and the owner as a client (AbstractClientMessageProcessor.getServiceAddresses)', () => {
  const named = (server: string) => {
    const [, , member, code] = server.split('/');
    const element = `<xroad:securityServer id:objectType="SERVER"><id:xRoadInstance>EE</id:xRoadInstance><id:memberClass>BUSINESS</id:memberClass><id:memberCode>${member}</id:memberCode><id:serverCode>${code}</id:serverCode></xroad:securityServer>`;
    return Buffer.from(withId(query('getstate.query'), 'x').toString().replace('<xroad:userId>', `${element}\n        <xroad:userId>`));
  };

  it('xrd:securityServer naming the provider’s server goes there; another server, or one that does not exist, is refused', async () => {
    h.answerWith({ file: 'getstate.answer' });
    expect(faultOf((await h.send(named('EE/BUSINESS/producer/ss1'))).body)).toBeUndefined();
    expect(faultOf((await h.send(named('EE/BUSINESS/consumer/ss2'))).body)).toMatchObject({ code: 'server.clientproxy.invalid_security_server', string: 'Invalid security server "SERVER:EE/BUSINESS/consumer/ss2"' });
    expect(faultOf((await h.send(named('EE/BUSINESS/producer/nope'))).body)).toMatchObject({ code: 'server.clientproxy.invalid_security_server', string: 'Could not find security server "SERVER:EE/BUSINESS/producer/nope"' });
  });

  it('a member-level service of a server’s owner is reached though global configuration lists the owner only as owner', async () => {
    const original = loadGlobalConf(h.instance.pki.globalConfDir).own;
    h.instance.pki.changeSharedParameters((shared) => ({
      ...shared,
      securityServers: shared.securityServers.map((s) => (s.serverCode === 'ss1' ? { ...s, clients: s.clients.filter((c) => c.subsystem !== undefined) } : s)),
    }));
    try {
      await new Promise((r) => setTimeout(r, 1300));
      h.answerWith({ file: 'getstate.answer' });
      expectSuccess(await h.send('getstate.query'), 'getstate.query');
    } finally {
      h.instance.pki.changeSharedParameters(() => original);
      await new Promise((r) => setTimeout(r, 1300));
    }
  });
});
