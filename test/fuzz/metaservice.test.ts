/**
 * The metaservices' readers of what a provider's description server sends (src/metaservice):
 * mutated copies of the shared vectors' WSDL and OpenAPI JSON, and generated server URLs, give an
 * answer or an XrdError — never another exception — and an answer never carries a
 * soap:address or servers[].url origin the rewrite should have taken out.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anonymiseOpenapi } from '../../src/metaservice/openapi.ts';
import { WSDL_ENDPOINT_ADDRESS, overwriteSoapAddress } from '../../src/metaservice/wsdl.ts';
import { XrdError } from '../../src/platform/errors.ts';
import { parseXml, type XmlElement } from '../../src/xml/xml-tree.ts';
import { FUZZ_TIMEOUT, fuzzRuns, mutated, vector } from './fuzz.ts';

const WSDL = vector('metaservices', '__files', 'wsdl.wsdl');
const OPENAPI = vector('metaservices', '__files', 'petstore.json');

function outcome(run: () => Buffer): Buffer | XrdError {
  try {
    return run();
  } catch (err) {
    if (err instanceof XrdError) return err;
    throw err;
  }
}

const soapAddresses = (e: XmlElement): string[] => [
  ...(e.namespace === 'http://schemas.xmlsoap.org/wsdl/soap/' && e.localName === 'address' ? e.attributes.filter((a) => a.name === 'location').map((a) => a.value) : []),
  ...e.children.flatMap((n) => (n.kind === 'element' ? soapAddresses(n) : [])),
];

describe('metaservice description rewriting under mutation', () => {
  it('getWsdl: a mutated WSDL is rewritten (every soap:address the endpoint placeholder) or refused with an XrdError', () => {
    fc.assert(
      fc.property(mutated(WSDL, [0x3c, 0x3e, 0x2f, 0x22, 0x3d, 0x3a, 0x26]), (wsdl) => {
        const got = outcome(() => overwriteSoapAddress(wsdl));
        if (got instanceof XrdError) return;
        for (const location of soapAddresses(parseXml(got))) expect(location).toBe(WSDL_ENDPOINT_ADDRESS);
      }),
      fuzzRuns(300),
    );
  }, FUZZ_TIMEOUT);

  it('getOpenAPI: a mutated JSON document is rewritten or refused with an XrdError', () => {
    fc.assert(
      fc.property(mutated(OPENAPI, [0x7b, 0x7d, 0x5b, 0x5d, 0x22, 0x3a, 0x2c]), (doc) => {
        outcome(() => anonymiseOpenapi(doc, 'JSON', 'http://d.example/a.json'));
      }),
      fuzzRuns(300),
    );
  }, FUZZ_TIMEOUT);

  it('getOpenAPI: any server URL without variables comes out without scheme and authority, or is refused', () => {
    fc.assert(
      fc.property(fc.oneof(fc.webUrl({ withQueryParameters: true, withFragments: true }), fc.string()), (url) => {
        const got = outcome(() => anonymiseOpenapi(Buffer.from(JSON.stringify({ openapi: '3.0.0', servers: [{ url }] })), 'JSON', 'http://d.example/a.json'));
        if (got instanceof XrdError || (url.includes('{') && url.includes('}'))) return;
        const out = (JSON.parse(got.toString('utf8')) as { servers: { url: string | null }[] }).servers[0]!.url;
        if (out !== null) expect(out).not.toMatch(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//);
      }),
      fuzzRuns(1000),
    );
  }, FUZZ_TIMEOUT);
});
