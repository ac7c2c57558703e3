/** Errors in what the information system sent are the client's (`Client.…`). */
import type { IncomingHttpHeaders } from 'node:http';
import { toXrdError } from '../../platform/errors.ts';

export function clientError<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw toXrdError(err).withPrefix('Client');
  }
}

export async function clientErrorAsync<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw toXrdError(err).withPrefix('Client');
  }
}

/** One header's value, repeated ones joined as Node joins them. */
export const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
};
