/**
 * The OCSP endpoint other security servers fetch our certificates' responses from (port 5577,
 * facts §4): the responses come from the signer's cache, which its refresher keeps fresh.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SignerConnection } from '../../signerapi/signer-client.ts';
import { ocspMultipartReply, parseOcspEndpointRequest } from '../../trust/ocsp-endpoint.ts';

export function ocspEndpointFromSigner(signer: SignerConnection): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const hashes = parseOcspEndpointRequest(req, res);
    if (!hashes) return;
    signer.call('getOcspResponses', { certHashes: hashes }).then(
      ({ responses }) => ocspMultipartReply(res, responses.filter((r): r is string => r !== null).map((r) => Buffer.from(r, 'base64'))),
      () => void res.writeHead(503, { 'Content-Type': 'text/plain' }).end('signer unavailable\n'),
    );
  };
}
