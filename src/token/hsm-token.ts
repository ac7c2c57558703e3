/**
 * One PKCS#11 token: its login state, a bounded session pool, key lookup by CKA_ID, key generation
 * and signing. Every PKCS#11 failure is translated here, once, into a coded XrdError and a state
 * change (unavailable, logged out, stale handle), so the token recovers on the next request after a
 * lost session or a removed and returned device, without restarting the daemon.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Deadline } from '../platform/deadline.ts';
import { XrdError, type ErrorCode } from '../platform/errors.ts';
import type { Logger } from '../platform/logger.ts';
import type { ModuleConfig } from './module-config.ts';
import { ck, ckrName, ckrOf, type Attribute, type Handle, type Mechanism, type Pkcs11Port, type RsaPSS, type TokenInfo } from './pkcs11-port.ts';
import { capabilitiesOf, keySpecName, readMechanisms, whyKeyUnsupported, whySignUnsupported, type Mechanisms, type TokenCapabilities } from './mechanisms.ts';
import { formatPkcs11Uri } from './pkcs11-uri.ts';
import { CURVES, curveFromParams, ecPointFromAttribute, ecSpki, partsFromSpki, rsaSpki, type CurveInfo, type EcCurve } from './public-keys.ts';
import { SessionPool } from './session-pool.ts';
import { CKG_MGF1, CKM, digestInfo, ecdsaDerToRaw, ecdsaRawToDer, type KeyAlgorithm, type SignAlgorithm } from '../signerapi/algorithms.ts';
import { USER_SESSION_STATES, classifyFailure, statusAfterLoginFailure, statusFromLoginFailure, statusFromTokenFlags, type TokenStatus } from './token-status.ts';

export type KeySpec = { algorithm: 'RSA'; bits: 2048 | 3072 | 4096 } | { algorithm: 'EC'; curve: EcCurve };

export interface TokenKey {
  readonly keyId: string;
  readonly label: string;
  readonly algorithm: KeyAlgorithm;
  /** RSA modulus bits or EC curve name. */
  readonly size: string;
  readonly publicKey?: Buffer;
  readonly hasPrivateKey: boolean;
  readonly sensitive?: boolean;
  readonly extractable?: boolean;
}

export interface TokenDescriptor {
  readonly tokenId: string;
  readonly moduleType: string;
  readonly label: string;
  readonly serialNumber: string;
  readonly manufacturer: string;
  readonly model: string;
  readonly available: boolean;
  readonly active: boolean;
  readonly status: TokenStatus;
  readonly readOnly: boolean;
  readonly batchSigningEnabled: boolean;
  readonly signVerifyPin: boolean;
  readonly minPinLength: number;
  readonly maxPinLength: number;
  readonly uri: string;
}

/** Where the token currently sits; found again by token id after a removal. */
export interface SlotLocation {
  readonly slot: Handle;
  readonly slotIndex: number;
  readonly info: TokenInfo;
}

export interface HsmTokenOptions {
  readonly sessionPoolSize: number;
  readonly maxWaiting: number;
}

interface KeyHandle {
  readonly handle: Handle;
  readonly algorithm: KeyAlgorithm;
  /** Bytes of the signature buffer to allocate. */
  readonly signatureLength: number;
  /** RSA modulus or EC field bits, as mechanism infos count key sizes. */
  readonly bits: number;
  readonly curve?: CurveInfo;
}

const PSS_HASH = { sha256: CKM.SHA256, sha384: CKM.SHA384, sha512: CKM.SHA512 } as const;

/** An operation survives this many lost sessions or handles before the caller sees the error. */
const MAX_ATTEMPTS = 3;

/** Return values of C_SignInit that mean "not this mechanism with this key", not a broken token. */
const SIGN_MECHANISM_REFUSED = new Set<number>([ck.CKR_MECHANISM_INVALID, ck.CKR_MECHANISM_PARAM_INVALID, ck.CKR_KEY_SIZE_RANGE, ck.CKR_KEY_TYPE_INCONSISTENT, ck.CKR_KEY_FUNCTION_NOT_PERMITTED]);
/** Return values of C_GenerateKeyPair that mean "not this key type or size". */
const KEY_TYPE_REFUSED = new Set<number>([ck.CKR_MECHANISM_INVALID, ck.CKR_KEY_SIZE_RANGE, ck.CKR_DOMAIN_PARAMS_INVALID, 0x140 /* CKR_CURVE_NOT_SUPPORTED, not exported by pkcs11js */]);

/** Token states at which only an administrator may try a PIN: one more wrong try locks the token, or it is locked. */
const NO_UNATTENDED_LOGIN: ReadonlySet<TokenStatus> = new Set(['USER_PIN_FINAL_TRY', 'USER_PIN_LOCKED']);

/** CK_ULONG values from this far up are CK_UNAVAILABLE_INFORMATION (pkcs11js reads ulongs as 32 bits). */
const UNAVAILABLE_INFORMATION = 0x80000000;

