/**
 * The walls' compact rendition of a cut-out: WebP with alpha, about a twelfth of the PNG's
 * bytes (bench/renditions.bench.ts), for protocol-2 walls (`PhotoEvent.compactUrl`). The PNG stays
 * what the original protocol sends and what `cutoutUrl` serves.
 *
 * Made after the broadcast, never on an upload's path: a photo that reaches the walls is queued
 * here (following()), its walls' requests wait for that one encode (single flight), encodes run
 * one at a time, and the result is kept beside the cut-out (`cutouts/<id>.webp`, PhotoStore), so
 * it survives restarts and goes with the photo's other files when it is deleted or swept.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import type { RequestHandler } from 'express';
import sharp from 'sharp';
import { PhotoRelayError } from '../../shared/errors.ts';
import { isOnWalls } from '../photos/visibility.ts';
import type { PhotoRecord } from '../store/photo-store.ts';
import { writeDurably } from '../store/durable-file.ts';
import type { Logger } from './logger.ts';
import type { PhotoChanges } from './processor.ts';

/**
 * Chosen by measurement on the team's 26 people and object photos at display size (the sweep in
 * bench/renditions.bench.ts, `BENCH_SWEEP=1`; one run on the 2-core machine): quality 85 keeps
 * the colour error (composited on grey) at 0.25 % of full scale (median); effort 2 needs a third
 * of the CPU of the default 4 for a few % more bytes; alpha quality 90 (lossy, filtered) halves
 * the CPU of lossless alpha (85 vs 164 ms median) for an alpha MAE of 0.0002 (0.04 levels of
 * 255). AVIF (quality 50, effort 2) was a third of the bytes again but 4× the CPU: the CPU is the
 * scarce part on a laptop that also runs the model. `exact` is off: colours under alpha 0 are
 * dropped (never visible).
 */
export const COMPACT_WEBP = { quality: 85, alphaQuality: 90, effort: 2 } as const;

/** The compact rendition of a display cut-out PNG (same size, alpha kept). */
export function encodeCompact(png: Uint8Array): Promise<Buffer> {
  return sharp(png).webp(COMPACT_WEBP).toBuffer();
}

/** What the renditions need of the store. */
export interface RenditionStore {
  cutoutPath(id: string, variant?: 'display' | 'compact'): string;
  get(id: string): PhotoRecord | undefined;
}

const gone = (id: string) => new PhotoRelayError('E_NOT_FOUND', `No photo with id "${id}".`);

export class CompactRenditions {
  /** Encodes started by this process (the single flight is tested on it). */
  encodes = 0;
  private readonly inFlight = new Map<string, Promise<string>>();
  /** One encode at a time: at most one libuv thread and one libwebp encoder busy. */
  private line: Promise<unknown> = Promise.resolve();
  private readonly etags = new Map<string, { size: number; mtimeMs: number; etag: string }>();
  private closing = false;

  constructor(private readonly deps: { store: RenditionStore; logger: Logger }) {}

  /**
   * The photo changes the processor reports, forwarded to `next` (the dashboard feed) first; a
   * photo now on the walls is then queued for its rendition, a removed one forgotten.
   */
  following(next: PhotoChanges): PhotoChanges {
    return {
      changed: (record) => {
        next.changed(record);
        if (isOnWalls(record)) this.prepare(record.id);
      },
      removed: (id) => {
        next.removed(id);
        this.etags.delete(id);
      },
    };
  }

  /** Starts the encode in the background unless the rendition is there or on its way. */
  prepare(id: string): void {
    if (this.closing) return; // made on first request after the next start instead
    this.file(id).catch((error: unknown) => {
      this.deps.logger.warn(
        { event: 'rendition.failed', photo: id, err: (error as Error).message },
        'the compact rendition could not be made (walls can still use the PNG)',
      );
    });
  }

  /** The rendition's file: at once when it is on disk, else once its one encode has ended. */
  file(id: string): Promise<string> {
    const pending = this.inFlight.get(id);
    if (pending) return pending;
    const target = this.deps.store.cutoutPath(id, 'compact');
    if (existsSync(target)) return Promise.resolve(target);
    if (this.closing) return Promise.reject(new PhotoRelayError('E_SHUTTING_DOWN'));
    const encode = this.line
      .then(() => this.encode(id, target))
      .finally(() => this.inFlight.delete(id));
    this.line = encode.catch(() => undefined);
    this.inFlight.set(id, encode);
    return encode;
  }

  /**
   * Waits for the encodes under way (the relay's stop, before the store closes): a file still
   * being written when the data folder is closed, moved or removed is a half-kept rendition.
   */
  async close(): Promise<void> {
    this.closing = true;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()]);
  }

  /** A strong ETag: a digest of the file's bytes, remembered while the file stays the same. */
  async etag(id: string, file: string): Promise<string> {
    const info = await stat(file);
    const known = this.etags.get(id);
    if (known && known.size === info.size && known.mtimeMs === info.mtimeMs) return known.etag;
    return this.remember(id, file, await readFile(file));
  }

  private async remember(id: string, file: string, bytes: Buffer): Promise<string> {
    const info = await stat(file);
    const etag = `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 27)}"`;
    if (this.etags.size >= 10_000) this.etags.clear();
    this.etags.set(id, { size: info.size, mtimeMs: info.mtimeMs, etag });
    return etag;
  }

  private async encode(id: string, target: string): Promise<string> {
    const { store, logger } = this.deps;
    if (!store.get(id)) throw gone(id);
    const png = await readFile(store.cutoutPath(id)).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw gone(id);
      throw error;
    });
    this.encodes++;
    const started = performance.now();
    const webp = await encodeCompact(png);
    const encodeMs = Math.round((performance.now() - started) * 10) / 10;
    await writeDurably(target, webp);
    // Deleted while it was encoded: its other files are gone, so is this one.
    if (!store.get(id)) {
      await rm(target, { force: true });
      throw gone(id);
    }
    await this.remember(id, target, webp);
    logger.debug(
      {
        event: 'rendition.done',
        photo: id,
        encodeMs,
        pngBytes: png.length,
        webpBytes: webp.length,
      },
      'compact rendition kept',
    );
    return target;
  }
}

/** If-None-Match (RFC 9110 §13.1.2: weak comparison; `*` matches any) against our ETag. */
export function noneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/**
 * `GET /api/photos/:id/cutout.webp` (public-routes.ts, behind the same guard as the PNG): only a
 * photo on the walls (`find` throws the 404 otherwise, before and again after the wait). The same
 * caching as the PNG, `private, max-age=31536000, immutable` (an id's rendition never changes;
 * private: it is PIN-guarded), plus a strong ETag so a wall that revalidates (a reload) gets 304.
 * A rendition not made yet is waited for: the one encode every wall asking shares.
 */
export function compactCutout(
  renditions: CompactRenditions,
  find: (id: string) => PhotoRecord,
): RequestHandler {
  return async (req, res) => {
    const id = String(req.params.id);
    find(id);
    const file = await renditions.file(id);
    const etag = await renditions.etag(id, file);
    const record = find(id); // still on the walls (the operator may have hidden it meanwhile)
    res.setHeader('Cache-Control', 'private, max-age=31536000, immutable');
    res.setHeader('ETag', etag);
    if (noneMatch(req.headers['if-none-match'], etag)) {
      res.status(304).end();
      return;
    }
    res.type('image/webp');
    res.setHeader('Content-Disposition', `inline; filename="${record.id}.webp"`);
    res.sendFile(file, { etag: false, lastModified: false });
  };
}
