/** The last step of MEMBER_01 in the tests: the new server's owner calls ss1's getRandom through ss3. */
import { getRandomRequest } from '../../src/dev/localinstance/first-calls.ts';
import type { LocalInstance } from '../../src/dev/localinstance/local-instance.ts';
import { eventually } from './eventually.ts';

/**
 * getRandom as member 4444 (ss3's owner) over ss3's client proxy, retried until an answer with data
 * comes back: ss3 first needs its new certificate's OCSP response. Returns the answer's text.
 */
export function getRandomThroughJoining(instance: LocalInstance, id: string): Promise<string> {
  return eventually(
    async () => {
      const res = await fetch(`${instance.joining.httpUrl}/`, { method: 'POST', headers: { 'content-type': 'text/xml' }, body: getRandomRequest(instance, '4444', id) });
      const text = await res.text();
      return res.status === 200 && /data>\d+</.test(text) ? text : undefined;
    },
    30_000,
    'a getRandom answer through ss3 and ss1',
  );
}
