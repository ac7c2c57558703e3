/**
 * What the client proxy answers an information system when a request fails: a SOAP fault for SOAP
 * (HTTP 200, text/xml, `SOAPAction: ""`, as the reference answers), the REST error JSON with `X-Road-Error` for REST (protocol/faults.ts has
 * the reference's exact forms). Each fault carries a fresh error id that is also logged.
 */
import { XrdError, toXrdError, type FaultPrefix } from '../../platform/errors.ts';
import type { Logger } from '../../platform/logger.ts';
import { TEXT_XML_UTF8, faultOfError, restError, soapFault, type FaultCodeStyle, type SoapFault } from '../../protocol/faults.ts';

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

export function soapFaultReply(f: SoapFault): Reply {
  return { status: 200, headers: { 'content-type': TEXT_XML_UTF8, soapaction: '""' }, body: 'xml' in f && Buffer.isBuffer(f.xml) ? f.xml : soapFault(f.faultCode, f.faultString, f.detail, f.faultActor) };
}

export function restErrorReply(fault: SoapFault, accept?: string): Reply {
  return restError(fault, accept);
}

/**
 * The fault a failed exchange is reported as: errors that already name the component that raised
 * them keep it, the rest are this proxy's. One log line carries the fault code and the error id the
 * caller sees in `faultDetail`; internal errors are logged with their stack.
 */
export function faultFor(err: unknown, prefix: FaultPrefix, logger: Logger, queryId: string | undefined, style: FaultCodeStyle): SoapFault {
  const e = toXrdError(err);
  const reported = err instanceof XrdError && err.prefix !== 'Signer' ? e : e.withPrefix(prefix);
  const fault = faultOfError(reported, undefined, style);
  const internal = reported.code === 'InternalError';
  logger[internal ? 'error' : 'info']({ err: internal ? err : undefined, faultCode: fault.faultCode, errorId: fault.detail, queryId }, 'request failed');
  return fault;
}
