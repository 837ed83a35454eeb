import { randomUUID } from 'node:crypto';
import { mkdirSync, accessSync, constants as fsConstants } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { PhotoRelayError, type ErrorCode } from '../../shared/errors.ts';
import type { PhotoListItem, PhotoStatus } from '../../shared/protocol.ts';

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
}

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
});

/** The original API's fields of a photo (GET /api/photos). */
export function listItem(record: PhotoRecord): PhotoListItem {
  const { id, status, timestamp, description, originalFilename, processingTime } = record;
  return { id, status, timestamp, description, originalFilename, processingTime };
}

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

/** Writes a whole file durably: temp name, fsync, rename. A reader never sees half a file. */
async function writeDurably(file: string, bytes: Uint8Array): Promise<void> {
  const temp = `${file}.${randomUUID()}.tmp`;
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  await rename(temp, file);
}

/**
 * Photos on disk plus their index in SQLite (WAL). A photo's original is on disk before its row
 * exists, so every row points at a complete file; rows move queued → processing → done | failed.
 */
export class PhotoStore {
  readonly dir: string;
  private readonly db: Database.Database;

  constructor(dataDir: string) {
    this.dir = dataDir;
    try {
      for (const sub of ['originals', 'cutouts', 'masks']) {
        mkdirSync(path.join(dataDir, sub), { recursive: true });
      }
      accessSync(dataDir, fsConstants.W_OK);
      this.db = new Database(path.join(dataDir, 'photos.db'));
    } catch (error) {
      throw storageError(`use the data folder ${dataDir}`, error);
    }
    this.db.pragma('journal_mode = WAL');
    // FULL: a committed row survives power loss too, not only a killed process.
    this.db.pragma('synchronous = FULL');
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
    `);
    // Columns added after the first release: moderation state.
    const columns = new Set(
      (this.db.prepare('PRAGMA table_info(photos)').all() as { name: string }[]).map((c) => c.name),
    );
    if (!columns.has('hidden'))
      this.db.exec('ALTER TABLE photos ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0');
    if (!columns.has('approved'))
      this.db.exec('ALTER TABLE photos ADD COLUMN approved INTEGER NOT NULL DEFAULT 1');
  }

  originalPath(id: string, format: string): string {
    return path.join(this.dir, 'originals', `${id}.${format === 'jpeg' ? 'jpg' : format}`);
  }

  cutoutPath(id: string, variant: 'display' | 'full' = 'display'): string {
    return path.join(this.dir, 'cutouts', variant === 'display' ? `${id}.png` : `${id}.full.png`);
  }

  maskPath(id: string): string {
    return path.join(this.dir, 'masks', `${id}.mask`);
  }

  /** Stores the original durably and records it as queued. Only then may it be processed. */
  async accept(input: {
    bytes: Uint8Array;
    inputFormat: string;
    description: string;
    originalFilename: string;
    receivedAt: Date;
  }): Promise<PhotoRecord> {
    const id = randomUUID();
    try {
      await writeDurably(this.originalPath(id, input.inputFormat), input.bytes);
    } catch (error) {
      throw storageError('store the photo', error);
    }
    try {
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
    } catch (error) {
      await rm(this.originalPath(id, input.inputFormat), { force: true });
      throw storageError('record the photo', error);
    }
    return this.get(id)!;
  }

  get(id: string): PhotoRecord | undefined {
    const row = this.db.prepare('SELECT * FROM photos WHERE id = ?').get(id) as Row | undefined;
    return row && toRecord(row);
  }

  /** Newest first. */
  list(limit: number, statuses?: PhotoStatus[]): PhotoRecord[] {
    const rows = statuses
      ? (this.db
          .prepare(
            `SELECT * FROM photos WHERE status IN (${statuses.map(() => '?').join(',')}) ORDER BY seq DESC LIMIT ?`,
          )
          .all(...statuses, limit) as Row[])
      : (this.db.prepare('SELECT * FROM photos ORDER BY seq DESC LIMIT ?').all(limit) as Row[]);
    return rows.map(toRecord);
  }

  /** Finished photos the walls may show (not hidden, approved), newest first. */
  listShown(limit: number): PhotoRecord[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM photos WHERE status = 'done' AND hidden = 0 AND approved = 1 ORDER BY seq DESC LIMIT ?`,
      )
      .all(limit) as Row[];
    return rows.map(toRecord);
  }

  setHidden(id: string, hidden: boolean): void {
    this.db.prepare('UPDATE photos SET hidden = ? WHERE id = ?').run(hidden ? 1 : 0, id);
  }

  setApproved(id: string, approved: boolean): void {
    this.db.prepare('UPDATE photos SET approved = ? WHERE id = ?').run(approved ? 1 : 0, id);
  }

  /** Puts a failed photo back in line. */
  requeue(id: string): void {
    this.db
      .prepare(
        `UPDATE photos SET status = 'queued', error_code = NULL, error_message = NULL WHERE id = ?`,
      )
      .run(id);
  }

  async remove(record: PhotoRecord): Promise<void> {
    this.db.prepare('DELETE FROM photos WHERE id = ?').run(record.id);
    await Promise.all(
      [
        this.originalPath(record.id, record.inputFormat),
        this.cutoutPath(record.id),
        this.cutoutPath(record.id, 'full'),
        this.maskPath(record.id),
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

  /** Photos a crash or stop left unfinished, oldest first: they are processed again. */
  unfinished(): PhotoRecord[] {
    const rows = this.db
      .prepare(`SELECT * FROM photos WHERE status IN ('queued','processing') ORDER BY seq ASC`)
      .all() as Row[];
    return rows.map(toRecord);
  }

  markProcessing(id: string): void {
    this.db.prepare(`UPDATE photos SET status = 'processing' WHERE id = ?`).run(id);
  }

  async saveResult(
    id: string,
    result: {
      cutout: Uint8Array;
      mask: Uint8Array;
      processingMs: number;
      width: number;
      height: number;
    },
  ): Promise<void> {
    try {
      await writeDurably(this.maskPath(id), result.mask);
      await writeDurably(this.cutoutPath(id), result.cutout);
    } catch (error) {
      throw storageError('store the cut-out', error);
    }
    this.db
      .prepare(
        `UPDATE photos SET status = 'done', processing_ms = ?, width = ?, height = ?,
         error_code = NULL, error_message = NULL WHERE id = ?`,
      )
      .run(result.processingMs, result.width, result.height, id);
  }

  async saveFullCutout(id: string, png: Uint8Array): Promise<void> {
    await writeDurably(this.cutoutPath(id, 'full'), png);
  }

  markFailed(id: string, code: ErrorCode, message: string, processingMs: number): void {
    this.db
      .prepare(
        `UPDATE photos SET status = 'failed', error_code = ?, error_message = ?, processing_ms = ? WHERE id = ?`,
      )
      .run(code, message, processingMs, id);
  }

  readOriginal(record: PhotoRecord): Promise<Buffer> {
    return readFile(this.originalPath(record.id, record.inputFormat));
  }

  readMask(id: string): Promise<Buffer> {
    return readFile(this.maskPath(id));
  }

  close(): void {
    this.db.close();
  }
}
