/**
 * Who sent a logged or archived message, read from what `/message.xml` holds — a SOAP envelope or a
 * REST header part — by the same strict readers the proxies use (parseSoapHeader,
 * parseRestRequestPart, parseRestResponsePart), so that a container is verified against the
 * parties the proxies saw and nothing else.
 *
 * Request or response is read from what is signed, never guessed from a name: a REST header part
 * starts with a method or a status; a SOAP response carries `xrd:requestHash`, which the provider's
 * security server adds to every response (ServerMessageProcessor) and which no request may carry
 * (checkRequestHeader). A body element named `…Response` says nothing.
 * A request is signed by its client, a response by the service's provider (MESS_11).
 */
import { XrdError } from '../platform/errors.ts';
import type { ClientId } from './identifiers.ts';
import { parseRestRequestPart, parseRestResponsePart } from './rest-message.ts';
import { parseSoapHeader } from './soap-message.ts';

export interface MessageHeader {
  readonly kind: 'soap' | 'rest';
  readonly isResponse: boolean;
  readonly client: ClientId;
  /** The service's provider subsystem (or member). */
  readonly serviceProvider: ClientId;
  readonly serviceCode: string;
  readonly queryId: string;
}

/** The member whose signature a message must carry. */
export const signerOf = (h: MessageHeader): ClientId => (h.isResponse ? h.serviceProvider : h.client);

/**
 * @throws the readers' codes (InvalidSoap, MissingHeaderField, DuplicateHeaderField,
 *   InvalidClientIdentifier, InvalidMessage, …) wrapped in InvalidMessage naming `/message.xml`
 */
export function readMessageHeader(message: Buffer): MessageHeader {
  try {
    return read(message);
  } catch (err) {
    if (!(err instanceof XrdError)) throw err;
    throw new XrdError('InvalidMessage', { reason: `/message.xml: ${err.fullCode}: ${err.message}` }, { cause: err });
  }
}

function read(message: Buffer): MessageHeader {
  if (/^\s*</.test(message.subarray(0, 64).toString('latin1'))) {
    const h = parseSoapHeader(message);
    return { kind: 'soap', isResponse: h.requestHash !== undefined, client: h.client, serviceProvider: h.service.provider, serviceCode: h.service.serviceCode, queryId: h.id };
  }
  if (/^[1-9]/.test(message.subarray(0, 1).toString('latin1'))) {
    const r = parseRestResponsePart(message);
    if (!r.client || !r.service) throw new XrdError('MissingHeaderField', { field: r.client ? 'X-Road-Service' : 'X-Road-Client' });
    return { kind: 'rest', isResponse: true, client: r.client, serviceProvider: r.service.provider, serviceCode: r.service.serviceCode, queryId: r.queryId };
  }
  const r = parseRestRequestPart(message);
  return { kind: 'rest', isResponse: false, client: r.client, serviceProvider: r.service.provider, serviceCode: r.service.serviceCode, queryId: r.queryId };
}
