/**
 * SOAP faults and REST errors as the proxies answer with them: what we write is read back by our
 * parser and by an independent one (Python's xml.etree), faults as the reference and 7.8 write them
 * are read, and REST errors pick status, header and body type as pr-rest §4.6 says.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { XrdError, normalizeFaultCode } from '../../src/platform/errors.ts';
import { faultOfError, parseSoapFault, readSoapFault, restError, soapFault } from '../../src/protocol/faults.ts';
import { child, parseXml, textOf } from '../../src/xml/xml-tree.ts';

/** Reads a fault with Python's own XML parser: faultcode, faultstring, faultactor, detail/faultDetail. */
function pythonReadsFault(xml: Buffer): Record<string, string | null> {
  const script = `
import sys, json, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
ns = '{http://schemas.xmlsoap.org/soap/envelope/}'
assert root.tag == ns + 'Envelope', root.tag
fault = root.find(ns + 'Body').find(ns + 'Fault')
def text(path):
    e = fault.find(path)
    return None if e is None else (e.text or '')
print(json.dumps({'faultcode': text('faultcode'), 'faultstring': text('faultstring'), 'faultactor': text('faultactor'), 'detail': text('detail/faultDetail')}))
`;
  return JSON.parse(execFileSync('python3', ['-c', script], { input: xml }).toString('utf8'));
}

describe('SOAP faults', () => {
  it('a fault we write is read back the same by our parser and by Python, text escaped and forbidden characters dropped', () => {
    const text = 'Service "A&B" <1> isn\'t allowed\u0001 — ünïcode 😀';
    const xml = soapFault('Server.ServerProxy.AccessDenied', text, '2f7c1e52-0c1e-4f6e-9d1a-1234567890ab', 'actor&1');
    const expected = { faultcode: 'Server.ServerProxy.AccessDenied', faultstring: 'Service "A&B" <1> isn\'t allowed — ünïcode 😀', faultactor: 'actor&1', detail: '2f7c1e52-0c1e-4f6e-9d1a-1234567890ab' };
    expect(pythonReadsFault(xml)).toEqual(expected);
    const ours = parseSoapFault(xml);
    expect(ours).toMatchObject({ faultCode: expected.faultcode, faultString: expected.faultstring, faultActor: expected.faultactor, detail: expected.detail });
    expect(ours.xml).toBe(xml);
  });

  it('is laid out as the reference writes it: declaration, SOAP-ENV prefix, unqualified fields, detail in faultDetail', () => {
    expect(soapFault('Server.ClientProxy.IOError', 'boom', 'id-1').toString('utf8')).toBe(
      '<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">' +
        '<SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>Server.ClientProxy.IOError</faultcode><faultstring>boom</faultstring>' +
        '<detail><faultDetail xmlns="">id-1</faultDetail></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>',
    );
    // Without detail and actor neither element is written.
    expect(pythonReadsFault(soapFault('Client.BadRequest', 'x'))).toEqual({ faultcode: 'Client.BadRequest', faultstring: 'x', faultactor: null, detail: null });
  });

  it('reads a pretty-printed fault with its own prefixes, and a 7.8 snake_case code normalises to the code we emit', () => {
    const xml = Buffer.from(`<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <soap:Fault>
      <faultcode>server.serverproxy.ssl_authentication_failed</faultcode>
      <faultstring>Client (SUBSYSTEM:DEV/COM/1/X) specifies HTTPS but did not supply TLS certificate</faultstring>
      <detail>plain-text-detail</detail>
    </soap:Fault>
  </soap:Body>
</soap:Envelope>`);
    const fault = readSoapFault(xml)!;
    expect(fault.faultCode).toBe('server.serverproxy.ssl_authentication_failed');
    expect(normalizeFaultCode(fault.faultCode)).toBe('Server.ServerProxy.SslAuthenticationFailed');
    expect(fault.faultString).toBe('Client (SUBSYSTEM:DEV/COM/1/X) specifies HTTPS but did not supply TLS certificate');
    expect(fault.detail).toBe('plain-text-detail');
  });

  it('a regular SOAP message or something that is not XML is not a fault; parseSoapFault says InvalidSoap', () => {
    const message = Buffer.from(
      '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header/><s:Body><getRandomResponse><FaultTolerant/></getRandomResponse></s:Body></s:Envelope>',
    );
    expect(readSoapFault(message)).toBeUndefined();
    expect(readSoapFault(Buffer.from('{"Fault": true}'))).toBeUndefined();
    expect(() => parseSoapFault(message)).toThrow(expect.objectContaining({ code: 'InvalidSoap', message: expect.stringContaining('regular SOAP message') }));
    expect(() => parseSoapFault('not xml')).toThrow(expect.objectContaining({ code: 'InvalidSoap' }));
    // A fault missing its faultstring is a broken fault, not a message.
    const broken = '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>Server</faultcode></s:Fault></s:Body></s:Envelope>';
    expect(() => readSoapFault(broken)).toThrow(expect.objectContaining({ code: 'InvalidSoap' }));
  });

  it('faultOfError carries the dotted code, the message and a fresh error id', () => {
    const err = new XrdError('AccessDenied', { service: 'DEV/COM/1/PROVIDER/getRandom' }, { prefix: 'Server.ServerProxy' });
    const a = faultOfError(err);
    const b = faultOfError(err);
    expect(a.faultCode).toBe('Server.ServerProxy.AccessDenied');
    expect(a.faultString).toBe('Request is not allowed: DEV/COM/1/PROVIDER/getRandom');
    expect(a.detail).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(b.detail).not.toBe(a.detail);
    expect(parseSoapFault(soapFault(a.faultCode, a.faultString, a.detail))).toMatchObject(a);
  });
});

