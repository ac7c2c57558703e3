/**
 * Whether the server still needs the initialisation wizard (GET /initialization/status): the router
 * sends every page there until it is done. Once initialised, a server stays so: the answer is kept
 * and the status is not asked again.
 */
import { initializationStatus, type InitializationStatus } from './calls/keys.ts';

let initialised = false;
/** Until when an unreadable status is not asked again: every page would otherwise ask it once more. */
let unreadableUntil = 0;
const UNREADABLE_RETRY_MS = 30_000;

/**
 * Owner, server code or token missing. An anchor missing on a server initialised otherwise (the
 * configuration folder lost) is not a reason to run the wizard again: the anchor is uploaded on
 * Settings → System parameters, and the pages say what fails meanwhile.
 */
export function needsInitialisation(s: InitializationStatus): boolean {
  return !s.serverCodeInitialized || !s.serverOwnerInitialized || s.softwareTokenInitStatus === 'NOT_INITIALIZED';
}

/** True when the wizard must run first; false when done or when the status cannot be read (the pages say why then). */
export async function initialisationPending(): Promise<boolean> {
  if (initialised || Date.now() < unreadableUntil) return false;
  const status = await initializationStatus().catch(() => undefined);
  if (!status) {
    unreadableUntil = Date.now() + UNREADABLE_RETRY_MS;
    return false;
  }
  initialised = !needsInitialisation(status);
  return !initialised;
}

/** The wizard finished: stop asking. */
export function markInitialised(): void {
  initialised = true;
}
