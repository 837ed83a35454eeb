import { randomUUID } from 'node:crypto';
import { mkdirSync, accessSync, constants as fsConstants } from 'node:fs';
import { open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { PhotoRelayError, type ErrorCode } from '../../shared/errors.ts';
import type { PhotoListItem, PhotoStatus } from '../../shared/protocol.ts';
import { ON_WALLS_SQL } from '../photos/visibility.ts';
import { syncDirectory, TEMP_SUFFIX, writeDurably } from './durable-file.ts';
import { lockDataFolder } from './folder-lock.ts';

export interface PhotoRecord extends PhotoListItem {
  inputFormat: string;
  /** Withdrawn by the operator: on no wall, cut-out not served. */
  hidden: boolean;
  /** False while waiting for the operator's approval (approval mode). */
  approved: boolean;
  errorCode: ErrorCode | null;
  errorMessage: string | null;
  width: number | null;
  height: number | null;
  /** Processing attempts started. */
  attempts: number;
  /**
   * The relay that accepted the photo when it is not this one (several machines, cluster/): its
   * cut-out is a copy fetched from there; the original, the mask and full renders stay there.
   */
  origin: string | null;
}

/** What an Idempotency-Key recorded: the photo it made and a fingerprint of the request. */
export interface UploadKey {
  photoId: string;
  fingerprint: string;
}

/** How long an Idempotency-Key is remembered. */
export const UPLOAD_KEY_TTL_MS = 24 * 60 * 60 * 1000;

interface Row {
  id: string;
  status: PhotoStatus;
  received_at: string;
  description: string;
  original_filename: string;
  input_format: string;
  processing_ms: number | null;
  error_code: ErrorCode | null;
  error_message: string | null;
  width: number | null;
  height: number | null;
  hidden: number;
  approved: number;
  attempts: number;
  origin: string | null;
}

const toRecord = (row: Row): PhotoRecord => ({
  id: row.id,
  status: row.status,
  timestamp: row.received_at,
  description: row.description,
  originalFilename: row.original_filename,
  processingTime: row.processing_ms,
  inputFormat: row.input_format,
  errorCode: row.error_code,
  errorMessage: row.error_message,
  width: row.width,
  height: row.height,
  hidden: row.hidden === 1,
  approved: row.approved === 1,
  attempts: row.attempts,
  origin: row.origin,
});

function storageError(action: string, error: unknown): PhotoRelayError {
  const code = (error as NodeJS.ErrnoException).code;
  const reason =
    code === 'ENOSPC'
      ? 'the disk is full'
      : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? 'the data folder is not writable'
        : (error as Error).message;
  return new PhotoRelayError(
    'E_STORAGE_FAILED',
    `The relay could not ${action}: ${reason}. Tell the operator.`,
    { cause: error },
  );
}

const FILE_FOLDERS = ['originals', 'cutouts', 'masks'] as const;
/** Uploads being received (multipart.ts): temp files only, all swept at start. */
const INCOMING = 'incoming';

/** A photo to store: its bytes, or a file received in the data folder (moved, not copied). */
export type AcceptInput = {
  inputFormat: string;
  description: string;
  originalFilename: string;
  receivedAt: Date;
  key?: { key: string; fingerprint: string };
} & ({ bytes: Uint8Array; file?: undefined } | { file: string; bytes?: undefined });

/** The usual file extension of an input format (originals on disk, names in the export). */
export function fileExtension(format: string): string {
  return format === 'jpeg' ? 'jpg' : format;
}

/**
 * Moves a file written in the data folder to `target` durably: its bytes fsynced, renamed (the
 * same file system, so atomic), the target's folder fsynced.
 */
async function moveDurably(file: string, target: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(file, target);
  await syncDirectory(path.dirname(target));
}

/**
 * Photos on disk plus their index in SQLite (WAL). A photo's original is on disk before its row
 * exists, so every row points at a complete file; rows move queued → processing → done | failed,
 * and each final state is written by one statement.
 */
export class PhotoStore {
  readonly dir: string;
  private readonly db: Database.Database;
  private readonly unlock: () => void;

  constructor(dataDir: string) {
    this.dir = dataDir;
    try {
      for (const sub of [...FILE_FOLDERS, INCOMING])
        mkdirSync(path.join(dataDir, sub), { recursive: true });
      accessSync(dataDir, fsConstants.W_OK);
    } catch (error) {
      throw storageError(`use the data folder ${dataDir}`, error);
    }
    this.unlock = lockDataFolder(dataDir);
    try {
      this.db = new Database(path.join(dataDir, 'photos.db'));
    } catch (error) {
      this.unlock();
      throw storageError(`use the data folder ${dataDir}`, error);
    }
    this.db.pragma('journal_mode = WAL');
    // FULL: a committed row survives power loss too, not only a killed process. On macOS fsync
    // does not reach the platter; F_FULLFSYNC does (SQLite's fullfsync pragmas).
    this.db.pragma('synchronous = FULL');
    if (process.platform === 'darwin') {
      this.db.pragma('fullfsync = ON');
      this.db.pragma('checkpoint_fullfsync = ON');
    }
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS photos (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN ('queued','processing','done','failed')),
        received_at TEXT NOT NULL,
        description TEXT NOT NULL,
        original_filename TEXT NOT NULL,
        input_format TEXT NOT NULL,
        processing_ms REAL,
        error_code TEXT,
        error_message TEXT,
        width INTEGER,
        height INTEGER,
        seq INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS photos_by_seq ON photos (seq DESC);
      CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      -- Idempotency-Key → photo. Kept when the photo is deleted (a resend then gets 410).
      CREATE TABLE IF NOT EXISTS upload_keys (
        key TEXT PRIMARY KEY,
        photo_id TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        created_ms INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS upload_keys_by_age ON upload_keys (created_ms);
      -- Displays' own credentials (wall-credentials.ts): a sha256 of the token, never the token.
      CREATE TABLE IF NOT EXISTS walls (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        label TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL
      );
      -- Changes to tell the other relays (cluster/), kept until Redis has them: an outbox that
      -- survives Redis being away and this process being killed.
      CREATE TABLE IF NOT EXISTS shared_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        message TEXT NOT NULL
      );
    `);
    // Columns added after the first release.
    const columns = new Set(
      (this.db.prepare('PRAGMA table_info(photos)').all() as { name: string }[]).map((c) => c.name),
    );
    const added: Record<string, string> = {
      hidden: 'INTEGER NOT NULL DEFAULT 0',
      approved: 'INTEGER NOT NULL DEFAULT 1',
      attempts: 'INTEGER NOT NULL DEFAULT 0',
      origin: 'TEXT',
    };
    for (const [name, type] of Object.entries(added)) {
      if (!columns.has(name)) this.db.exec(`ALTER TABLE photos ADD COLUMN ${name} ${type}`);
    }
  }

  originalPath(id: string, format: string): string {
    return path.join(this.dir, 'originals', `${id}.${fileExtension(format)}`);
  }

  /** `compact`: the walls' WebP rendition (relay/renditions.ts). */
  cutoutPath(id: string, variant: 'display' | 'full' | 'compact' = 'display'): string {
    const name = { display: `${id}.png`, full: `${id}.full.png`, compact: `${id}.webp` }[variant];
    return path.join(this.dir, 'cutouts', name);
  }

  maskPath(id: string): string {
    return path.join(this.dir, 'masks', `${id}.mask`);
  }

  /**
   * Stores the original durably and records it as queued, with its Idempotency-Key in the same
   * transaction. Only then may it be processed.
   */
  async accept(input: AcceptInput): Promise<PhotoRecord> {
    const id = randomUUID();
    const original = this.originalPath(id, input.inputFormat);
    try {
      if (input.file === undefined) await writeDurably(original, input.bytes);
      else await moveDurably(input.file, original);
    } catch (error) {
      // The rename may have happened before the folder's fsync failed: no original without a row.
      await rm(original, { force: true }).catch(() => undefined);
      throw storageError('store the photo', error);
    }
    try {
      this.db.transaction(() => {
        this.db
          .prepare(
            `INSERT INTO photos (id, status, received_at, description, original_filename, input_format, seq)
             VALUES (?, 'queued', ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM photos))`,
          )
          .run(
            id,
            input.receivedAt.toISOString(),
            input.description,
            input.originalFilename,
            input.inputFormat,
          );
        if (input.key) {
          // A key older than 24 h is free again: its old row must not block the new one.
          this.db
            .prepare('DELETE FROM upload_keys WHERE key = ? AND created_ms <= ?')
            .run(input.key.key, Date.now() - UPLOAD_KEY_TTL_MS);
          this.db
            .prepare(
              'INSERT INTO upload_keys (key, photo_id, fingerprint, created_ms) VALUES (?, ?, ?, ?)',
            )
            .run(input.key.key, id, input.key.fingerprint, Date.now());
        }
      })();
    } catch (error) {
      await rm(original, { force: true });
      throw storageError('record the photo', error);
    }
    return this.get(id)!;
  }

  /**
   * A fresh temporary path for an upload being received, in the data folder (so storing it is a
   * rename, not a copy); whatever a crash leaves there is swept at the next start.
   */
  incomingPath(): string {
    return path.join(this.dir, INCOMING, `${randomUUID()}${TEMP_SUFFIX}`);
  }

  /** The photo an Idempotency-Key made in the last 24 h, if any. */
  findUploadKey(key: string): UploadKey | undefined {
    const row = this.db
      .prepare('SELECT photo_id, fingerprint FROM upload_keys WHERE key = ? AND created_ms > ?')
      .get(key, Date.now() - UPLOAD_KEY_TTL_MS) as
      { photo_id: string; fingerprint: string } | undefined;
    return row && { photoId: row.photo_id, fingerprint: row.fingerprint };
  }

  /** Forgets keys older than 24 h. */
  forgetOldUploadKeys(): number {
    return this.db
      .prepare('DELETE FROM upload_keys WHERE created_ms <= ?')
      .run(Date.now() - UPLOAD_KEY_TTL_MS).changes;
  }

  get(id: string): PhotoRecord | undefined {
    const row = this.db.prepare('SELECT * FROM photos WHERE id = ?').get(id) as Row | undefined;
    return row && toRecord(row);
  }

  /** Newest first. */
  list(limit: number): PhotoRecord[] {
    const rows = this.db
      .prepare('SELECT * FROM photos ORDER BY seq DESC LIMIT ?')
      .all(limit) as Row[];
    return rows.map(toRecord);
  }

  /** Photos on the walls (photos/visibility.ts), newest first. */
  listOnWalls(limit: number): PhotoRecord[] {
    const rows = this.db
      .prepare(`SELECT * FROM photos WHERE ${ON_WALLS_SQL} ORDER BY seq DESC LIMIT ?`)
      .all(limit) as Row[];
    return rows.map(toRecord);
  }

  /** A photo only while it is on the walls (what a guest may see); otherwise undefined. */
  getOnWalls(id: string): PhotoRecord | undefined {
    const row = this.db.prepare(`SELECT * FROM photos WHERE id = ? AND ${ON_WALLS_SQL}`).get(id) as
      Row | undefined;
    return row && toRecord(row);
  }

  /** Returns the updated record, or undefined when the photo is gone. */
  setHidden(id: string, hidden: boolean): PhotoRecord | undefined {
    this.db.prepare('UPDATE photos SET hidden = ? WHERE id = ?').run(hidden ? 1 : 0, id);
    return this.get(id);
  }

  setApproved(id: string, approved: boolean): PhotoRecord | undefined {
    this.db.prepare('UPDATE photos SET approved = ? WHERE id = ?').run(approved ? 1 : 0, id);
    return this.get(id);
  }

  /**
   * Puts a failed photo back in line (the operator's Retry). Its attempts are kept: a photo that
   * crashed the relay before still runs alone and is set aside again at its next crash.
   */
  requeue(id: string): PhotoRecord | undefined {
    this.db
      .prepare(
        `UPDATE photos SET status = 'queued', error_code = NULL, error_message = NULL
         WHERE id = ? AND status = 'failed'`,
      )
      .run(id);
    return this.get(id);
  }

  /** Deletes the row and every file of the photo; its Idempotency-Key stays (resends get 410). */
  async remove(record: PhotoRecord): Promise<void> {
    this.db.prepare('DELETE FROM photos WHERE id = ?').run(record.id);
    await this.removeFiles(record.id, record.inputFormat);
  }

  private async removeFiles(id: string, inputFormat: string): Promise<void> {
    await Promise.all(
      [
        this.originalPath(id, inputFormat),
        this.cutoutPath(id),
        this.cutoutPath(id, 'full'),
        this.cutoutPath(id, 'compact'),
        this.maskPath(id),
      ].map((file) => rm(file, { force: true })),
    );
  }

  getSetting<T>(key: string, fallback: T): T {
    const row = this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as
      { value: string } | undefined;
    return row ? (JSON.parse(row.value) as T) : fallback;
  }

  setSetting(key: string, value: unknown): void {
    this.db
      .prepare(
        'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      )
      .run(key, JSON.stringify(value));
  }

  /**
   * At start: what the previous run left unfinished. A photo still `processing` was in progress
   * when the process died; after `maxAttempts` such deaths it is marked failed with
   * E_ENGINE_CRASHED (kept, Retry in the dashboard) instead of taking the relay down at every
   * start. The rest are returned, oldest first, to be processed again.
   */
  recoverUnfinished(maxAttempts: number): { resume: PhotoRecord[]; crashLooped: PhotoRecord[] } {
    const crashLooped = (
      this.db
        .prepare(
          `UPDATE photos SET status = 'failed', error_code = 'E_ENGINE_CRASHED', error_message = ?
           WHERE status = 'processing' AND attempts >= ? RETURNING *`,
        )
        .all(
          `Processing this photo stopped the relay ${maxAttempts} times, so it was set aside. The original is kept: Retry it from the dashboard.`,
          maxAttempts,
        ) as Row[]
    ).map(toRecord);
    const resume = (
      this.db
        .prepare(`SELECT * FROM photos WHERE status IN ('queued','processing') ORDER BY seq ASC`)
        .all() as Row[]
    ).map(toRecord);
    return { resume, crashLooped };
  }

  /**
   * Counts an attempt before the engine sees the photo (so a crash inside it is counted);
   * `countAttempt: false` when it goes to another machine's engine (a crash here is not its doing).
   */
  markProcessing(id: string, { countAttempt = true } = {}): PhotoRecord | undefined {
    const row = this.db
      .prepare(
        `UPDATE photos SET status = 'processing', attempts = attempts + ?
         WHERE id = ? AND status IN ('queued','processing') RETURNING *`,
      )
      .get(countAttempt ? 1 : 0, id) as Row | undefined;
    return row && toRecord(row);
  }

  /**
   * Counts an attempt of a photo already being processed (its job reached this relay's own
   * worker, cluster/): nothing for one in line, done or failed (a stale job of an earlier try).
   */
  countAttempt(id: string): void {
    this.db
      .prepare(`UPDATE photos SET attempts = attempts + 1 WHERE id = ? AND status = 'processing'`)
      .run(id);
  }

  /** A stop interrupted this attempt (not a crash): back in line, the attempt not counted. */
  backToQueue(id: string): void {
    this.db
      .prepare(
        `UPDATE photos SET status = 'queued', attempts = MAX(attempts - 1, 0)
         WHERE id = ? AND status = 'processing'`,
      )
      .run(id);
  }

  /**
   * Stores the cut-out and mask, then marks the photo done (and approved or held, per approval
   * mode) in one statement. Returns the done record, or undefined when the photo was deleted
   * meanwhile (its files are then removed again).
   */
  async saveResult(
    id: string,
    result: {
      cutout: Uint8Array;
      mask: Uint8Array;
      processingMs: number;
      width: number;
      height: number;
      holdForApproval: boolean;
    },
  ): Promise<PhotoRecord | undefined> {
    if (!this.get(id)) return undefined;
    try {
      await writeDurably(this.maskPath(id), result.mask);
      await writeDurably(this.cutoutPath(id), result.cutout);
    } catch (error) {
      throw storageError('store the cut-out', error);
    }
    const row = this.db
      .prepare(
        `UPDATE photos SET status = 'done', processing_ms = ?, width = ?, height = ?,
         approved = CASE WHEN ? THEN 0 ELSE approved END,
         error_code = NULL, error_message = NULL WHERE id = ? RETURNING *`,
      )
      .get(result.processingMs, result.width, result.height, result.holdForApproval ? 1 : 0, id) as
      Row | undefined;
    if (!row) {
      await Promise.all(
        [this.maskPath(id), this.cutoutPath(id)].map((file) => rm(file, { force: true })),
      );
      return undefined;
    }
    return toRecord(row);
  }

  async saveFullCutout(id: string, png: Uint8Array): Promise<void> {
    await writeDurably(this.cutoutPath(id, 'full'), png);
  }

  markFailed(
    id: string,
    code: ErrorCode,
    message: string,
    processingMs: number,
  ): PhotoRecord | undefined {
    const row = this.db
      .prepare(
        `UPDATE photos SET status = 'failed', error_code = ?, error_message = ?, processing_ms = ?
         WHERE id = ? RETURNING *`,
      )
      .get(code, message, processingMs, id) as Row | undefined;
    return row && toRecord(row);
  }

  readOriginal(record: PhotoRecord): Promise<Buffer> {
    return readFile(this.originalPath(record.id, record.inputFormat));
  }

  readMask(id: string): Promise<Buffer> {
    return readFile(this.maskPath(id));
  }

  /**
   * At start, before anything is accepted: removes temp files a crash left mid-write (uploads
   * half received in incoming/ among them) and files no row points at (an original stored just
   * before a crash, before its row; files of a photo deleted while its cut-out was being
   * written). Returns how many files went.
   */
  async sweep(): Promise<number> {
    const ids = new Set(
      (this.db.prepare('SELECT id FROM photos').all() as { id: string }[]).map((row) => row.id),
    );
    let removed = 0;
    for (const folder of [...FILE_FOLDERS, INCOMING]) {
      const dir = path.join(this.dir, folder);
      for (const name of await readdir(dir)) {
        const id = name.slice(0, 36);
        if (name.endsWith(TEMP_SUFFIX) || !ids.has(id)) {
          await rm(path.join(dir, name), { force: true });
          removed++;
        }
      }
      if (removed) await syncDirectory(dir);
    }
    for (const name of await readdir(this.dir)) {
      if (name.endsWith(TEMP_SUFFIX)) {
        await rm(path.join(this.dir, name), { force: true });
        removed++;
      }
    }
    return removed;
  }

  /**
   * A photo another relay accepted and finished (cluster/): its cut-out stored, then its row as
   * done with `origin` set, unless the photo is already known here (a message heard twice).
   * Returns the new record, or undefined when it was known.
   */
  async importShared(
    photo: Omit<PhotoRecord, 'status' | 'errorCode' | 'errorMessage' | 'attempts'> & {
      origin: string;
    },
    cutout: Uint8Array,
  ): Promise<PhotoRecord | undefined> {
    if (this.get(photo.id)) return undefined;
    try {
      await writeDurably(this.cutoutPath(photo.id), cutout);
    } catch (error) {
      throw storageError('store a cut-out from another relay', error);
    }
    const inserted = this.db
      .prepare(
        `INSERT OR IGNORE INTO photos (id, status, received_at, description, original_filename,
           input_format, processing_ms, width, height, hidden, approved, origin, seq)
         VALUES (?, 'done', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM photos))`,
      )
      .run(
        photo.id,
        photo.timestamp,
        photo.description,
        photo.originalFilename,
        photo.inputFormat,
        photo.processingTime,
        photo.width,
        photo.height,
        photo.hidden ? 1 : 0,
        photo.approved ? 1 : 0,
        photo.origin,
      );
    return inserted.changes === 1 ? this.get(photo.id) : undefined;
  }

  /**
   * Keeps a change for the other relays until it is shared (cluster/shared-event.ts). Returns
   * its place in the outbox (increasing, never reused).
   */
  queueShared(message: unknown): number {
    const { lastInsertRowid } = this.db
      .prepare('INSERT INTO shared_outbox (message) VALUES (?)')
      .run(JSON.stringify(message));
    return Number(lastInsertRowid);
  }

  /** The oldest changes not yet shared. */
  listUnshared(limit: number): { seq: number; message: unknown }[] {
    return (
      this.db.prepare('SELECT seq, message FROM shared_outbox ORDER BY seq LIMIT ?').all(limit) as {
        seq: number;
        message: string;
      }[]
    ).map((row) => ({ seq: row.seq, message: JSON.parse(row.message) as unknown }));
  }

  countUnshared(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM shared_outbox').get() as { n: number }).n;
  }

  markShared(seq: number): void {
    this.db.prepare('DELETE FROM shared_outbox WHERE seq <= ?').run(seq);
  }

  close(): void {
    this.db.close();
    this.unlock();
  }

  // Wall credentials: rows only; the rules (tokens, hashing, checks) are in wall-credentials.ts.

  addWall(wall: WallRow): void {
    this.db
      .prepare(
        `INSERT INTO walls (id, token_hash, label, created_at, last_seen_at)
         VALUES (@id, @tokenHash, @label, @createdAt, @lastSeenAt)`,
      )
      .run(wall);
  }

  /** Every wall credential, most recently seen first. */
  listWalls(): WallRow[] {
    return this.db
      .prepare(
        `SELECT id, token_hash AS tokenHash, label, created_at AS createdAt,
         last_seen_at AS lastSeenAt FROM walls ORDER BY last_seen_at DESC, id`,
      )
      .all() as WallRow[];
  }

  touchWall(id: string, lastSeenAt: string): void {
    this.db.prepare('UPDATE walls SET last_seen_at = ? WHERE id = ?').run(lastSeenAt, id);
  }

  /** False when there was no such wall. */
  removeWall(id: string): boolean {
    return this.db.prepare('DELETE FROM walls WHERE id = ?').run(id).changes === 1;
  }
}

/** A row of the walls table. */
export interface WallRow {
  id: string;
  /** sha256 of the token, hex. */
  tokenHash: string;
  label: string;
  createdAt: string;
  lastSeenAt: string;
}
