/**
 * All configured PKCS#11 modules and the tokens they hold. Tokens are known by token id (built from
 * module type, serial and label per `token_id_format`), never by slot index; a module that fails to
 * load or scan is logged and left out without touching the others.
 */
import { availableParallelism } from 'node:os';
import { XrdError } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import { HsmToken, paddedText, pinLengthProblem, type HsmTokenOptions, type SlotLocation } from './hsm-token.ts';
import { formatTokenId, type ModuleConfig } from './module-config.ts';
import { ck, ckrName, ckrOf, loadPkcs11Module, type Pkcs11Port } from './pkcs11-port.ts';
import { parsePkcs11Uri } from './pkcs11-uri.ts';

export interface ModuleState {
  readonly config: ModuleConfig;
  port?: Pkcs11Port;
  error?: string;
}

export type ModuleLoader = (config: ModuleConfig) => Pkcs11Port;

const defaultLoader: ModuleLoader = (config) =>
  loadPkcs11Module(config.library, { osLockingOk: config.osLockingOk, cantCreateThreads: config.libraryCantCreateOsThreads, signThreads: signThreadCount() });

/**
 * One signing thread per core (XRD_SIGN_THREADS overrides, e.g. more for a network HSM whose calls
 * mostly wait): with SoftHSM, more threads than cores took CPU from the event loop and tripled its
 * delay under load in npm run bench:signer, for no more signatures.
 */
function signThreadCount(): number {
  const configured = Number(process.env.XRD_SIGN_THREADS);
  return Number.isInteger(configured) && configured > 0 ? configured : availableParallelism();
}

export const DEFAULT_TOKEN_OPTIONS: HsmTokenOptions = { sessionPoolSize: 64, maxWaiting: 4096 };

export class TokenManager {
  private readonly tokens = new Map<string, HsmToken>();

  private constructor(
    readonly modules: readonly ModuleState[],
    private readonly log: Logger,
    private readonly options: HsmTokenOptions,
  ) {}

  static open(configs: readonly ModuleConfig[], log: Logger, options = DEFAULT_TOKEN_OPTIONS, loader = defaultLoader): TokenManager {
    const modules: ModuleState[] = configs
      .filter((c) => c.enabled)
      .map((config) => {
        try {
          return { config, port: loader(config) };
        } catch (err) {
          const error = (err as Error).message;
          log.error({ module: config.type, library: config.library, error }, 'PKCS#11 module failed to load; skipped');
          return { config, error };
        }
      });
    const manager = new TokenManager(modules, log, options);
    manager.refresh();
    return manager;
  }

  /** Scans every module's slots and updates which tokens are present. */
  refresh(): void {
    const seen = new Set<string>();
    for (const module of this.modules) {
      if (!module.port) continue;
      for (const [tokenId, location] of this.scan(module)) {
        seen.add(tokenId);
        const existing = this.tokens.get(tokenId);
        if (existing) existing.updateLocation(location);
        else this.tokens.set(tokenId, new HsmToken(tokenId, module.config, module.port, location, () => this.locate(module, tokenId), this.log, this.options));
      }
    }
    for (const [tokenId, token] of this.tokens) {
      if (seen.has(tokenId)) continue;
      // An empty slot that got initialised is now a token of its own; the blank entry has no keys to keep.
      if (tokenId.includes('-uninitialized-')) this.tokens.delete(tokenId);
      else token.updateLocation(undefined);
    }
  }

  list(): HsmToken[] {
    this.refresh();
    return [...this.tokens.values()];
  }

  /** @throws TokenNotFound */
  get(tokenId: string): HsmToken {
    let token = this.tokens.get(tokenId);
    if (!token) {
      this.refresh();
      token = this.tokens.get(tokenId);
    }
    if (!token) throw new XrdError('TokenNotFound', { tokenId });
    return token;
  }

  /**
   * Finds a token by token id, label, serial number or `pkcs11:` URI; exactly one must match.
   * @throws TokenNotFound, InvalidIdentifier
   */
  resolve(ref: string): HsmToken {
    const direct = this.tokens.get(ref);
    if (direct) return direct;
    let match: (t: HsmToken) => boolean;
    if (ref.startsWith('pkcs11:')) {
      const uri = parsePkcs11Uri(ref);
      match = (t) => {
        const d = t.describe();
        return (uri.token === undefined || uri.token === d.label) && (uri.serial === undefined || uri.serial === d.serialNumber);
      };
    } else {
      match = (t) => {
        const d = t.describe();
        return d.label === ref || d.serialNumber === ref;
      };
    }
    const found = this.list().filter(match);
    if (found.length === 1) return found[0]!;
    if (found.length > 1) throw new XrdError('InvalidIdentifier', { value: ref, reason: `matches ${found.length} tokens; use the token id` });
    throw new XrdError('TokenNotFound', { tokenId: ref });
  }

