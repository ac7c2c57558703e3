/** Certificate paths up to an approved CA, with openssl-made CAs and certificates. */
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCertPath } from '../../src/trust/cert-path.ts';
import { confWithCas } from '../support/conf.ts';
import { createTestCa, newKeyAndCsr, pemToDer, type TestCa } from '../support/openssl.ts';

let root: TestCa;
let intermediate: TestCa;
let rootDer: Buffer;
let intermediateDer: Buffer;
let leaf: Buffer;

const subjectOf = (der: Buffer) => new X509Certificate(der).subject.replaceAll('\n', ', ');
const leafUnder = (ca: TestCa, name: string) => pemToDer(ca.issue(newKeyAndCsr(ca.dir, name, `/O=Test/CN=${name}`).csrPem, 'nonRepudiation'));

beforeAll(() => {
  root = createTestCa('Path Root');
  rootDer = pemToDer(root.certPem);
  intermediate = createTestCa('Path Intermediate', { parent: root, basicConstraints: 'critical,CA:TRUE,pathlen:0' });
  intermediateDer = pemToDer(intermediate.certPem);
  leaf = leafUnder(intermediate, 'leaf');
});

describe('certificate paths', () => {
  it('goes through an intermediate listed in the configuration', () => {
    const path = buildCertPath(leaf, confWithCas([{ name: 'Root', top: rootDer, intermediates: [intermediateDer] }]));
    expect(path.ca.name).toBe('Root');
    expect(path.certs.map(subjectOf)).toEqual(['O=Test, CN=leaf', 'O=Test, CN=Path Intermediate', 'O=Test, CN=Path Root']);
  });

  it('or through one supplied with the message; without it, no path', () => {
    const conf = confWithCas([{ name: 'Root', top: rootDer }]);
    expect(buildCertPath(leaf, conf, [intermediateDer]).certs).toHaveLength(3);
    expect(() => buildCertPath(leaf, conf)).toThrowError(expect.objectContaining({ code: 'CannotCreateCertPath' }));
  });

  it("an approved CA's top certificate is a path of its own", () => {
    expect(buildCertPath(rootDer, confWithCas([{ name: 'Root', top: rootDer }])).certs).toEqual([rootDer]);
  });

  it('a certificate of a CA nobody approved has no path', () => {
    const stranger = createTestCa('Stranger CA');
    expect(() => buildCertPath(leafUnder(stranger, 'stranger-leaf'), confWithCas([{ name: 'Root', top: rootDer }]))).toThrowError(expect.objectContaining({ code: 'CannotCreateCertPath' }));
  });

  it('outside its validity at the given time: CertValidityTime', () => {
    const conf = confWithCas([{ name: 'Root', top: rootDer, intermediates: [intermediateDer] }]);
    expect(() => buildCertPath(leaf, conf, [], new Date(Date.now() + 400 * 86_400_000))).toThrowError(expect.objectContaining({ code: 'CertValidityTime' }));
    expect(() => buildCertPath(leaf, conf, [], new Date(Date.now() - 86_400_000))).toThrowError(expect.objectContaining({ code: 'CertValidityTime' }));
  });

  it('an issuer that is no CA, or a path longer than its pathlen allows: InvalidCertPath', () => {
    const notCa = createTestCa('Not a CA', { parent: root, basicConstraints: 'critical,CA:FALSE' });
    const conf = confWithCas([{ name: 'Root', top: rootDer, intermediates: [pemToDer(notCa.certPem)] }]);
    expect(() => buildCertPath(leafUnder(notCa, 'under-not-ca'), conf)).toThrowError(expect.objectContaining({ code: 'InvalidCertPath', message: expect.stringContaining('is not a CA certificate') }));

    const deeper = createTestCa('Too Deep', { parent: intermediate });
    const deepConf = confWithCas([{ name: 'Root', top: rootDer, intermediates: [intermediateDer, pemToDer(deeper.certPem)] }]);
    expect(() => buildCertPath(leafUnder(deeper, 'too-deep-leaf'), deepConf)).toThrowError(expect.objectContaining({ code: 'InvalidCertPath', message: expect.stringContaining('path length constraint 0') }));
  });

  it('a tampered signature is InvalidCertPath; an impostor issuer (other key) gives no path', () => {
    const conf = confWithCas([{ name: 'Root', top: rootDer, intermediates: [intermediateDer] }]);
    const tampered = Buffer.from(leaf);
    tampered[tampered.length - 1]! ^= 0x01; // the last octet belongs to the signature
    expect(() => buildCertPath(tampered, conf)).toThrowError(expect.objectContaining({ code: 'InvalidCertPath', message: expect.stringContaining('is not signed by') }));
    const impostor = createTestCa('Path Intermediate', { parent: root, basicConstraints: 'critical,CA:TRUE,pathlen:0' });
    expect(() => buildCertPath(leaf, confWithCas([{ name: 'Root', top: rootDer, intermediates: [pemToDer(impostor.certPem)] }]))).toThrowError(expect.objectContaining({ code: 'CannotCreateCertPath' }));
  });

  it('asked again (answered from what was kept): validity at the new time is still checked, and a changed configuration is seen', () => {
    const conf = confWithCas([{ name: 'Root', top: rootDer, intermediates: [intermediateDer] }]);
    const first = buildCertPath(leaf, conf);
    expect(buildCertPath(leaf, conf).certs).toEqual(first.certs);
    expect(() => buildCertPath(leaf, conf, [], new Date(Date.now() + 400 * 86_400_000))).toThrowError(expect.objectContaining({ code: 'CertValidityTime' }));
    expect(buildCertPath(leaf, conf).ca.name).toBe('Root');

    // The intermediate is no longer listed: the next configuration object has no path for the leaf.
    const withoutIntermediate = confWithCas([{ name: 'Root', top: rootDer }]);
    expect(() => buildCertPath(leaf, withoutIntermediate)).toThrowError(expect.objectContaining({ code: 'CannotCreateCertPath' }));
    // The CA is approved under another name: the new name is reported.
    expect(buildCertPath(leaf, confWithCas([{ name: 'Renamed', top: rootDer, intermediates: [intermediateDer] }])).ca.name).toBe('Renamed');
    // A broken link found once stays broken, and is reported after validity as before.
    const tampered = Buffer.from(leaf);
    tampered[tampered.length - 1]! ^= 0x01;
    for (let i = 0; i < 2; i++) expect(() => buildCertPath(tampered, conf)).toThrowError(expect.objectContaining({ code: 'InvalidCertPath' }));
    expect(() => buildCertPath(tampered, conf, [], new Date(Date.now() - 86_400_000))).toThrowError(expect.objectContaining({ code: 'CertValidityTime' }));
  });

  it('not a certificate: IncorrectCertificate', () => {
    const conf = confWithCas([{ name: 'Root', top: rootDer }]);
    expect(() => buildCertPath(Buffer.from('no certificate'), conf)).toThrowError(expect.objectContaining({ code: 'IncorrectCertificate' }));
    expect(() => buildCertPath(leaf, conf, [Buffer.from('no certificate')])).toThrowError(expect.objectContaining({ code: 'IncorrectCertificate' }));
  });
});
