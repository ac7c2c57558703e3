/**
 * The reference's own wire messages between security servers (vectors proxy-queries/proxymessages/,
 * README "proxy-queries/proxymessages/") through our decoder, each test named after the
 * ProxyMessageDecoderTest or ProxyMessageEncoderTest case it repeats. The reference decodes them
 * with `faultAllowed` (no direction) and SHA-512 as the hash algorithm; so do we.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { concatPieces, memoryBody } from '../../src/platform/spool.ts';
import { readSoapFault } from '../../src/protocol/faults.ts';
import { decodeProxyMessage, encodeProxyMessage, type DecodedProxyMessage, type ProxyMessage } from '../../src/protocol/proxy-message.ts';
import { VECTORS } from '../support/vectors.ts';

const QUERIES = join(VECTORS, 'proxy-queries');
const query = (name: string) => readFileSync(join(QUERIES, name));
const message = (name: string) => readFileSync(join(QUERIES, 'proxymessages', name));
/** The reference's hashAlgoId in these tests (Digests.DEFAULT_DIGEST_ALGORITHM). */
const HASH = { 'x-hash-algorithm': 'SHA-512' };

/** MimeUtils.mpMixedContentType(boundary), the boundary being the file's first delimiter. */
function contentTypeOf(file: Buffer): string {
  return `multipart/mixed; charset=UTF-8; boundary=${/^--(\S+)/.exec(file.toString('latin1'))![1]}`;
}

const decodeFile = (name: string) => {
  const file = message(name);
  return decodeProxyMessage(contentTypeOf(file), file, HASH);
};

async function codeOf(decoding: Promise<unknown>): Promise<string> {
  try {
    await decoding;
    return 'no error';
  } catch (err) {
    return (err as { code: string }).code;
  }
}

describe('ProxyMessageDecoderTest (vectors proxy-queries/proxymessages/)', () => {
  it('normalRequest: normal.request decodes to the SOAP message and the signature', async () => {
    const m = await decodeFile('normal.request');
    expect(m.isFault).toBe(false);
    expect(m.content?.kind).toBe('soap');
    expect(m.soapHeader?.service.serviceCode).toBe('getState');
    expect(m.signature?.signatureXml.toString()).toContain('XAdESSignatures');
  });

  it('normalSoapFaultRequest: normal-soapfault.request (a fault where the message belongs, then a signature) decodes to the fault', async () => {
    const m = await decodeFile('normal-soapfault.request');
    expect(m.isFault).toBe(true);
    expect(m.fault).toMatchObject({ faultCode: 'CODE', faultString: 'STRING' });
  });

  it('normalAttachmentRequest: attachment.request decodes to the SOAP message, an attachment and the signature', async () => {
    const m = await decodeFile('attachment.request');
    expect(m.content?.kind === 'soap' && m.content.attachments?.length).toBe(1);
    expect(m.signature).toBeDefined();
  });

  it('normalOcspRequest: ocsp.request decodes to an OCSP response that OpenSSL reads, the SOAP message and the signature', async () => {
    const m = await decodeFile('ocsp.request');
    expect(m.ocspResponses).toHaveLength(1);
    expect(m.ocspResponses[0]![0]).toBe(0x30);
    expect(m.content?.kind).toBe('soap');
    expect(m.signature).toBeDefined();
  });

  it('notProxyMessage: simple.query as text/xml is a regular SOAP message, not a fault → invalid_message', async () => {
    expect(await codeOf(decodeProxyMessage('text/xml', query('simple.query'), {}))).toBe('InvalidMessage');
  });

  it('invalidContentType: Content-Type tsdfsdfsdf → invalid_content_type', async () => {
    expect(await codeOf(decodeProxyMessage('tsdfsdfsdf', Buffer.alloc(0), HASH))).toBe('InvalidContentType');
  });

  it('parseFault: fault.query as text/xml decodes to the fault', async () => {
    const m = await decodeProxyMessage('text/xml', query('fault.query'), {});
    expect(m).toMatchObject({ isFault: true, fault: { faultCode: 'CODE', faultString: 'STRING', faultActor: 'ACTOR' } });
  });

  it('invalidContentTypeInMultipart: attachm-error.query as multipart/mixed without a boundary → invalid_content_type', async () => {
    expect(await codeOf(decodeProxyMessage('multipart/mixed', query('attachm-error.query'), HASH))).toBe('InvalidContentType');
  });

  it('failsToParseWithExtraContent: extracontent.request (text/plain after the signature) → invalid_message', async () => {
    expect(await codeOf(decodeFile('extracontent.request'))).toBe('InvalidMessage');
  });

  it('invalidOcsp: invalid-ocsp.request ("OCSP RESPONSE DUMMY") → io_error', async () => {
    expect(await codeOf(decodeFile('invalid-ocsp.request'))).toBe('IOError');
  });

  it('invalidSoapContentType: invalid-soap-contenttype.request (first part foo/bar) → invalid_content_type', async () => {
    expect(await codeOf(decodeFile('invalid-soap-contenttype.request'))).toBe('InvalidContentType');
  });

  it('faultInsteadOfSignature: fault-signature.request decodes to the fault and no signature', async () => {
    const m = await decodeFile('fault-signature.request');
    expect(m.isFault).toBe(true);
    expect(m.fault?.faultCode).toBe('CODE');
    expect(m.signature).toBeUndefined();
  });

  it('invalidContentTypeForSignature: invalid-contenttype-signature.request (signature part foo/bar) → invalid_content_type', async () => {
    expect(await codeOf(decodeFile('invalid-contenttype-signature.request'))).toBe('InvalidContentType');
  });
});