/** Attribute names accepted in devices.ini `*_key_attribute_*` overrides. */
const OVERRIDABLE_ATTRIBUTES: Record<string, number> = {
  token: ck.CKA_TOKEN,
  private: ck.CKA_PRIVATE,
  modifiable: ck.CKA_MODIFIABLE,
  sensitive: ck.CKA_SENSITIVE,
  extractable: ck.CKA_EXTRACTABLE,
  sign: ck.CKA_SIGN,
  sign_recover: ck.CKA_SIGN_RECOVER,
  verify: ck.CKA_VERIFY,
  verify_recover: ck.CKA_VERIFY_RECOVER,
  decrypt: ck.CKA_DECRYPT,
  encrypt: ck.CKA_ENCRYPT,
  wrap: ck.CKA_WRAP,
  unwrap: ck.CKA_UNWRAP,
  derive: ck.CKA_DERIVE,
  trusted: ck.CKA_TRUSTED,
  wrap_with_trusted: ck.CKA_WRAP_WITH_TRUSTED,
};

export class HsmToken {
  private location: SlotLocation | undefined;
  private loginSession: Handle | undefined;
  /** Held only in the daemon's memory, so the token can be logged in again after it returns. */
  private pin: Buffer | undefined;
  private loggedIn = false;
  /** CKR of the last login that failed over the PIN, until a login succeeds or the PIN is dropped. */
  private loginFailure: number | undefined;
  private readonly keys = new Map<string, KeyHandle>();
  /** The token's mechanisms, read once per slot it sits in. */
  private mechanismsRead: { readonly slot: Handle; readonly mechanisms: Mechanisms } | undefined;
  private readonly pool: SessionPool<Handle>;

  constructor(
    readonly tokenId: string,
    readonly config: ModuleConfig,
    private readonly port: Pkcs11Port,
    location: SlotLocation,
    private readonly locate: () => SlotLocation | undefined,
    private readonly log: Logger,
    options: HsmTokenOptions,
  ) {
    this.location = location;
    this.pool = new SessionPool<Handle>({
      // A token that needs the PIN around every signature can only serve one signature at a time.
      size: config.signVerifyPin ? 1 : sessionPoolBound(options.sessionPoolSize, location.info),
      maxWaiting: options.maxWaiting,
      tokenId,
      open: () => this.openSession(),
      close: (s) => this.port.C_CloseSession(s),
    });
  }

  // ---- state ----------------------------------------------------------------------------------

  describe(): TokenDescriptor {
    const info = this.location?.info;
    const flags = info?.flags ?? 0;
    const status: TokenStatus = !info ? 'NOT_AVAILABLE' : this.loginFailure !== undefined ? statusAfterLoginFailure(flags, this.loginFailure) : statusFromTokenFlags(flags);
    return {
      tokenId: this.tokenId,
      moduleType: this.config.type,
      label: paddedText(info?.label),
      serialNumber: paddedText(info?.serialNumber),
      manufacturer: paddedText(info?.manufacturerID),
      model: paddedText(info?.model),
      available: info !== undefined,
      active: this.loggedIn,
      status,
      readOnly: this.config.readOnly || (flags & ck.CKF_WRITE_PROTECTED) !== 0,
      batchSigningEnabled: this.config.batchSigningEnabled,
      signVerifyPin: this.config.signVerifyPin,
      minPinLength: info?.minPinLen ?? 0,
      maxPinLength: info?.maxPinLen ?? 0,
      uri: formatPkcs11Uri({ token: paddedText(info?.label), serial: paddedText(info?.serialNumber) }),
    };
  }

  get available(): boolean {
    return this.location !== undefined;
  }

  get active(): boolean {
    return this.loggedIn;
  }

  /**
   * The signature algorithms and key types the token's mechanisms support.
   * @throws TokenNotAvailable, HSMNonOperational
   */
  capabilities(): TokenCapabilities {
    this.requireAvailable();
    return capabilitiesOf(this.mechanisms());
  }

  /** @throws TokenNotAvailable, HSMNonOperational */
  private mechanisms(): Mechanisms {
    const location = this.location;
    if (!location) throw new XrdError('TokenNotAvailable', { tokenId: this.tokenId, reason: 'token not present' });
    if (this.mechanismsRead?.slot.equals(location.slot)) return this.mechanismsRead.mechanisms;
    try {
      this.mechanismsRead = { slot: location.slot, mechanisms: readMechanisms(this.port, location.slot) };
    } catch (err) {
      throw this.translate(err, 'HSMNonOperational', {});
    }
    return this.mechanismsRead.mechanisms;
  }

  /** Called by the manager after a slot scan: the token is present at `location`, or gone. */
  updateLocation(location: SlotLocation | undefined): void {
    const wasAvailable = this.location !== undefined;
    const moved = location && this.location && !location.slot.equals(this.location.slot);
    if (!location || moved) this.markGone(moved ? 'moved to another slot' : 'not present');
    this.location = location;
    if (location && !wasAvailable) this.log.info({ tokenId: this.tokenId }, 'token available');
  }

  // ---- login ----------------------------------------------------------------------------------

  /** @throws PinIncorrect, PinFinalTry, PinLocked, PinInvalid, LoginFailed, TokenNotAvailable, TokenNotInitialized */
  login(pin: string): void {
    this.requireAvailable();
    if (this.describe().status === 'NOT_INITIALIZED') throw new XrdError('TokenNotInitialized', { tokenId: this.tokenId });
    const given = Buffer.from(pin, 'utf8');
    this.checkPinLength(given);
    if (this.loggedIn) {
      // PKCS#11 answers CKR_USER_ALREADY_LOGGED_IN to any PIN while we are logged in, so a PIN
      // other than the one in use is checked by logging out and in again.
      if (this.pin && this.pin.length === given.length && timingSafeEqual(this.pin, given)) return;
      this.logout();
    }
    this.loginWith(given);
  }

