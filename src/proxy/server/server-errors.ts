/**
 * How the server proxy reports what goes wrong, as the reference does: a failure to read the
 * request — the message itself, the security server it names, the provider, the caller's
 * certificate — and everything about the service's answer under ServiceFailed
 * (`Server.ServerProxy.ServiceFailed.InvalidSoap`); missing parts, access and signature checks not.
 */
import { toXrdError, type XrdError } from '../../platform/errors.ts';

/** Codes the reference reports after reading the request (checkRequest), not as a failure to read it. */
const NOT_READ_FAILURES = new Set(['MissingSoap', 'MissingRest', 'MissingSignature', 'MessageTooLarge', 'ClientProxyVersionNotSupported']);

/** A failure to read the request, as the reference reports it (e.g. ServiceFailed.InvalidSoap). */
export function readFailure(err: unknown): XrdError {
  const e = toXrdError(err);
  return (NOT_READ_FAILURES.has(e.code) ? e : e.within('ServiceFailed')).withPrefix('Server.ServerProxy');
}

export function failedReading<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw readFailure(err);
  }
}

export const serviceFailed = (err: unknown): XrdError => toXrdError(err).within('ServiceFailed').withPrefix('Server.ServerProxy');

/** Runs a step about the service's answer; what goes wrong is ServiceFailed. */
export function serviceFailure<T>(step: () => T): T {
  try {
    const result = step();
    return (result instanceof Promise ? result.catch((err: unknown) => Promise.reject(serviceFailed(err))) : result) as T;
  } catch (err) {
    throw serviceFailed(err);
  }
}