describe('REST errors', () => {
  const serverFault = { faultCode: 'Server.ServerProxy.NetworkError', faultString: 'Connect to 10.0.0.1:8080 failed', detail: '9bc95b6e-2f1d-4a41-a7e6-11eda7d734d5' };

  it('a Server.* code is 500 with X-Road-Error and a JSON body of type, message and detail', () => {
    const r = restError(serverFault);
    expect(r.status).toBe(500);
    expect(r.headers).toEqual({ 'content-type': 'application/json; charset=utf-8', 'x-road-error': 'Server.ServerProxy.NetworkError' });
    expect(JSON.parse(r.body.toString('utf8'))).toEqual({ type: serverFault.faultCode, message: serverFault.faultString, detail: serverFault.detail });
  });

  it('a Client.* code is 400; 7.8 lower-case server codes are still 500', () => {
    expect(restError({ faultCode: 'Client.BadRequest', faultString: 'bad' }).status).toBe(400);
    expect(restError({ faultCode: 'server.clientproxy.io_error', faultString: 'x' }).status).toBe(500);
    expect(JSON.parse(restError({ faultCode: 'Client.BadRequest', faultString: 'bad' }).body.toString()).detail).toBe('');
  });

  it('answers in XML when Accept lists an XML type (text/* means text/xml), JSON for anything else', () => {
    for (const [accept, type] of [
      ['application/xml', 'application/xml'],
      ['application/json;q=0.9, text/xml', 'text/xml'],
      ['text/*', 'text/xml'],
    ] as const) {
      const r = restError(serverFault, accept);
      expect(r.headers['content-type']).toBe(`${type}; charset=utf-8`);
      const root = parseXml(r.body);
      expect(root.localName).toBe('error');
      expect(['type', 'message', 'detail'].map((n) => textOf(child(root, '', n)!))).toEqual([serverFault.faultCode, serverFault.faultString, serverFault.detail]);
    }
    expect(restError(serverFault, 'application/json').headers['content-type']).toBe('application/json; charset=utf-8');
    expect(restError(serverFault, 'image/png').headers['content-type']).toBe('application/json; charset=utf-8');
  });
});
