/**
 * The signer's key configuration (X-Road's keyconf): what the token itself cannot hold about keys
 * (usage, friendly names), certificates with their chains, states and active flags, and CSRs. One
 * SQLite file in WAL mode; every change is one transaction. (OCSP responses live in the trust
 * layer's cache.)
 */
import Database from 'better-sqlite3';
import type { KeyUsage } from '../certificates/csr.ts';
import { restrictDatabaseFiles } from '../platform/files.ts';
import type { CertStatus } from '../signerapi/cert-states.ts';


export interface KeyRecord {
  keyId: string;
  tokenId: string;
  usage: KeyUsage | null;
  friendlyName: string | null;
  algorithm: string;
  size: string;
  createdAt: string;
}

export interface CertRecord {
  hash: string;
  sha1: string;
  keyId: string;
  memberId: string | null;
  status: CertStatus;
  active: boolean;
  der: Buffer;
  chain: Buffer[];
  subject: string;
  issuer: string;
  notAfter: string;
  importedAt: string;
}

export interface CsrRecord {
  csrId: string;
  keyId: string;
  usage: KeyUsage;
  memberId: string | null;
  subject: string;
  der: Buffer;
  createdAt: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tokens (
  token_id TEXT PRIMARY KEY,
  friendly_name TEXT
);
CREATE TABLE IF NOT EXISTS keys (
  key_id TEXT PRIMARY KEY,
  token_id TEXT NOT NULL,
  usage TEXT CHECK (usage IN ('SIGNING', 'AUTHENTICATION')),
  friendly_name TEXT,
  algorithm TEXT NOT NULL,
  size TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS certs (
  hash TEXT PRIMARY KEY,
  sha1 TEXT NOT NULL UNIQUE,
  key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
  member_id TEXT,
  status TEXT NOT NULL,
  active INTEGER NOT NULL,
  der BLOB NOT NULL,
  chain TEXT NOT NULL,
  subject TEXT NOT NULL,
  issuer TEXT NOT NULL,
  not_after TEXT NOT NULL,
  imported_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS certs_by_key ON certs(key_id);
CREATE INDEX IF NOT EXISTS certs_by_member ON certs(member_id);
CREATE TABLE IF NOT EXISTS csrs (
  csr_id TEXT PRIMARY KEY,
  key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
  usage TEXT NOT NULL,
  member_id TEXT,
  subject TEXT NOT NULL,
  der BLOB NOT NULL,
  created_at TEXT NOT NULL
);
`;

interface CertRow {
  hash: string;
  sha1: string;
  key_id: string;
  member_id: string | null;
  status: CertStatus;
  active: number;
  der: Buffer;
  chain: string;
  subject: string;
  issuer: string;
  not_after: string;
  imported_at: string;
}

const toCert = (r: CertRow): CertRecord => ({
  hash: r.hash,
  sha1: r.sha1,
  keyId: r.key_id,
  memberId: r.member_id,
  status: r.status,
  active: r.active === 1,
  der: r.der,
  chain: (JSON.parse(r.chain) as string[]).map((c) => Buffer.from(c, 'base64')),
  subject: r.subject,
  issuer: r.issuer,
  notAfter: r.not_after,
  importedAt: r.imported_at,
});

export class KeyconfStore {
  private readonly db: Database.Database;
  private readonly keyById: Database.Statement<[string], KeyRecord>;

  constructor(path: string) {
    // Key and certificate metadata is nobody else's business (the data folder is 0700 as well).
    restrictDatabaseFiles(path, { create: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    // Admin changes are rare and must survive a power cut: pay for a full sync.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    this.keyById = this.db.prepare(
      'SELECT key_id AS keyId, token_id AS tokenId, usage, friendly_name AS friendlyName, algorithm, size, created_at AS createdAt FROM keys WHERE key_id = ?',
    );
  }

  close(): void {
    this.db.close();
  }

  tokenFriendlyName(tokenId: string): string | undefined {
    const row = this.db.prepare('SELECT friendly_name FROM tokens WHERE token_id = ?').get(tokenId) as { friendly_name: string } | undefined;
    return row?.friendly_name ?? undefined;
  }

  setTokenFriendlyName(tokenId: string, name: string): void {
    this.db.prepare('INSERT INTO tokens (token_id, friendly_name) VALUES (?, ?) ON CONFLICT(token_id) DO UPDATE SET friendly_name = excluded.friendly_name').run(tokenId, name);
  }

  getKey(keyId: string): KeyRecord | undefined {
    return this.keyById.get(keyId);
  }

  keysOfToken(tokenId: string): KeyRecord[] {
    return this.db
      .prepare('SELECT key_id AS keyId, token_id AS tokenId, usage, friendly_name AS friendlyName, algorithm, size, created_at AS createdAt FROM keys WHERE token_id = ? ORDER BY created_at')
      .all(tokenId) as KeyRecord[];
  }

  /** Adds a key, or updates the token and description of one that is known already. */
  saveKey(k: Omit<KeyRecord, 'createdAt'> & { createdAt?: string }): void {
    this.db
      .prepare(
        `INSERT INTO keys (key_id, token_id, usage, friendly_name, algorithm, size, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(key_id) DO UPDATE SET token_id = excluded.token_id, usage = COALESCE(excluded.usage, keys.usage),
           friendly_name = COALESCE(excluded.friendly_name, keys.friendly_name), algorithm = excluded.algorithm, size = excluded.size`,
      )
      .run(k.keyId, k.tokenId, k.usage, k.friendlyName, k.algorithm, k.size, k.createdAt ?? new Date().toISOString());
  }

  deleteKey(keyId: string): void {
    this.db.prepare('DELETE FROM keys WHERE key_id = ?').run(keyId);
  }

  certsOfKey(keyId: string): CertRecord[] {
    return (this.db.prepare('SELECT * FROM certs WHERE key_id = ? ORDER BY imported_at').all(keyId) as CertRow[]).map(toCert);
  }

  allCerts(): CertRecord[] {
    return (this.db.prepare('SELECT * FROM certs ORDER BY imported_at').all() as CertRow[]).map(toCert);
  }

  getCert(hash: string): CertRecord | undefined {
    const row = this.db.prepare('SELECT * FROM certs WHERE hash = ? OR sha1 = ?').get(hash.toUpperCase(), hash.toLowerCase()) as CertRow | undefined;
    return row && toCert(row);
  }

  /** Imports a certificate; on the same transaction the key learns its usage and its CSRs go. */
  importCert(c: CertRecord, usage: KeyUsage): void {
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO certs (hash, sha1, key_id, member_id, status, active, der, chain, subject, issuer, not_after, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(c.hash, c.sha1, c.keyId, c.memberId, c.status, c.active ? 1 : 0, c.der, JSON.stringify(c.chain.map((b) => b.toString('base64'))), c.subject, c.issuer, c.notAfter, c.importedAt);
      this.db.prepare('UPDATE keys SET usage = ? WHERE key_id = ?').run(usage, c.keyId);
      this.db.prepare('DELETE FROM csrs WHERE key_id = ? AND usage = ?').run(c.keyId, usage);
    })();
  }

  updateCert(hash: string, change: { status?: CertStatus; active?: boolean }): boolean {
    const result = this.db
      .prepare('UPDATE certs SET status = COALESCE(?, status), active = COALESCE(?, active) WHERE hash = ?')
      .run(change.status ?? null, change.active === undefined ? null : change.active ? 1 : 0, hash);
    return result.changes === 1;
  }

  deleteCert(hash: string): boolean {
    return this.db.prepare('DELETE FROM certs WHERE hash = ?').run(hash).changes === 1;
  }

  saveCsr(c: CsrRecord): void {
    this.db
      .prepare('INSERT INTO csrs (csr_id, key_id, usage, member_id, subject, der, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(c.csrId, c.keyId, c.usage, c.memberId, c.subject, c.der, c.createdAt);
  }

  csrsOfKey(keyId: string): CsrRecord[] {
    return this.db
      .prepare('SELECT csr_id AS csrId, key_id AS keyId, usage, member_id AS memberId, subject, der, created_at AS createdAt FROM csrs WHERE key_id = ? ORDER BY created_at')
      .all(keyId) as CsrRecord[];
  }

  getCsr(csrId: string): CsrRecord | undefined {
    return this.db
      .prepare('SELECT csr_id AS csrId, key_id AS keyId, usage, member_id AS memberId, subject, der, created_at AS createdAt FROM csrs WHERE csr_id = ?')
      .get(csrId) as CsrRecord | undefined;
  }

  deleteCsr(csrId: string): boolean {
    return this.db.prepare('DELETE FROM csrs WHERE csr_id = ?').run(csrId).changes === 1;
  }
}