  logout(): void {
    this.pin?.fill(0);
    this.pin = undefined;
    this.loggedIn = false;
    this.loginFailure = undefined;
    this.keys.clear();
    if (this.loginSession) {
      try {
        this.port.C_Logout(this.loginSession);
      } catch (err) {
        // Logging out a token that is gone or already logged out leaves the state we want.
        this.log.debug({ tokenId: this.tokenId, ckr: ckrName(ckrOf(err)) }, 'logout failed; token already logged out');
      }
    }
  }

  /** @throws PinIncorrect, PinFinalTry, PinLocked, PinInvalid, TokenNotAvailable, TokenReadOnly */
  changePin(oldPin: string, newPin: string): void {
    this.requireAvailable();
    this.checkPinLength(Buffer.from(oldPin, 'utf8'));
    this.checkPinLength(Buffer.from(newPin, 'utf8'));
    const session = this.openSession();
    try {
      this.port.C_SetPIN(session, oldPin, newPin);
    } catch (err) {
      // A wrong old PIN counts as a wrong try on tokens that count them.
      this.refreshInfo();
      throw this.pinError(err) ?? this.translate(err, 'LoginFailed', {});
    } finally {
      this.closeQuietly(session);
    }
    if (this.pin) {
      this.pin.fill(0);
      this.pin = Buffer.from(newPin, 'utf8');
    }
  }

  private loginWith(pin: Buffer): void {
    this.closeLoginSession();
    const session = this.openSession();
    try {
      this.port.C_Login(session, ck.CKU_USER, pin.toString('utf8'));
    } catch (err) {
      const ckr = ckrOf(err);
      if (ckr === ck.CKR_USER_ALREADY_LOGGED_IN) {
        // Login state is per process: something else in this one logged the token in (another
        // devices.ini section on the library, or tokens that share one login), so a new PIN
        // was not checked.
        if (pin !== this.pin) this.log.warn({ tokenId: this.tokenId }, 'token was already logged in by this process; PIN not checked');
      } else {
        this.closeQuietly(session);
        this.loggedIn = false;
        this.refreshInfo();
        const pinError = this.pinError(err);
        if (pinError) {
          this.loginFailure = ckr;
          // A held PIN that stopped working (changed elsewhere) must not be retried on every
          // request until the token locks: forget it, the administrator logs in again.
          if (pin === this.pin) this.pin = undefined;
          pin.fill(0);
          throw pinError;
        }
        // A PIN the token never judged is not kept either: wiped unless it is the one held.
        if (pin !== this.pin) pin.fill(0);
        throw this.translate(err, 'LoginFailed', {});
      }
    }
    // The session is kept open for the life of the login: closing a token's last session logs it out.
    this.loginSession = session;
    this.loggedIn = true;
    this.loginFailure = undefined;
    this.refreshInfo();
    if (this.pin !== pin) this.pin?.fill(0);
    this.pin = pin;
    this.log.info({ tokenId: this.tokenId }, 'token logged in');
  }

  /**
   * PinIncorrect, PinFinalTry, PinLocked or PinInvalid for a failure that is about the PIN, else
   * undefined. A wrong PIN is told by what it left behind in the token's (freshly read) flags: the
   * try that locks a token is PinLocked, the one before PinFinalTry.
   */
  private pinError(err: unknown): XrdError | undefined {
    const ckr = ckrOf(err);
    if (!statusFromLoginFailure(ckr)) return undefined;
    const status = statusAfterLoginFailure(this.location?.info.flags ?? ck.CKF_TOKEN_INITIALIZED, ckr);
    let code: ErrorCode;
    if (ckr === ck.CKR_PIN_LOCKED || status === 'USER_PIN_LOCKED') code = 'PinLocked';
    else if (ckr !== ck.CKR_PIN_INCORRECT) code = 'PinInvalid';
    else code = status === 'USER_PIN_FINAL_TRY' ? 'PinFinalTry' : 'PinIncorrect';
    return new XrdError(code, { tokenId: this.tokenId, status, reason: ckrName(ckr) }, { cause: err });
  }

  /**
   * Refuses a PIN of a length the token says it does not take, before the token sees it: some
   * tokens (opencryptoki) count such a PIN as a wrong try. The buffer is wiped when refused.
   * @throws PinInvalid
   */
  private checkPinLength(pin: Buffer): void {
    const problem = this.location && pinLengthProblem(this.location.info, pin.length);
    if (!problem) return;
    pin.fill(0);
    throw new XrdError('PinInvalid', { tokenId: this.tokenId, reason: problem });
  }

  /**
   * Checks that the daemon may log in on its own with the PIN it holds (after the token returned,
   * a lost login, or around a signature with sign_verify_pin): not when one more wrong try would
   * lock the token, since the held PIN may have been changed elsewhere. An administrator's login
   * may spend the final try; the daemon never does.
   * @throws TokenNotActive
   */
  private requireUnattendedLoginAllowed(): void {
    this.refreshInfo();
    const status = statusFromTokenFlags(this.location?.info.flags ?? 0);
    if (!NO_UNATTENDED_LOGIN.has(status)) return;
    this.log.warn({ tokenId: this.tokenId, status }, 'token not logged in again automatically; an administrator must log in');
    throw new XrdError('TokenNotActive', { tokenId: this.tokenId, status, reason: `status ${status}: only an administrator's login may try the PIN` });
  }

