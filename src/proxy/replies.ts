/**
 * What the client proxy answers an information system when a request fails: a SOAP fault for SOAP
 * (HTTP 200, text/xml, `SOAPAction: ""`, as the reference answers), the REST error JSON with `X-Road-Error` for REST (protocol/faults.ts has
 * the reference's exact forms). Each fault carries a fresh error id that is also logged.
 */
import type { XrdError } from '../platform/errors.ts';
import { TEXT_XML_UTF8, faultOfError, restError, soapFault, type SoapFault } from '../protocol/faults.ts';

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

export function soapFaultReply(fault: XrdError | SoapFault): Reply {
  const f = 'faultString' in fault ? fault : faultOfError(fault);
  return { status: 200, headers: { 'content-type': TEXT_XML_UTF8, soapaction: '""' }, body: 'xml' in f && Buffer.isBuffer(f.xml) ? f.xml : soapFault(f.faultCode, f.faultString, f.detail, f.faultActor) };
}

export function restErrorReply(fault: XrdError | SoapFault, accept?: string): Reply {
  return restError('faultString' in fault ? fault : faultOfError(fault), accept);
}