  /**
   * Initialises an empty SoftHSM-style slot: C_InitToken with the SO PIN, then sets the user PIN.
   * @returns the new token's id
   * @throws TokenNotFound when no module has an uninitialised slot, PinInvalid, HSMNonOperational
   */
  initToken(label: string, soPin: string, userPin: string, moduleType?: string): string {
    if (Buffer.byteLength(label) > 32) throw new XrdError('InvalidIdentifier', { value: label, reason: 'a token label holds at most 32 bytes' });
    for (const module of this.modules) {
      if (!module.port || (moduleType && module.config.type !== moduleType)) continue;
      const port = module.port;
      const free = port.C_GetSlotList(true).find((slot) => !(port.C_GetTokenInfo(slot).flags & ck.CKF_TOKEN_INITIALIZED));
      if (!free) continue;
      // Refused here rather than by the token, which may count a wrong-length SO PIN as a wrong try.
      const info = port.C_GetTokenInfo(free);
      for (const pin of [soPin, userPin]) {
        const problem = pinLengthProblem(info, Buffer.byteLength(pin));
        if (problem) throw new XrdError('PinInvalid', { module: module.config.type, tokenId: label, reason: problem });
      }
      // Tokens refuse C_InitToken while sessions are open on them (opencryptoki: CKR_SESSION_EXISTS),
      // and the blank slot's entry may hold some from an earlier lookup.
      const blankId = blankSlotTokenId(module.config.type, free);
      this.tokens.get(blankId)?.close();
      this.tokens.delete(blankId);
      try {
        // Labels are blank-padded to 32 bytes (pkcs11js would pad with NULs, which tokens then show).
        port.C_InitToken(free, soPin, label + ' '.repeat(32 - Buffer.byteLength(label)));
        // SoftHSM moves an initialised token to a new slot; find it by label among fresh slots.
        const slot = port.C_GetSlotList(true).find((s) => {
          const info = port.C_GetTokenInfo(s);
          return info.flags & ck.CKF_TOKEN_INITIALIZED && paddedText(info.label) === label && !(info.flags & ck.CKF_USER_PIN_INITIALIZED);
        });
        if (!slot) throw new XrdError('TokenNotAvailable', { tokenId: label, reason: 'the initialised token was not found again among the slots' });
        const session = port.C_OpenSession(slot, ck.CKF_SERIAL_SESSION | ck.CKF_RW_SESSION);
        try {
          port.C_Login(session, ck.CKU_SO, soPin);
          port.C_InitPIN(session, userPin);
          port.C_Logout(session);
        } finally {
          port.C_CloseSession(session);
        }
      } catch (err) {
        const ckr = ckrOf(err);
        const code = ckr === ck.CKR_PIN_LEN_RANGE || ckr === ck.CKR_PIN_INVALID ? 'PinInvalid' : 'HSMNonOperational';
        throw new XrdError(code, { module: module.config.type, tokenId: label, reason: ckr === undefined ? (err as Error).message : ckrName(ckr) }, { cause: err });
      }
      this.refresh();
      const created = [...this.tokens.values()].find((t) => t.config === module.config && t.describe().label === label && t.available);
      if (!created) throw new XrdError('InternalError', { reason: `token "${label}" not visible after initialisation` });
      this.log.info({ tokenId: created.tokenId, module: module.config.type }, 'token initialised');
      return created.tokenId;
    }
    throw new XrdError('TokenNotFound', { tokenId: moduleType ? `${moduleType}: uninitialised slot` : 'uninitialised slot' });
  }

  close(): void {
    for (const token of this.tokens.values()) token.close();
  }

  private locate(module: ModuleState, tokenId: string): SlotLocation | undefined {
    return this.scan(module).get(tokenId);
  }

  private scan(module: ModuleState): Map<string, SlotLocation> {
    const found = new Map<string, SlotLocation>();
    const port = module.port!;
    const config = module.config;
    try {
      port.C_GetSlotList(true).forEach((slot, slotIndex) => {
        if (config.slotIds.length > 0 && !config.slotIds.includes(slotNumber(slot))) return;
        const info = port.C_GetTokenInfo(slot);
        const tokenId =
          info.flags & ck.CKF_TOKEN_INITIALIZED
            ? formatTokenId(config.tokenIdFormat, { moduleType: config.type, slotIndex, serialNumber: paddedText(info.serialNumber), label: paddedText(info.label) })
            : blankSlotTokenId(config.type, slot);
        found.set(tokenId, { slot, slotIndex, info });
      });
      module.error = undefined;
    } catch (err) {
      const error = ckrName(ckrOf(err)) === 'unknown' ? (err as Error).message : ckrName(ckrOf(err));
      if (module.error !== error) this.log.error({ module: config.type, error }, 'PKCS#11 module failed to list tokens');
      module.error = error;
    }
    return found;
  }
}

/** The id of an empty slot's entry: it has no serial or label yet. */
function blankSlotTokenId(moduleType: string, slot: Buffer): string {
  return `${moduleType}-uninitialized-${slotNumber(slot)}`;
}

/** CK_SLOT_ID as a number (pkcs11js hands slots over as native-endian CK_ULONG buffers). */
export function slotNumber(slot: Buffer): number {
  return slot.length >= 8 ? Number(slot.readBigUInt64LE(0)) : slot.readUInt32LE(0);
}
