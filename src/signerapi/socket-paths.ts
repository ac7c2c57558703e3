/**
 * Where the signer's two sockets are when nobody names them, for the daemon and its clients alike:
 * the administration socket in the data folder, the proxies' socket beside it. Loads no PKCS#11 code.
 */
import { dirname, join } from 'node:path';

/** The administration socket (every operation) in a signer data folder. */
export function defaultAdminSocket(signerDataDir: string): string {
  return join(signerDataDir, 'signer.sock');
}

/** The proxies' socket (PROXY_OPERATIONS only): beside the administration socket. */
export function defaultProxySocket(adminSocketPath: string): string {
  return join(dirname(adminSocketPath), 'signer-proxy.sock');
}