  /** Re-reads CK_TOKEN_INFO: PIN counters and flags change with every login attempt. */
  private refreshInfo(): void {
    if (!this.location) return;
    try {
      this.location = { ...this.location, info: this.port.C_GetTokenInfo(this.location.slot) };
    } catch (err) {
      this.translate(err, 'HSMNonOperational', {});
    }
  }

  private closeLoginSession(): void {
    if (this.loginSession) this.closeQuietly(this.loginSession);
    this.loginSession = undefined;
  }

  /**
   * Makes a token that went away usable again: finds its slot by token id, opens fresh sessions and
   * logs in with the PIN it still holds.
   * @throws TokenNotAvailable, TokenNotActive
   */
  private ensureReady(needLogin: boolean): void {
    if (!this.location) {
      const location = this.locate();
      if (!location) throw new XrdError('TokenNotAvailable', { tokenId: this.tokenId, reason: 'token not present' });
      this.location = location;
      this.log.info({ tokenId: this.tokenId }, 'token returned');
    }
    if (needLogin && !this.loggedIn) {
      if (!this.pin) throw new XrdError('TokenNotActive', { tokenId: this.tokenId });
      this.requireUnattendedLoginAllowed();
      this.loginWith(this.pin);
    }
  }

  private requireAvailable(): void {
    this.ensureReady(false);
  }

  // ---- keys -----------------------------------------------------------------------------------

  /**
   * Generates a key pair on the token: sensitive, never extractable, CKA_ID = 20 random bytes.
   * @throws TokenNotActive, TokenReadOnly, TokenNotAvailable, UnsupportedKeyAlgorithm, HSMNonOperational
   */
  async generateKey(spec: KeySpec, label?: string): Promise<TokenKey> {
    this.ensureReady(true);
    if (this.describe().readOnly) throw new XrdError('TokenReadOnly', { tokenId: this.tokenId });
    const keyAlgorithm = keySpecName(spec);
    const unsupported = whyKeyUnsupported(this.mechanisms(), spec);
    if (unsupported) throw new XrdError('UnsupportedKeyAlgorithm', { tokenId: this.tokenId, keyAlgorithm, reason: unsupported });
    const id = randomBytes(20);
    const keyId = id.toString('hex').toUpperCase();
    const name = label ?? keyId;
    const common: Attribute[] = [
      { type: ck.CKA_TOKEN, value: true },
      { type: ck.CKA_ID, value: id },
      { type: ck.CKA_LABEL, value: name },
    ];
    const publicTemplate: Attribute[] = [...common, { type: ck.CKA_VERIFY, value: true }, { type: ck.CKA_ENCRYPT, value: false }, { type: ck.CKA_WRAP, value: false }];
    const privateTemplate: Attribute[] = [
      ...common,
      { type: ck.CKA_PRIVATE, value: true },
      { type: ck.CKA_SENSITIVE, value: true },
      { type: ck.CKA_EXTRACTABLE, value: false },
      { type: ck.CKA_SIGN, value: true },
      { type: ck.CKA_DECRYPT, value: false },
      { type: ck.CKA_UNWRAP, value: false },
      { type: ck.CKA_DERIVE, value: false },
    ];
    let mechanism: Mechanism;
    if (spec.algorithm === 'RSA') {
      mechanism = { mechanism: ck.CKM_RSA_PKCS_KEY_PAIR_GEN };
      publicTemplate.push({ type: ck.CKA_MODULUS_BITS, value: spec.bits }, { type: ck.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) });
    } else {
      mechanism = { mechanism: ck.CKM_EC_KEY_PAIR_GEN };
      publicTemplate.push({ type: ck.CKA_EC_PARAMS, value: CURVES[spec.curve].params });
    }
    applyOverrides(publicTemplate, this.config.publicKeyAttributes, this.log);
    applyOverrides(privateTemplate, this.config.privateKeyAttributes, this.log);

