/**
 * The client proxy's REST adapter (the reference's ClientRestMessageProcessor): `/r1/…` calls whose
 * header part is built and read once from the method, path and headers; the body (if at least one
 * byte came) is read into the spool only after the caller is authenticated; the response's
 * identifiers are compared decoded, then the request hash (checkConsistency).
 */
import { XrdError } from '../../platform/errors.ts';
import { sameClientId } from '../../protocol/identifiers.ts';
import type { DecodedProxyMessage, RestContent } from '../../protocol/proxy-message.ts';
import { headerPairs, readRestRequest, restRequestHash } from '../../protocol/rest-message.ts';
import { sameServiceId } from '../../protocol/soap-message.ts';
import type { Body } from '../../platform/spool.ts';
import type { AdapterContext, ClientAdapter, IsRequest } from './adapter.ts';
import { clientError, header } from './client-errors.ts';

export const REST_ADAPTER: ClientAdapter = {
  kind: 'rest',
  protocol: 'REST',
  async receive(req, context) {
    const { requestId } = context;
    const rest = clientError(() => readRestRequest(req.method, req.url, headerPairs(req.rawHeaders), { requestId, newQueryId: context.newQueryId }));
    let body: Body | undefined;
    return {
      identity: { client: rest.client, service: rest.service, queryId: rest.queryId, userId: rest.userId, representedParty: rest.representedParty, restMethod: rest.method },
      target: { provider: rest.service.provider, server: rest.securityServer },
      async complete() {
        body = await readBody(req, context);
        const content: RestContent = { kind: 'rest', role: 'request', headerPart: rest.headerPart, ...(body ? { body } : {}) };
        const contentType = header(req.headers, 'content-type');
        return { content, size: rest.headerPart.length + (body?.size ?? 0), transport: contentType !== undefined ? { originalContentType: contentType } : {} };
      },
      checkAnswers(response) {
        // The decoder parsed the response's header part once.
        const r = response.restResponse!;
        const inconsistent = (reason: string) => new XrdError('InconsistentResponse', { reason }, { prefix: 'Server.ClientProxy' });
        if (!r.client || !sameClientId(r.client, rest.client)) throw inconsistent('Response client id does not match request message');
        if (r.queryId !== rest.queryId) throw inconsistent('Response message id does not match request message');
        if (!r.service || !sameServiceId(r.service, rest.service)) throw inconsistent('Response service id does not match request message');
        if (r.requestId !== requestId) throw inconsistent('Response message request id does not match request message');
        if (!restRequestHash(rest.headerPart, body).equals(r.requestHash)) throw inconsistent('Response message hash does not match request message');
      },
      answer(response: DecodedProxyMessage) {
        const answer = response.content as RestContent;
        const r = response.restResponse!;
        return { status: r.status, headers: r.headers.map(([n, v]) => [n, v]), pieces: answer.body ? [answer.body] : [], size: answer.headerPart.length + (answer.body?.size ?? 0), statusCode: r.status };
      },
    };
  },
};

/** The information system's body, if it sent at least one byte (the reference's rule for a body part). */
async function readBody(req: IsRequest, { settings, bodies }: AdapterContext): Promise<Body | undefined> {
  const writer = settings.spool.writer(settings.maxMessageBytes);
  try {
    for await (const chunk of req.body) writer.write(chunk);
  } catch (err) {
    writer.abort();
    throw err instanceof XrdError ? err.withPrefix('Client') : new XrdError('IOError', { reason: `the request broke off: ${(err as Error).message}` }, { prefix: 'Client', cause: err });
  }
  if (writer.received === 0) {
    writer.abort();
    return undefined;
  }
  const body = writer.end();
  bodies.add(body);
  return body;
}
