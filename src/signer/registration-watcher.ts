/**
 * MEMBER_01 step 6 on the security server's side: an authentication certificate whose registration
 * request was sent ('registration in progress') becomes 'registered' once global configuration lists
 * its hash for a security server. The signer does it because it owns the certificate states and
 * already reads global configuration; the reference does the same in its configuration checker.
 * Only that forward step is taken: other states are the administrator's to change.
 */
import type { GlobalConf } from '../globalconf/global-conf.ts';
import type { Logger } from '../platform/logger.ts';
import { registeredServer } from '../trust/auth-cert.ts';
import { formatSecurityServerId } from '../protocol/identifiers.ts';
import type { AuditLog } from './audit-log.ts';
import type { KeyconfStore } from './keyconf-store.ts';

/** Marks listed certificates registered; returns their hashes. Reads configuration only when one is waiting. */
export function updateRegistrationStates(store: KeyconfStore, conf: () => GlobalConf, audit: AuditLog, log: Logger): string[] {
  const waiting = store.allCerts().filter((c) => c.status === 'registration in progress');
  if (waiting.length === 0) return [];
  const current = conf();
  const registered: string[] = [];
  for (const cert of waiting) {
    const server = registeredServer(current, cert.der);
    if (!server) continue;
    store.updateCert(cert.hash, { status: 'registered' });
    // Audited like the administrator's setCertStatus: the state changed without anyone asking here.
    audit.record('setCertStatus', { hash: cert.hash, status: 'registered', by: 'global configuration' }, {});
    log.info({ certHash: cert.hash, serverId: formatSecurityServerId(server.serverId) }, 'authentication certificate registered in global configuration');
    registered.push(cert.hash);
  }
  return registered;
}

/** Runs `updateRegistrationStates` every `intervalMs` (global configuration is re-read when it changed). */
export function watchRegistrations(store: KeyconfStore, conf: () => GlobalConf, audit: AuditLog, log: Logger, onRegistered: () => void, intervalMs = 2000): { stop(): void } {
  const timer = setInterval(() => {
    try {
      if (updateRegistrationStates(store, conf, audit, log).length > 0) onRegistered();
    } catch (err) {
      // No or broken configuration yet: the next round tries again; the OCSP refresher reports it too.
      log.debug({ err }, 'registration states not checked');
    }
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