    // Asynchronous: an RSA-4096 key takes seconds, which the event loop must not wait out.
    await this.withSession(
      undefined,
      async (session) => {
        try {
          return await this.port.C_GenerateKeyPairAsync(session, mechanism, publicTemplate, privateTemplate);
        } catch (err) {
          // The mechanism list said yes and the token still refused this type or size.
          const ckr = ckrOf(err);
          if (ckr !== undefined && KEY_TYPE_REFUSED.has(ckr)) throw new XrdError('UnsupportedKeyAlgorithm', { tokenId: this.tokenId, keyAlgorithm, reason: ckrName(ckr) }, { cause: err });
          throw err;
        }
      },
      'HSMNonOperational',
    );
    this.log.info({ tokenId: this.tokenId, keyId, spec }, 'key pair generated');
    const key = await this.findKey(keyId);
    if (!key) throw new XrdError('InternalError', { reason: `generated key ${keyId} cannot be found on the token` });
    return key;
  }

  /** Keys on the token (private keys when logged in, public keys always), merged by CKA_ID. */
  async listKeys(): Promise<TokenKey[]> {
    return this.withRecovery(undefined, false, 'HSMNonOperational', (session) => {
      const byId = new Map<string, { priv?: Handle; pub?: Handle }>();
      for (const [cls, slot] of [
        [ck.CKO_PRIVATE_KEY, 'priv'],
        [ck.CKO_PUBLIC_KEY, 'pub'],
      ] as const) {
        for (const handle of this.findObjects(session, [{ type: ck.CKA_CLASS, value: cls }])) {
          const [idAttr] = this.port.C_GetAttributeValue(session, handle, [{ type: ck.CKA_ID }]);
          const keyId = (idAttr?.value as Buffer | undefined)?.toString('hex').toUpperCase();
          if (!keyId) continue;
          const entry = byId.get(keyId) ?? {};
          entry[slot] = handle;
          byId.set(keyId, entry);
        }
      }
      return [...byId].map(([keyId, h]) => this.describeKey(session, keyId, h.priv, h.pub));
    });
  }

  /** @throws KeyNotFound (no key or several with that CKA_ID) */
  async getKey(keyId: string): Promise<TokenKey> {
    const key = await this.findKey(keyId);
    if (!key) throw new XrdError('KeyNotFound', { keyId });
    return key;
  }

  private async findKey(keyId: string): Promise<TokenKey | undefined> {
    return this.withRecovery(undefined, false, 'HSMNonOperational', (session) => {
      const id = keyIdBytes(keyId);
      const priv = this.findUnique(session, ck.CKO_PRIVATE_KEY, id, keyId);
      const pub = this.findUnique(session, ck.CKO_PUBLIC_KEY, id, keyId);
      if (!priv && !pub) return undefined;
      return this.describeKey(session, keyId, priv, pub);
    });
  }

  /** @throws KeyNotFound, TokenNotActive, TokenReadOnly */
  async deleteKey(keyId: string): Promise<void> {
    this.ensureReady(true);
    if (this.describe().readOnly) throw new XrdError('TokenReadOnly', { tokenId: this.tokenId });
    await this.withSession(keyId, (session) => {
      const id = keyIdBytes(keyId);
      const objects = this.findObjects(session, [{ type: ck.CKA_ID, value: id }]);
      if (objects.length === 0) throw new XrdError('KeyNotFound', { keyId });
      for (const handle of objects) this.port.C_DestroyObject(session, handle);
    }, 'HSMNonOperational');
    this.keys.delete(keyId);
    this.log.info({ tokenId: this.tokenId, keyId }, 'key deleted');
  }

  private describeKey(session: Handle, keyId: string, priv: Handle | undefined, pub: Handle | undefined): TokenKey {
    const attrs = (handle: Handle, types: number[]): Map<number, Buffer> =>
      new Map(this.port.C_GetAttributeValue(session, handle, types.map((type) => ({ type }))).map((a) => [a.type, a.value as Buffer]));
    const any = (priv ?? pub)!;
    const base = attrs(any, [ck.CKA_LABEL, ck.CKA_KEY_TYPE]);
    const keyType = base.get(ck.CKA_KEY_TYPE)!.readUInt32LE(0);
    const algorithm: KeyAlgorithm = keyType === ck.CKK_RSA ? 'RSA' : 'EC';
    let publicKey: Buffer | undefined;
    let size = '';
    if (pub) {
      if (algorithm === 'RSA') {
        const a = attrs(pub, [ck.CKA_MODULUS, ck.CKA_PUBLIC_EXPONENT]);
        const modulus = a.get(ck.CKA_MODULUS)!;
        publicKey = rsaSpki(modulus, a.get(ck.CKA_PUBLIC_EXPONENT)!);
        size = String(modulus.length * 8);
      } else {
        const a = attrs(pub, [ck.CKA_EC_PARAMS, ck.CKA_EC_POINT]);
        const curve = curveFromParams(a.get(ck.CKA_EC_PARAMS)!);
        if (curve) {
          publicKey = ecSpki(curve, ecPointFromAttribute(a.get(ck.CKA_EC_POINT)!, curve));
          size = curve.name;
        }
      }
    }
    let sensitive: boolean | undefined;
    let extractable: boolean | undefined;
    if (priv) {
      const a = attrs(priv, [ck.CKA_SENSITIVE, ck.CKA_EXTRACTABLE]);
      sensitive = a.get(ck.CKA_SENSITIVE)?.[0] === 1;
      extractable = a.get(ck.CKA_EXTRACTABLE)?.[0] === 1;
    }
    return {
      keyId,
      label: base.get(ck.CKA_LABEL)?.toString('utf8') ?? '',
      algorithm,
      size,
      publicKey,
      hasPrivateKey: priv !== undefined,
      sensitive,
      extractable,
    };
  }

  // ---- signing --------------------------------------------------------------------------------

  /**
   * Signs a digest with the private key `keyId`. ECDSA signatures come back as DER unless `raw`.
   * @throws KeyNotFound, TokenNotActive, TokenNotAvailable, UnsupportedSignAlgorithm, CannotSign, Busy, RequestTimeout
   */
  async sign(keyId: string, algorithm: SignAlgorithm, digest: Buffer, options: { raw?: boolean; deadline?: Deadline } = {}): Promise<Buffer> {
    const signature = await this.withRecovery(keyId, true, 'CannotSign', async (session) => {
      // Logged in first: private keys are not found, and their handles not valid, while logged out.
      if (this.config.signVerifyPin) this.loginForSignature(session);
      try {
        const key = this.keyHandle(session, keyId);
        if (key.algorithm !== algorithm.keyAlgorithm) {
          throw new XrdError('UnsupportedSignAlgorithm', { algorithm: algorithm.id, keyId, tokenId: this.tokenId, reason: `the key is ${key.algorithm}` });
        }
        const unsupported = whySignUnsupported(this.mechanisms(), algorithm, key.bits);
        if (unsupported) throw new XrdError('UnsupportedSignAlgorithm', { algorithm: algorithm.id, keyId, tokenId: this.tokenId, reason: unsupported });
        const { mechanism, data } = signInput(algorithm, digest);
        try {
          return await this.port.sign(session, mechanism, key.handle, data, key.signatureLength, `${this.tokenId}/${keyId}/${mechanism.mechanism}`);
        } catch (err) {
          // Mechanism lists do not say which hashes RSA-PSS takes: the token's refusal says it.
          const ckr = ckrOf(err);
          if (ckr !== undefined && SIGN_MECHANISM_REFUSED.has(ckr)) throw new XrdError('UnsupportedSignAlgorithm', { algorithm: algorithm.id, keyId, tokenId: this.tokenId, reason: ckrName(ckr) }, { cause: err });
          throw err;
        }
      } finally {
        if (this.config.signVerifyPin) this.logoutAfterSignature(session);
      }
    }, options.deadline);
    return algorithm.padding === 'ECDSA' && !options.raw ? ecdsaRawToDer(signature) : signature;
  }

  /**
   * Verifies a signature over a digest with the token's public key `keyId`, or with `publicKey`
   * (SPKI DER) loaded as a session object when given.
   * @throws KeyNotFound, TokenNotAvailable, UnsupportedSignAlgorithm
   */
  async verify(keyId: string | undefined, publicKey: Buffer | undefined, algorithm: SignAlgorithm, digest: Buffer, signature: Buffer): Promise<boolean> {
    return this.withRecovery(keyId, false, 'CannotSign', (session) => {
      let handle: Handle;
      let temporary = false;
      let curve: CurveInfo | undefined;
      if (publicKey) {
        const parts = partsFromSpki(publicKey);
        if (parts.algorithm !== algorithm.keyAlgorithm) throw new XrdError('UnsupportedSignAlgorithm', { algorithm: algorithm.id, keyId: keyId ?? 'certificate' });
        const template: Attribute[] = [
          { type: ck.CKA_CLASS, value: ck.CKO_PUBLIC_KEY },
          { type: ck.CKA_TOKEN, value: false },
          { type: ck.CKA_VERIFY, value: true },
        ];
        if (parts.algorithm === 'RSA') {
          template.push({ type: ck.CKA_KEY_TYPE, value: ck.CKK_RSA }, { type: ck.CKA_MODULUS, value: parts.modulus }, { type: ck.CKA_PUBLIC_EXPONENT, value: parts.publicExponent });
        } else {
          curve = parts.curve;
          template.push({ type: ck.CKA_KEY_TYPE, value: ck.CKK_EC }, { type: ck.CKA_EC_PARAMS, value: parts.curve.params }, { type: ck.CKA_EC_POINT, value: derOctetString(parts.point) });
        }
        handle = this.port.C_CreateObject(session, template);
        temporary = true;
      } else {
        const found = this.findUnique(session, ck.CKO_PUBLIC_KEY, keyIdBytes(keyId!), keyId!);
        if (!found) throw new XrdError('KeyNotFound', { keyId });
        const key = this.describeKey(session, keyId!, undefined, found);
        if (key.algorithm !== algorithm.keyAlgorithm) throw new XrdError('UnsupportedSignAlgorithm', { algorithm: algorithm.id, keyId });
        if (key.algorithm === 'EC') curve = CURVES[key.size as EcCurve];
        handle = found;
      }
      try {
        let sig = signature;
        if (algorithm.padding === 'ECDSA' && curve && signature[0] === 0x30 && signature.length !== 2 * curve.coordinateLength) {
          sig = ecdsaDerToRaw(signature, curve.coordinateLength);
        }
        const { mechanism, data } = signInput(algorithm, digest);
        this.port.C_VerifyInit(session, mechanism, handle);
        try {
          return this.port.C_Verify(session, data, sig);
        } catch (err) {
          const ckr = ckrOf(err);
          if (ckr === ck.CKR_SIGNATURE_INVALID || ckr === ck.CKR_SIGNATURE_LEN_RANGE) return false;
          throw err;
        }
      } finally {
        if (temporary) this.port.C_DestroyObject(session, handle);
      }
    });
  }

  /**
   * sign_verify_pin: logs in with the held PIN before a signature (the reference's
   * pinVerificationPerSigningLogin). A PIN that no longer works is dropped at once, so signatures
   * that follow cost the token no more tries.
   * @throws TokenNotActive, PinIncorrect, PinFinalTry, PinLocked, PinInvalid
   */
  private loginForSignature(session: Handle): void {
    if (!this.pin) throw new XrdError('TokenNotActive', { tokenId: this.tokenId });
    this.requireUnattendedLoginAllowed();
    try {
      this.port.C_Login(session, ck.CKU_USER, this.pin.toString('utf8'));
    } catch (err) {
      const ckr = ckrOf(err);
      if (ckr === ck.CKR_USER_ALREADY_LOGGED_IN) return;
      this.refreshInfo();
      const pinError = this.pinError(err);
      if (!pinError) throw err;
      this.loginFailure = ckr;
      this.loggedIn = false;
      this.pin.fill(0);
      this.pin = undefined;
      this.keys.clear();
      throw pinError;
    }
  }

  private logoutAfterSignature(session: Handle): void {
    try {
      this.port.C_Logout(session);
    } catch (err) {
      // Already logged out (the login failed, or another signature's logout came first): the state we want.
      this.log.debug({ tokenId: this.tokenId, ckr: ckrName(ckrOf(err)) }, 'logout after signature failed; token already logged out');
    }
    // Handles of private keys are not valid across a logout on every token.
    this.keys.clear();
  }

  private keyHandle(session: Handle, keyId: string): KeyHandle {
    const cached = this.keys.get(keyId);
    if (cached) return cached;
    const handle = this.findUnique(session, ck.CKO_PRIVATE_KEY, keyIdBytes(keyId), keyId);
    if (!handle) throw new XrdError('KeyNotFound', { keyId });
    const a = new Map(
      this.port.C_GetAttributeValue(session, handle, [{ type: ck.CKA_KEY_TYPE }]).map((x) => [x.type, x.value as Buffer]),
    );
    const keyType = a.get(ck.CKA_KEY_TYPE)!.readUInt32LE(0);
    let key: KeyHandle;
    if (keyType === ck.CKK_RSA) {
      const [modulus] = this.port.C_GetAttributeValue(session, handle, [{ type: ck.CKA_MODULUS }]);
      // Sensitive RSA keys still show their modulus; fall back to the largest size we generate.
      const length = (modulus?.value as Buffer | undefined)?.length || 512;
      key = { handle, algorithm: 'RSA', signatureLength: length, bits: length * 8 };
    } else if (keyType === ck.CKK_EC) {
      const [params] = this.port.C_GetAttributeValue(session, handle, [{ type: ck.CKA_EC_PARAMS }]);
      const curve = curveFromParams(params!.value as Buffer);
      key = { handle, algorithm: 'EC', signatureLength: curve ? 2 * curve.coordinateLength : 132, bits: curve ? curve.coordinateLength * 8 : 521, curve };
    } else {
      throw new XrdError('KeyNotAvailable', { keyId, reason: `unsupported key type ${keyType}` });
    }
    this.keys.set(keyId, key);
    return key;
  }

  // ---- sessions and failure handling ----------------------------------------------------------

  private openSession(): Handle {
    const location = this.location;
    if (!location) throw new XrdError('TokenNotAvailable', { tokenId: this.tokenId, reason: 'token not present' });
    const flags = ck.CKF_SERIAL_SESSION | (this.config.readOnly ? 0 : ck.CKF_RW_SESSION);
    try {
      return this.port.C_OpenSession(location.slot, flags);
    } catch (err) {
      throw this.translate(err, 'HSMNonOperational', {});
    }
  }

  private closeQuietly(session: Handle): void {
    try {
      this.port.C_CloseSession(session);
    } catch {
      // Closing a session of a removed token fails; the handle is dead either way.
    }
  }

  /** Runs `fn` on a pooled session; PKCS#11 failures become coded errors and state changes. */
  private async withSession<T>(keyId: string | undefined, fn: (session: Handle) => T | Promise<T>, fallback: ErrorCode, deadline?: Deadline): Promise<T> {
    const session = await this.pool.acquire(deadline);
    try {
      const result = await fn(session);
      this.pool.release(session);
      return result;
    } catch (err) {
      if (err instanceof XrdError && ckrOf(err.cause) === undefined) {
        this.pool.release(session);
        throw err;
      }
      // The session may hold an unfinished operation or be dead; a fresh one is cheap.
      this.pool.discard(session);
      throw this.translate(err, fallback, { keyId });
    }
  }

  /**
   * Runs an operation that may safely run again (a signature, a lookup) on a pooled session, retrying
   * when the failure only cost us a session, a handle or the login: the token still has the keys,
   * and the caller should not see our housekeeping. SoftHSM, for one, invalidates handles while
   * another thread writes a new object.
   */
  private async withRecovery<T>(
    keyId: string | undefined,
    needLogin: boolean,
    fallback: ErrorCode,
    fn: (session: Handle) => T | Promise<T>,
    deadline?: Deadline,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      this.ensureReady(needLogin);
      try {
        return await this.withSession(
          keyId,
          (session) => {
            // Another request may have found the login lost while this one waited for a session.
            this.ensureReady(needLogin);
            return fn(session);
          },
          fallback,
          deadline,
        );
      } catch (err) {
        const kind = err instanceof XrdError ? (err.details.failure as string | undefined) : undefined;
        const recoverable = kind === 'session-lost' || kind === 'handle-stale' || (kind === 'logged-out' && this.pin !== undefined);
        if (recoverable && attempt < MAX_ATTEMPTS) continue;
        throw err;
      }
    }
  }

  /** The single translation of PKCS#11 failures into coded errors and token state. */
  private translate(err: unknown, fallback: ErrorCode, details: { keyId?: string }): XrdError {
    if (err instanceof XrdError) return err;
    const ckr = ckrOf(err);
    const failure = classifyFailure(ckr);
    const reason = ckrName(ckr) === 'unknown' ? (err as Error).message : ckrName(ckr);
    switch (failure) {
      case 'token-gone':
        this.markGone(reason);
        return new XrdError('TokenNotAvailable', { tokenId: this.tokenId, reason, failure }, { cause: err });
      case 'session-lost':
      case 'handle-stale':
        this.keys.clear();
        this.recheckLogin();
        return failure === 'session-lost'
          ? new XrdError('TokenNotAvailable', { tokenId: this.tokenId, reason, failure }, { cause: err })
          : new XrdError('KeyNotAvailable', { keyId: details.keyId ?? '', reason, failure }, { cause: err });
      case 'logged-out':
        this.loggedIn = false;
        this.keys.clear();
        return new XrdError('TokenNotActive', { tokenId: this.tokenId, reason, failure }, { cause: err });
      default:
        return new XrdError(fallback, { tokenId: this.tokenId, keyId: details.keyId, module: this.config.type, reason }, { cause: err });
    }
  }

  /**
   * After a lost session or a stale handle, asks the token whether our login survived. A device reset
   * closes every session, and the login with them: then all pooled sessions are dead too.
   */
  private recheckLogin(): void {
    let state: number | undefined;
    try {
      if (this.loginSession) state = this.port.C_GetSessionInfo(this.loginSession).state;
    } catch {
      state = undefined;
    }
    if (state !== undefined && USER_SESSION_STATES.has(state)) return;
    if (this.loggedIn) this.log.warn({ tokenId: this.tokenId }, 'token sessions and login lost; reopening');
    this.loggedIn = false;
    this.loginSession = undefined;
    this.pool.reset();
  }

  /** The device went away: every session and handle is dead; keep the PIN for when it returns. */
  private markGone(reason: string): void {
    if (this.location) this.log.warn({ tokenId: this.tokenId, reason }, 'token lost');
    this.location = undefined;
    this.loggedIn = false;
    this.loginSession = undefined;
    this.keys.clear();
    this.pool.reset();
    this.pool.failWaiters(new XrdError('TokenNotAvailable', { tokenId: this.tokenId, reason }));
  }

  private findObjects(session: Handle, template: Attribute[]): Handle[] {
    this.port.C_FindObjectsInit(session, template);
    try {
      return this.port.C_FindObjects(session, 1000);
    } finally {
      this.port.C_FindObjectsFinal(session);
    }
  }

  /** Zero matches → undefined; several → an error, never a guess. */
  private findUnique(session: Handle, cls: number, id: Buffer, keyId: string): Handle | undefined {
    const found = this.findObjects(session, [
      { type: ck.CKA_CLASS, value: cls },
      { type: ck.CKA_ID, value: id },
    ]);
    if (found.length > 1) throw new XrdError('KeyNotAvailable', { keyId, reason: `${found.length} objects share this CKA_ID` });
    return found[0];
  }

  /** Logs out and releases the sessions; used when the daemon stops. */
  close(): void {
    // Logging out explicitly: a session still busy (a key generation past its deadline) would
    // otherwise keep the token logged in for whatever else this process loads next.
    this.logout();
    this.closeLoginSession();
    this.pool.reset();
  }
}

