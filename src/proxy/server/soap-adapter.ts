/**
 * The server proxy's SOAP adapter (the reference's ServerMessageProcessor): the request's X-Road
 * header as the decoder parsed it; listMethods, allowedMethods and getWsdl, and the pr-opmon
 * queries to the owner, answered here; otherwise the provider's service called with the package
 * rebuilt as the client sent it. Its response is parsed once — checked as an X-Road message and
 * given the request hash from the same tree — and a fault it answers passes on unsigned.
 */
import { XrdError } from '../../platform/errors.ts';
import { memoryBody } from '../../platform/spool.ts';
import { TEXT_XML_UTF8, type SoapFault } from '../../protocol/faults.ts';
import type { SoapContent } from '../../protocol/proxy-message.ts';
import { headerValue } from '../../protocol/rest-message.ts';
import { checkRequestHeader, checkSoapAction } from '../../protocol/soap-message.ts';
import { ParsedSoap } from '../../protocol/soap-parsed.ts';
import { readSoapPackage, soapPackagePieces, type SoapPackage } from '../../protocol/soap-package.ts';
import { answerSoapMetaservice, isSoapMetaservice } from '../../metaservice/soap-metaservices.ts';
import type { ResolvedService } from '../../serverconf/server-conf.ts';
import type { ServerAdapter, ServerContext } from './adapter.ts';
import { failedReading, serviceFailed, serviceFailure } from './server-errors.ts';

export const SOAP_ADAPTER: ServerAdapter = {
  protocol: 'SOAP',
  accept(request, context) {
    const header = request.soapHeader!;
    const content = request.content as SoapContent;
    let soapAction: string | undefined;
    return {
      identity: { client: header.client, service: header.service, queryId: header.id, userId: header.userId, representedParty: header.representedParty },
      securityServer: header.securityServer,
      requestId: request.requestId,
      check() {
        soapAction = failedReading(() => checkSoapAction(request.originalSoapAction));
        failedReading(() => checkRequestHeader(header));
      },
      // Queries and metaservices are answered here to anyone whose signature verifies: what each
      // caller sees is decided by the answer (OpMonitoringServiceHandlerImpl and
      // MetadataServiceHandlerImpl: shouldVerifyAccess is false).
      answeredHere: (ownerQuery) => ownerQuery || isSoapMetaservice(header.service.serviceCode),
      async respond(service, ownerQuery) {
        const answered: (SoapPackage & { parsed?: ParsedSoap }) | { fault: SoapFault } = service
          ? await callService(context, service, content, request.originalContentType, soapAction)
          : ownerQuery
            ? await context.answerQuery(content.soap, header)
            : await answerMetaservice(context, content);
        if ('fault' in answered) return answered;
        // One parse of the answer (the service's was parsed for its fault already): checked as an
        // X-Road message, the request hash put right after xrd:id, any the service wrote dropped (pr-mess).
        const parsed = answered.parsed ?? new ParsedSoap(answered.soap);
        const { message } = serviceFailure(() => parsed.withRequestHash(content.soap));
        const answer: SoapContent = { kind: 'soap', soap: message, contentType: answered.contentType, partHeaders: answered.partHeaders, attachments: answered.attachments };
        return { content: answer, originalContentType: answered.packageContentType, size: message.length + answered.attachments.reduce((n, a) => n + a.body.size, 0) };
      },
    };

    /** listMethods, allowedMethods, getWsdl (MetadataServiceHandlerImpl), answered here instead of by the provider's information system. */
    async function answerMetaservice(ctx: ServerContext, soap: SoapContent): Promise<SoapPackage> {
      const answer = await answerSoapMetaservice(soap.soap, header, ctx.metaserviceContext(header.client));
      const attachments = answer.attachments.map((a) => ({ contentType: a.contentType, headers: a.headers, body: memoryBody(a.body) }));
      return { kind: 'soap', soap: answer.soap, contentType: TEXT_XML_UTF8, attachments, packaged: attachments.length > 0, packageContentType: answer.packageContentType };
    }
  },
};

/** The provider's answer, or its fault (which goes back as it is, unsigned, as the reference sends it). */
async function callService(context: ServerContext, service: ResolvedService, content: SoapContent, originalContentType: string | undefined, soapAction: string | undefined): Promise<(SoapPackage & { parsed: ParsedSoap }) | { fault: SoapFault }> {
  const { settings } = context;
  const outgoing = soapPackagePieces(content, originalContentType);
  const response = await context.call(service, new URL(service.url), {
    method: 'POST',
    headers: [['content-type', outgoing.contentType], ...(soapAction !== undefined ? [['soapaction', soapAction] as [string, string]] : [])],
    body: outgoing.pieces,
  });
  if (response.status !== 200 && response.status !== 500) {
    response.body.resume();
    throw serviceFailed(new XrdError('HttpError', { status: response.status, reason: response.reason }));
  }
  const answered = headerValue(response.headers, 'content-type');
  const pkg = await serviceFailure(async () => {
    try {
      return await readSoapPackage(answered, response.body, { spool: settings.spool, maxSoapBytes: settings.maxSoapBytes, maxBytes: settings.maxMessageBytes });
    } catch (err) {
      // An empty package from the service: no response message (ServerMessageProcessor).
      if (err instanceof XrdError && err.code === 'MissingSoap') throw new XrdError('InvalidMessage', { reason: 'No response message received from service' });
      throw err;
    }
  });
  context.keep(...pkg.attachments.map((a) => a.body));
  const parsed = new ParsedSoap(pkg.soap);
  const serviceFault = parsed.fault();
  return serviceFault ? { fault: serviceFault } : { ...pkg, parsed };
}
