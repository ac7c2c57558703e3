/**
 * PKCS#11 module configuration in X-Road's devices.ini format: one `[section]` per library, the
 * section name being the module type used in token ids. A section that cannot be understood is
 * reported and skipped; the others still load.
 */
import { readFileSync } from 'node:fs';
import { XrdError } from '../platform/errors.ts';

export type RsaSignMechanism = 'CKM_RSA_PKCS' | 'CKM_RSA_PKCS_PSS';

export interface ModuleConfig {
  /** Section name; `{moduleType}` in token ids. */
  readonly type: string;
  readonly library: string;
  readonly enabled: boolean;
  /** Only these slots are used when non-empty. */
  readonly slotIds: readonly number[];
  readonly osLockingOk: boolean;
  readonly libraryCantCreateOsThreads: boolean;
  /** Log in around every signature (smart cards that forget the login). */
  readonly signVerifyPin: boolean;
  readonly batchSigningEnabled: boolean;
  readonly readOnly: boolean;
  readonly tokenIdFormat: string;
  readonly rsaSignMechanism: RsaSignMechanism;
  readonly ecSignMechanism: 'CKM_ECDSA';
  /** Overrides for key-pair templates, attribute name (e.g. `sensitive`) → value. */
  readonly publicKeyAttributes: Readonly<Record<string, boolean>>;
  readonly privateKeyAttributes: Readonly<Record<string, boolean>>;
}

export interface ModuleConfigProblem {
  readonly section: string;
  readonly reason: string;
}

/**
 * The reference's default is `{moduleType}{slotIndex}{serialNumber}{label}`; slot indexes move when
 * tokens are added or removed, so our default leaves them out (as the reference advises for HA).
 */
export const DEFAULT_TOKEN_ID_FORMAT = '{moduleType}-{serialNumber}-{label}';

const KNOWN_KEYS = new Set([
  'library',
  'enabled',
  'slot_ids',
  'os_locking_ok',
  'library_cant_create_os_threads',
  'sign_verify_pin',
  'batch_signing_enabled',
  'read_only',
  'token_id_format',
  'sign_mechanism',
  'rsa_sign_mechanism',
  'ec_sign_mechanism',
]);

export function readModuleConfigFile(path: string): { modules: ModuleConfig[]; problems: ModuleConfigProblem[] } {
  return parseModuleConfig(readFileSync(path, 'utf8'));
}

export function parseModuleConfig(text: string): { modules: ModuleConfig[]; problems: ModuleConfigProblem[] } {
  const sections = new Map<string, Map<string, string>>();
  const problems: ModuleConfigProblem[] = [];
  let current: Map<string, string> | undefined;
  let currentName = '';
  for (const [index, rawLine] of text.split(/\r?\n/).entries()) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      currentName = header[1]!.trim();
      if (sections.has(currentName)) problems.push({ section: currentName, reason: 'duplicate section, later one used' });
      current = new Map();
      sections.set(currentName, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || eq < 0) {
      problems.push({ section: currentName || '(none)', reason: `line ${index + 1} is not "key = value" inside a section` });
      continue;
    }
    current.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  }

  const modules: ModuleConfig[] = [];
  for (const [name, values] of sections) {
    try {
      modules.push(toModuleConfig(name, values));
    } catch (err) {
      problems.push({ section: name, reason: err instanceof XrdError ? String(err.details.reason) : (err as Error).message });
    }
  }
  return { modules, problems };
}

function toModuleConfig(type: string, v: Map<string, string>): ModuleConfig {
  if (!/^[A-Za-z0-9_.-]+$/.test(type)) throw new XrdError('InvalidConfiguration', { reason: 'section name may only hold letters, digits, "_", "." and "-"' });
  const library = v.get('library');
  if (!library) throw new XrdError('InvalidConfiguration', { reason: '"library" is required' });
  for (const key of v.keys()) {
    if (!KNOWN_KEYS.has(key) && !key.startsWith('pub_key_attribute_') && !key.startsWith('priv_key_attribute_')) {
      throw new XrdError('InvalidConfiguration', { reason: `unknown key "${key}"` });
    }
  }
  const bool = (key: string, fallback: boolean): boolean => {
    const value = v.get(key);
    if (value === undefined) return fallback;
    if (/^(true|yes|1)$/i.test(value)) return true;
    if (/^(false|no|0)$/i.test(value)) return false;
    throw new XrdError('InvalidConfiguration', { reason: `"${key}" must be true or false, not "${value}"` });
  };
  const rsaSignMechanism = v.get('rsa_sign_mechanism') ?? v.get('sign_mechanism') ?? 'CKM_RSA_PKCS';
  if (rsaSignMechanism !== 'CKM_RSA_PKCS' && rsaSignMechanism !== 'CKM_RSA_PKCS_PSS') {
    throw new XrdError('InvalidConfiguration', { reason: `rsa_sign_mechanism must be CKM_RSA_PKCS or CKM_RSA_PKCS_PSS, not "${rsaSignMechanism}"` });
  }
  const ecSignMechanism = v.get('ec_sign_mechanism') ?? 'CKM_ECDSA';
  if (ecSignMechanism !== 'CKM_ECDSA') throw new XrdError('InvalidConfiguration', { reason: `ec_sign_mechanism must be CKM_ECDSA, not "${ecSignMechanism}"` });
  const slotIds = (v.get('slot_ids') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const n = Number(s);
      if (!Number.isSafeInteger(n) || n < 0) throw new XrdError('InvalidConfiguration', { reason: `slot_ids entry "${s}" is not a slot number` });
      return n;
    });
  const attributes = (prefix: string): Record<string, boolean> => {
    const out: Record<string, boolean> = {};
    for (const key of v.keys()) if (key.startsWith(prefix)) out[key.slice(prefix.length)] = bool(key, false);
    return out;
  };
  return {
    type,
    library,
    enabled: bool('enabled', true),
    slotIds,
    osLockingOk: bool('os_locking_ok', true),
    libraryCantCreateOsThreads: bool('library_cant_create_os_threads', false),
    signVerifyPin: bool('sign_verify_pin', false),
    batchSigningEnabled: bool('batch_signing_enabled', true),
    readOnly: bool('read_only', false),
    tokenIdFormat: v.get('token_id_format') ?? DEFAULT_TOKEN_ID_FORMAT,
    rsaSignMechanism,
    ecSignMechanism,
    publicKeyAttributes: attributes('pub_key_attribute_'),
    privateKeyAttributes: attributes('priv_key_attribute_'),
  };
}

export function formatTokenId(
  format: string,
  parts: { moduleType: string; slotIndex: number; serialNumber: string; label: string },
): string {
  return format
    .replaceAll('{moduleType}', parts.moduleType)
    .replaceAll('{slotIndex}', String(parts.slotIndex))
    .replaceAll('{serialNumber}', parts.serialNumber)
    .replaceAll('{label}', parts.label);
}
