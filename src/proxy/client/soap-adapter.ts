/**
 * The client proxy's SOAP adapter (the reference's ClientMessageProcessor): `POST /` with a SOAP
 * message or package (SOAP with attachments, MTOM), read as it arrives with attachments into the
 * spool; the X-Road header parsed once; a fault the information system sends comes back to it as
 * its own (SoapFaultToClientProxy); the response must repeat the request's header and carry the
 * hash of the request as it was sent.
 */
import { XrdError, toXrdError } from '../../platform/errors.ts';
import { faultCodeIn } from '../../protocol/faults.ts';
import type { DecodedProxyMessage, SoapContent } from '../../protocol/proxy-message.ts';
import { checkRequestHeader, checkResponseHeader, checkSoapAction, soapRequestHash } from '../../protocol/soap-message.ts';
import { ParsedSoap } from '../../protocol/soap-parsed.ts';
import { readSoapPackage, soapPackagePieces } from '../../protocol/soap-package.ts';
import { RemoteFault } from './provider-link.ts';
import type { ClientAdapter } from './adapter.ts';
import { clientError, clientErrorAsync, header } from './client-errors.ts';

export const SOAP_ADAPTER: ClientAdapter = {
  kind: 'soap',
  protocol: 'SOAP',
  async receive(req, { settings, bodies }) {
    if (req.method !== 'POST') throw new XrdError('InvalidHttpMethod', { method: req.method }, { prefix: 'Client' });
    const soapAction = clientError(() => checkSoapAction(header(req.headers, 'soapaction')));
    const pkg = await clientErrorAsync(() => readSoapPackage(req.headers['content-type'], req.body, { spool: settings.spool, maxSoapBytes: settings.maxSoapBytes, maxBytes: settings.maxMessageBytes }));
    bodies.add(...pkg.attachments.map((a) => a.body));
    const size = pkg.soap.length + pkg.attachments.reduce((n, a) => n + a.body.size, 0);
    // Parsed once: an information system that sends a fault gets it back as the client's own
    // (SoapFaultToClientProxy); anything else must be an X-Road request.
    const parsed = new ParsedSoap(pkg.soap);
    const sentFault = parsed.fault();
    if (sentFault) throw new RemoteFault({ faultCode: faultCodeIn(`Client.${sentFault.faultCode}`, settings.faultCodes), faultString: sentFault.faultString, detail: sentFault.detail });
    const request = clientError(() => parsed.header());
    clientError(() => checkRequestHeader(request));
    return {
      identity: { client: request.client, service: request.service, queryId: request.id, userId: request.userId, representedParty: request.representedParty },
      target: { provider: request.service.provider, server: request.securityServer },
      complete: async () => ({ content: pkg, size, transport: { originalContentType: pkg.packageContentType, originalSoapAction: soapAction } }),
      checkAnswers(response) {
        // The decoder parsed the response's header once; the signature was verified before this.
        const answered = response.soapHeader!;
        try {
          checkResponseHeader(request, answered);
        } catch (err) {
          throw toXrdError(err).within('ServiceFailed').withPrefix('Server.ClientProxy');
        }
        if (answered.requestHash === undefined) throw new XrdError('InconsistentResponse', { reason: 'Response from server proxy is missing request message hash' }, { prefix: 'Server.ClientProxy' });
        if (answered.requestHash !== soapRequestHash(pkg.soap)) throw new XrdError('InconsistentResponse', { reason: 'Request message hash does not match request message' }, { prefix: 'Server.ClientProxy' });
      },
      answer(response: DecodedProxyMessage) {
        const content = response.content as SoapContent;
        const out = soapPackagePieces(content, response.originalContentType);
        return { status: 200, headers: [['content-type', out.contentType]], pieces: out.pieces, size: content.soap.length + (content.attachments ?? []).reduce((n, a) => n + a.body.size, 0) };
      },
    };
  },
};
