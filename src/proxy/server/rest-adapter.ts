/**
 * The server proxy's REST adapter (the reference's ServerRestMessageProcessor): the request's header
 * part as the decoder parsed it; listMethods, allowedMethods and getOpenAPI answered here;
 * otherwise the provider's service called with the request's method, path, headers and body. The
 * response's header part (status, the service's headers, the X-Road ones and the request hash) is
 * built once, signed and sent with the body as the service wrote it.
 */
import { XrdError } from '../../platform/errors.ts';
import { memoryBody, type Body } from '../../platform/spool.ts';
import type { RestContent } from '../../protocol/proxy-message.ts';
import { restResponseParts, serviceRequestHeaders, type HeaderList } from '../../protocol/rest-message.ts';
import { answerRestMetaservice, isRestMetaservice } from '../../metaservice/rest-metaservices.ts';
import { serviceUrl } from '../../serverconf/server-conf.ts';
import type { ServerAdapter } from './adapter.ts';
import { serviceFailure } from './server-errors.ts';

/** What answers a REST request: the provider's service, or a metaservice answered here. */
interface RestAnswer {
  readonly status: number;
  readonly reason: string;
  readonly headers: HeaderList;
  readonly body?: Body;
}

export const REST_ADAPTER: ServerAdapter = {
  protocol: 'REST',
  accept(request, context) {
    const content = request.content!;
    if (content.kind !== 'rest') throw new XrdError('MissingRest', { message: 'Request' }, { prefix: 'Server.ServerProxy' });
    const rest = request.restRequest!;
    // The reference answers with the x-road-request-id the client proxy sent as an HTTP header.
    const requestId = request.requestId ?? rest.requestId;
    return {
      identity: { client: rest.client, service: rest.service, queryId: rest.queryId, userId: rest.userId, representedParty: rest.representedParty, restMethod: rest.method },
      securityServer: rest.securityServer,
      requestId,
      check: () => undefined,
      // Metaservices are answered here to anyone whose signature verifies (RestMetadataServiceHandlerImpl: no access check).
      answeredHere: () => isRestMetaservice(rest.method, rest.service.serviceCode),
      restCall: { method: rest.method, path: rest.servicePath.split('?', 1)[0]! },
      async respond(service) {
        let answered: RestAnswer;
        if (service) {
          const target = serviceUrl(service, rest.servicePath);
          const response = await context.call(service, target, { method: rest.method, headers: serviceRequestHeaders(rest), body: content.body && rest.method !== 'GET' && rest.method !== 'HEAD' ? [content.body] : undefined });
          const body = restBodyExpected(rest.method, response.status) ? await serviceFailure(() => context.spoolBody(response)) : (response.body.resume(), undefined);
          answered = { status: response.status, reason: response.reason, headers: response.headers, ...(body ? { body } : {}) };
        } else {
          // REST listMethods, allowedMethods, getOpenAPI (RestMetadataServiceHandlerImpl).
          const answer = await answerRestMetaservice(rest.service.provider, rest.service.serviceCode, rest.servicePath, rest.client, context.metaserviceContext(rest.client));
          answered = { status: 200, reason: 'OK', headers: answer.headers, body: memoryBody(answer.body) };
        }
        const parts = restResponseParts({ headerPart: content.headerPart, body: content.body, client: rest.client, service: rest.service, queryId: rest.queryId, requestId }, answered.status, answered.reason, answered.headers);
        const answer: RestContent = { kind: 'rest', role: 'response', headerPart: parts.headerPart, ...(answered.body ? { body: answered.body } : {}) };
        return { content: answer, size: parts.headerPart.length + (answered.body?.size ?? 0), statusCode: answered.status };
      },
    };
  },
};

/** Whether an HTTP response has a body (as Apache HttpClient decides it has an entity). */
const restBodyExpected = (method: string, status: number): boolean => method !== 'HEAD' && status >= 200 && status !== 204 && status !== 205 && status !== 304;