/**
 * Operation sessions for one token: the configured pool, but below the token's own limit on
 * read/write sessions (one of which holds the login), when it states one.
 */
export function sessionPoolBound(configured: number, info: TokenInfo): number {
  const limit = info.maxRwSessionCount;
  if (limit === 0 /* CK_EFFECTIVELY_INFINITE */ || limit >= UNAVAILABLE_INFORMATION) return configured;
  return Math.max(1, Math.min(configured, limit - 1));
}

/** Why a PIN of `byteLength` bytes is outside the lengths the token states it takes, or undefined. */
export function pinLengthProblem(info: TokenInfo, byteLength: number): string | undefined {
  if (info.maxPinLen === 0 || info.maxPinLen >= UNAVAILABLE_INFORMATION) return undefined;
  if (byteLength >= info.minPinLen && byteLength <= info.maxPinLen) return undefined;
  return `the token takes PINs of ${info.minPinLen} to ${info.maxPinLen} bytes, not ${byteLength}`;
}

/** CK_TOKEN_INFO strings are fixed-width, blank- (or, from some writers, NUL-) padded. */
export function paddedText(value: string | undefined): string {
  return (value ?? '').replace(/[\s\0]+$/, '');
}

export function keyIdBytes(keyId: string): Buffer {
  if (!/^([0-9A-Fa-f]{2})+$/.test(keyId)) throw new XrdError('KeyNotFound', { keyId });
  return Buffer.from(keyId, 'hex');
}

