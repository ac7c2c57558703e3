/**
 * The client's information system in conformance tests: X-Road SOAP requests and SOAP packages
 * (SOAP with attachments, MTOM) as pr-mess describes them, and calls to a local instance's client
 * proxy over HTTPS with the information system's TLS certificate (seed 003).
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { LocalInstance } from '../../src/dev/localinstance/local-instance.ts';

export interface IsAnswer {
  readonly status: number;
  /** Header names as sent. */
  readonly headers: readonly (readonly [string, string])[];
  readonly contentType: string;
  readonly body: Buffer;
}

/** A call to ss2's client proxy as the information system of LOCAL/COM/2222/CLIENT; the path goes as written. */
export function callClientProxy(instance: LocalInstance, path: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<IsAnswer> {
  const base = new URL(instance.consumer.httpsUrl);
  const is = instance.clientIs;
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: base.hostname, port: base.port, path, method: options.method ?? 'GET', headers: options.headers, rejectUnauthorized: false, cert: readFileSync(is.certFile), key: readFileSync(is.keyFile) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers: [string, string][] = [];
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.push([res.rawHeaders[i]!, res.rawHeaders[i + 1]!]);
          resolve({ status: res.statusCode ?? 0, headers, contentType: res.headers['content-type'] ?? '', body: Buffer.concat(chunks) });
        });
      },
    );
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error('the client proxy did not answer within 60 s')));
    req.end(options.body);
  });
}

/** Resolves when the call was answered with 200; otherwise throws saying what came instead. */
export async function answeredOk(call: Promise<IsAnswer>): Promise<IsAnswer> {
  const answer = await call;
  if (answer.status !== 200) throw new Error(`${answer.status}: ${answer.body.toString().slice(0, 300)}`);
  return answer;
}

/** The client proxy path of a REST service of LOCAL/COM/1111/PROVIDER, or of another subsystem of 1111 (`service` may go on with a path). */
export const restPath = (instance: LocalInstance, service: string, subsystem = 'PROVIDER'): string => `/r1/${instance.pki.instance}/COM/1111/${subsystem}/${service}`;

/** An X-Road SOAP request from LOCAL/COM/2222/CLIENT to a service of LOCAL/COM/1111/PROVIDER, or of another subsystem of 1111 and with a version when `to` says so. */
export function soapRequest(instance: LocalInstance, service: string, id: string, body = `<prod:${service}/>`, to: { subsystem?: string; version?: string } = {}): Buffer {
  const inst = instance.pki.instance;
  return Buffer.from(
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:xrd="http://x-road.eu/xsd/xroad.xsd" xmlns:prod="http://test.x-road.fi/producer">\n' +
      '  <SOAP-ENV:Header>\n' +
      `    <xrd:client id:objectType="SUBSYSTEM"><id:xRoadInstance>${inst}</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>2222</id:memberCode><id:subsystemCode>CLIENT</id:subsystemCode></xrd:client>\n` +
      `    <xrd:service id:objectType="SERVICE"><id:xRoadInstance>${inst}</id:xRoadInstance><id:memberClass>COM</id:memberClass><id:memberCode>1111</id:memberCode><id:subsystemCode>${to.subsystem ?? 'PROVIDER'}</id:subsystemCode><id:serviceCode>${service}</id:serviceCode>${to.version === undefined ? '' : `<id:serviceVersion>${to.version}</id:serviceVersion>`}</xrd:service>\n` +
      '    <xrd:userId>conformance</xrd:userId>\n' +
      `    <xrd:id>${id}</xrd:id>\n` +
      '    <xrd:protocolVersion>4.0</xrd:protocolVersion>\n' +
      '  </SOAP-ENV:Header>\n' +
      `  <SOAP-ENV:Body>${body}</SOAP-ENV:Body>\n` +
      '</SOAP-ENV:Envelope>\n',
    'utf8',
  );
}

export interface PackagePart {
  readonly contentType: string;
  /** Further MIME headers, names as written (Content-ID, Content-Transfer-Encoding, …). */
  readonly headers?: readonly (readonly [string, string])[];
  readonly body: Buffer;
}

export interface SoapPackage {
  /** The Content-Type of the whole package, as the information system sends it. */
  readonly contentType: string;
  readonly root: PackagePart;
  readonly attachments: readonly PackagePart[];
  readonly body: Buffer;
}

/** A multipart/related package: SOAP with attachments, or MTOM when the root is application/xop+xml. */
export function soapPackage(boundary: string, contentType: string, root: PackagePart, attachments: readonly PackagePart[]): SoapPackage {
  const chunks: Buffer[] = [];
  for (const part of [root, ...attachments]) {
    const head = [['Content-Type', part.contentType], ...(part.headers ?? [])].map(([n, v]) => `${n}: ${v}\r\n`).join('');
    chunks.push(Buffer.from(`--${boundary}\r\n${head}\r\n`, 'latin1'), part.body, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { contentType, root, attachments, body: Buffer.concat(chunks) };
}

/** An attachment's bytes: every byte value, CR and LF among them, so nothing may be re-encoded on the way. */
export function binaryAttachment(size: number): Buffer {
  return Buffer.from(Array.from({ length: size }, (_, i) => (i * 7 + 13) % 256));
}
