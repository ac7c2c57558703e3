/**
 * A stand-in for the central server's management service, for the local instance: it takes every
 * management request type (pr-mserv §2) at the reference's path `/managementservice/manage` over
 * plain HTTP on loopback — `multipart/related` or, for the deletions, `text/xml` — verifies it
 * against the instance's global configuration as a central server would, hands the accepted ones to
 * `accept` (the test PKI keeps or applies them, local-pki.ts) and answers with the request echoed and
 * its `requestId`; anything refused gets a SOAP fault (HTTP 500, `Server.<Code>`), as the reference's
 * ManagementRequestSoapExecutor answers. The reference's central server gets all but authCertReg
 * from its own security server, which has already authenticated the sender; the stand-in is reached
 * directly. Never for production.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { loadGlobalConf } from '../../globalconf/global-conf.ts';
import { XrdError, toXrdError } from '../../platform/errors.ts';
import { TEXT_XML_UTF8, soapFault } from '../../protocol/faults.ts';
import { MAX_MANAGEMENT_REQUEST_BYTES, managementRequestResponse, parseManagementRequest, type ManagementRequestBody, type ParsedManagementRequest } from '../../protocol/management-request.ts';
import { verifyManagementRequest } from '../../trust/management-request-verifier.ts';

export const MANAGEMENT_SERVICE_PATH = '/managementservice/manage';

export interface ManagementServiceOptions {
  /** The instance's configuration, read again for every request (approvals change it). */
  readonly globalConfDir: string;
  /**
   * Keeps or applies a verified request and returns its id; throws (a coded error) to refuse it,
   * e.g. when one for the same change is already pending or the configuration does not allow it.
   */
  readonly accept: (request: ManagementRequestBody, parsed: ParsedManagementRequest) => string;
  /** Told of every refusal, with the error id the fault carries. */
  readonly onRefused?: (err: XrdError, errorId: string) => void;
}

export function startManagementService(options: ManagementServiceOptions, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const answer = (status: number, body: Buffer) => res.writeHead(status, { 'Content-Type': TEXT_XML_UTF8, 'Cache-Control': 'no-store', Pragma: 'no-cache', Expires: '0' }).end(body);
    const refuse = (err: unknown) => {
      const e = toXrdError(err);
      const errorId = randomUUID();
      options.onRefused?.(e, errorId);
      answer(500, soapFault(`Server.${e.fullCode}`, e.message, errorId));
    };
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== MANAGEMENT_SERVICE_PATH) return void res.writeHead(404).end();
    if (req.method !== 'POST') return refuse(new XrdError('InvalidHttpMethod', { method: req.method ?? '' }));
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_MANAGEMENT_REQUEST_BYTES) tooLarge = true;
      else chunks.push(c);
    });
    req.on('end', () => {
      try {
        if (tooLarge) throw new XrdError('MessageTooLarge', { limit: MAX_MANAGEMENT_REQUEST_BYTES });
        const parsed = parseManagementRequest(req.headers['content-type'] ?? '', Buffer.concat(chunks));
        const conf = loadGlobalConf(options.globalConfDir);
        const now = new Date();
        conf.checkUpToDate(now);
        const verified = verifyManagementRequest(parsed, conf, now);
        const id = options.accept(verified, parsed);
        answer(200, managementRequestResponse(parsed, id));
      } catch (err) {
        refuse(err);
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