function signInput(algorithm: SignAlgorithm, digest: Buffer): { mechanism: Mechanism; data: Buffer } {
  switch (algorithm.padding) {
    case 'PKCS1':
      return { mechanism: { mechanism: algorithm.mechanism }, data: digestInfo(algorithm.digest, digest) };
    case 'PSS':
      return {
        mechanism: { mechanism: algorithm.mechanism, parameter: { type: ck.CK_PARAMS_RSA_PSS, hashAlg: PSS_HASH[algorithm.digest], mgf: CKG_MGF1[algorithm.digest], saltLen: algorithm.digestLength } as RsaPSS },
        data: digest,
      };
    case 'ECDSA':
      return { mechanism: { mechanism: algorithm.mechanism }, data: digest };
  }
}

function derOctetString(value: Buffer): Buffer {
  const len = value.length < 0x80 ? Buffer.from([value.length]) : Buffer.from([0x81, value.length]);
  return Buffer.concat([Buffer.from([0x04]), len, value]);
}

/** Applies devices.ini overrides, except any that would let a private key leave the token. */
function applyOverrides(template: Attribute[], overrides: Readonly<Record<string, boolean>>, log: Logger): void {
  for (const [name, value] of Object.entries(overrides)) {
    const type = OVERRIDABLE_ATTRIBUTES[name];
    if (type === undefined) {
      log.warn({ attribute: name }, 'unknown key attribute override ignored');
      continue;
    }
    if ((name === 'extractable' && value) || (name === 'sensitive' && !value)) {
      log.warn({ attribute: name, value }, 'override would make private keys exportable; ignored');
      continue;
    }
    const existing = template.find((a) => a.type === type);
    if (existing) existing.value = value;
    else template.push({ type, value });
  }
}