describe('ProxyMessageEncoderTest (getstate.query, signature.xml, test.ocsp, fault.query)', () => {
  const soap = { kind: 'soap', soap: query('getstate.query'), contentType: 'text/xml; charset=UTF-8' } as const;
  const signature = { signatureXml: query('signature.xml') };
  const fault = readSoapFault(query('fault.query'))!;

  async function roundTrip(msg: ProxyMessage): Promise<DecodedProxyMessage> {
    const wire = encodeProxyMessage(msg);
    return decodeProxyMessage(wire.contentType, concatPieces(wire.pieces), wire.headers);
  }

  it('normalMessage: SOAP and signature come back, no fault, no OCSP response', async () => {
    const m = await roundTrip({ content: soap, signature });
    expect(m.content?.kind === 'soap' && m.content.soap).toEqual(soap.soap);
    expect(m.signature?.signatureXml).toEqual(signature.signatureXml);
    expect(m.fault).toBeUndefined();
    expect(m.ocspResponses).toEqual([]);
  });

  it('normalMessageWithOcsp: the OCSP response comes back byte for byte', async () => {
    const ocsp = query('test.ocsp');
    const m = await roundTrip({ ocspResponses: [ocsp], content: soap, signature });
    expect(m.ocspResponses).toEqual([ocsp]);
    expect(m.content?.kind).toBe('soap');
    expect(m.signature).toBeDefined();
    expect(m.fault).toBeUndefined();
  });

  it('normalMessageWithAttachment: SOAP, the text/plain attachment and the signature come back', async () => {
    const attachment = { contentType: 'text/plain', headers: [], body: memoryBody(Buffer.from('Hello, world!')) };
    const m = await roundTrip({ content: { ...soap, attachments: [attachment] }, signature });
    expect(m.content?.kind === 'soap' && m.content.attachments?.map((a) => [a.contentType, a.body.bytes().toString()])).toEqual([['text/plain', 'Hello, world!']]);
    expect(m.signature).toBeDefined();
  });

  it('faultMessage: the fault comes back', async () => {
    const m = await roundTrip({ fault });
    expect(m).toMatchObject({ isFault: true, fault: { faultCode: 'CODE', faultString: 'STRING' } });
  });

  it('normalMessageWithFaultInsteadOfSignature: SOAP and the fault come back', async () => {
    const m = await roundTrip({ content: soap, fault });
    expect(m.content?.kind === 'soap' && m.content.soap).toEqual(soap.soap);
    expect(m).toMatchObject({ isFault: true, fault: { faultCode: 'CODE' } });
  });
});
