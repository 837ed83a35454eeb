import { existsSync } from 'node:fs';
import { readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import { PhotoRelayError, isErrorCode } from '../../shared/errors.ts';
import type { PhotoEvent } from '../../shared/protocol.ts';
import type { Engine, MaskImage, SegmentOptions, SegmentResult } from '../engine/index.ts';
import type { CutoutMode } from '../engine/quality.ts';
import type { Settings } from '../photos/settings.ts';
import { photoEvent } from '../photos/views.ts';
import { isOnWalls } from '../photos/visibility.ts';
import type { PhotoRecord, PhotoStore } from '../store/photo-store.ts';
import type { BackgroundImage } from './background-image.ts';
import type { Broadcaster } from './broadcaster.ts';
import { EngineTurns } from './engine-turns.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

export interface ProcessedPhoto {
  record: PhotoRecord;
  event: PhotoEvent;
}

/** The other relays of the event (cluster/shared-event.ts), when there are any. */
export interface SharedChanges {
  photoDone(record: PhotoRecord): void;
  moderated(record: PhotoRecord): void;
  removed(id: string): void;
}

/**
 * A relay's photos in the shared queue at once: enough to keep several workers busy, few enough
 * that a relay's line is not all handed out while a worker is slow.
 */
const SHARED_JOBS_AT_ONCE = 8;

/**
 * The event's shared workers (cluster/inference.ts): a photo's cut-out made elsewhere, or
 * undefined when they cannot be used now (this relay's engine then makes it).
 */
export type SharedInferenceFn = (
  record: PhotoRecord,
  options: SegmentOptions,
) => Promise<SegmentResult | undefined>;

/** Who else hears about a photo's changes (the dashboard feed). */
export interface PhotoChanges {
  changed(record: PhotoRecord): void;
  removed(id: string): void;
}

/** A photo in progress when the process died this many times is set aside (E_ENGINE_CRASHED). */
export const MAX_CRASHED_ATTEMPTS = 2;

/**
 * The operator's full-size renders: at most `running` at once (reading, rendering, keeping) and
 * `waiting` more in line; beyond that 503 E_QUEUE_FULL with Retry-After. Inside the engine they
 * take only low-priority turns (engine-turns.ts), so they never take an upload's place.
 */
export const FULL_RENDER_LIMITS = { running: 2, waiting: 8, retryAfterSeconds: 5 } as const;

const round2 = (ms: number) => Math.round(ms * 100) / 100;

/** Mask file: width and height (uint32 LE) then one byte per pixel. */
function encodeMask(mask: MaskImage): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(mask.width, 0);
  header.writeUInt32LE(mask.height, 4);
  return Buffer.concat([header, mask.data]);
}

/**
 * The mode a photo's stored mask was made in, so its full-size render matches what the walls
 * showed whatever the setting is now: `fast` stores the model's own output (its input size),
 * `quality` its working mask (the photo's shape, long edge 640 or more). A quality photo whose
 * working mask has exactly the model's size (a 320×320 upload) renders as fast: at that size
 * the render is the display cut-out's size anyway.
 */
function modeOfMask(mask: MaskImage, engine: Engine): CutoutMode {
  const { width, height } = engine.model.input;
  return mask.width === width && mask.height === height ? 'fast' : 'quality';
}

function decodeMask(file: Buffer): MaskImage {
  const width = file.readUInt32LE(0);
  const height = file.readUInt32LE(4);
  return { width, height, data: new Uint8Array(file.subarray(8, 8 + width * height)) };
}

const deleted = (id: string) =>
  new PhotoRelayError('E_PHOTO_DELETED', `The operator deleted photo ${id}.`);

/** The catalog error a failed photo's record stands for (what a resend of it is answered). */
function recordedFailure(record: PhotoRecord): PhotoRelayError {
  return new PhotoRelayError(
    isErrorCode(record.errorCode) ? record.errorCode : 'E_PROCESSING_FAILED',
    record.errorMessage ?? undefined,
  );
}

interface Job {
  promise: Promise<ProcessedPhoto>;
  /** Settles the job's promise with E_PHOTO_DELETED at once (the engine's work is discarded). */
  cancel(): void;
}

/**
 * Takes accepted photos through the engine: processing → cut-out and mask stored → done →
 * broadcast if on the walls. Counts what is pending so the relay can refuse new uploads (503)
 * before accepting more than it can queue, and keeps one job per photo so an upload, its
 * resends (Idempotency-Key) and a resume after restart all wait on the same work.
 */
export class Processor {
  private pendingCount = 0;
  private readonly jobs = new Map<string, Job>();
  private readonly fullRenders = new Map<string, Promise<Buffer>>();
  private fullRendersRunning = 0;
  private readonly fullRenderLine: (() => void)[] = [];
  /** Keeping full renders one at a time, so the disk budget is checked against what is there. */
  private fullRenderKeeping: Promise<void> = Promise.resolve();
  private readonly turns: EngineTurns;
  /** This relay's photos out with the shared workers at once (cluster/): not engine turns. */
  private readonly sharedTurns = new EngineTurns(SHARED_JOBS_AT_ONCE);
  private shared: SharedChanges | undefined;
  private sharedInference: SharedInferenceFn | undefined;

  constructor(
    private readonly deps: {
      store: PhotoStore;
      engine: Engine;
      broadcaster: Broadcaster;
      logger: Logger;
      metrics: Metrics;
      settings: Settings;
      backgroundImage: BackgroundImage;
      changes: PhotoChanges;
      /** Photos in the engine at once (2: one decodes while the other is inferred). */
      turns?: number;
    },
  ) {
    this.turns = new EngineTurns(deps.turns ?? 2);
  }

  /** Several machines: changes told to the other relays, cut-outs made by the shared workers. */
  shareWith(shared: SharedChanges, inference: SharedInferenceFn | undefined): void {
    this.shared = shared;
    this.sharedInference = inference;
  }

  /** The last 200 processing times (ms), for the dashboard's percentiles. */
  readonly recent: number[] = [];

  /** Approval mode: lets a held-back photo reach the walls. */
  async approve(record: PhotoRecord): Promise<PhotoRecord | undefined> {
    const updated = this.deps.store.setApproved(record.id, true);
    if (updated) {
      this.shared?.moderated(updated);
      await this.announce(record, updated);
    }
    return updated;
  }

  /** Takes a photo off every wall (or puts it back). */
  async setHidden(record: PhotoRecord, hidden: boolean): Promise<PhotoRecord | undefined> {
    const updated = this.deps.store.setHidden(record.id, hidden);
    if (updated) {
      this.shared?.moderated(updated);
      await this.announce(record, updated);
    }
    return updated;
  }

  /** Another relay's moderation click (cluster/): the same state here, the walls told. */
  async applyShared(id: string, state: { hidden: boolean; approved: boolean }): Promise<void> {
    const { store } = this.deps;
    const before = store.get(id);
    if (!before) return;
    store.setHidden(id, state.hidden);
    const after = store.setApproved(id, state.approved);
    if (after) await this.announce(before, after);
  }

  /** A photo another relay finished (cluster/), its cut-out stored here: on the walls if it is. */
  showShared(record: PhotoRecord, cutout: Buffer): void {
    if (isOnWalls(record)) this.deps.broadcaster.broadcastPhoto(photoEvent(record), cutout);
    this.deps.changes.changed(record);
  }

  /** Another relay deleted a photo: gone here too. */
  async removeShared(id: string): Promise<void> {
    const record = this.deps.store.get(id);
    if (record) await this.removeHere(record);
  }

  /** Tells the walls and the dashboard what a moderation change did to a photo. */
  private async announce(before: PhotoRecord, after: PhotoRecord): Promise<void> {
    const { store, broadcaster, changes } = this.deps;
    changes.changed(after);
    if (isOnWalls(before) === isOnWalls(after)) return;
    if (!isOnWalls(after)) {
      broadcaster.broadcastRemoved(after.id);
      return;
    }
    const cutout = await readFile(store.cutoutPath(after.id));
    // Still on the walls after the read (an operator may have clicked again meanwhile).
    const now = store.get(after.id);
    if (now && isOnWalls(now)) broadcaster.broadcastPhoto(photoEvent(now), cutout);
  }

  /**
   * Deletes a photo wherever it is: off the walls, files gone, and an upload still waiting for
   * it answered 410 E_PHOTO_DELETED (final: the phone does not send it again).
   */
  async remove(record: PhotoRecord): Promise<void> {
    this.shared?.removed(record.id);
    await this.removeHere(record);
  }

  private async removeHere(record: PhotoRecord): Promise<void> {
    await this.deps.store.remove(record);
    this.jobs.get(record.id)?.cancel();
    this.deps.broadcaster.broadcastRemoved(record.id);
    this.deps.changes.removed(record.id);
  }

  /** Processes a failed photo again from its kept original. */
  retry(record: PhotoRecord): PhotoRecord | undefined {
    const queued = this.deps.store.requeue(record.id);
    if (queued) {
      this.deps.changes.changed(queued);
      this.process(queued).catch(() => undefined);
    }
    return queued;
  }

  get pending(): number {
    return this.pendingCount;
  }

  /**
   * Reserves a place in line before a photo is stored, synchronously, so concurrent uploads
   * cannot all pass the check. Returns false when the line is full.
   */
  admit(limit: number): boolean {
    if (this.pendingCount >= limit) return false;
    this.pendingCount++;
    this.deps.metrics.queueDepth.set(this.pendingCount);
    return true;
  }

  /** Gives back a place reserved by admit() for a photo that was then not stored. */
  release(): void {
    this.pendingCount--;
    this.deps.metrics.queueDepth.set(this.pendingCount);
  }

  /**
   * Processes one accepted photo (its place already reserved with admit() when `admitted`);
   * resolves after its broadcast, rejects with a catalog error. One job per photo.
   */
  process(
    record: PhotoRecord,
    { receivedAt = performance.now(), admitted = false } = {},
  ): Promise<ProcessedPhoto> {
    const existing = this.jobs.get(record.id);
    if (existing) {
      if (admitted) this.release();
      return existing.promise;
    }
    if (!admitted) {
      this.pendingCount++;
      this.deps.metrics.queueDepth.set(this.pendingCount);
    }
    this.deps.changes.changed(record);
    let cancel!: () => void;
    const cancelled = new Promise<never>((_resolve, reject) => {
      cancel = () => reject(deleted(record.id));
    });
    const work = this.run(record, receivedAt).finally(() => {
      this.release();
      this.jobs.delete(record.id);
    });
    const promise = Promise.race([work, cancelled]);
    // Either may settle unobserved (a job nobody waits for, or a cancel after the work ended).
    work.catch(() => undefined);
    cancelled.catch(() => undefined);
    this.jobs.set(record.id, { promise, cancel });
    return promise;
  }

  /**
   * What an upload of this photo is answered, now or once its job ends: the same answer for the
   * first request and every resend with its Idempotency-Key.
   */
  outcome(id: string): Promise<ProcessedPhoto> {
    const job = this.jobs.get(id);
    if (job) return job.promise;
    const record = this.deps.store.get(id);
    if (!record) return Promise.reject(deleted(id));
    if (record.status === 'done') return Promise.resolve({ record, event: photoEvent(record) });
    if (record.status === 'failed') return Promise.reject(recordedFailure(record));
    return this.process(record);
  }

  private async run(record: PhotoRecord, receivedAt: number): Promise<ProcessedPhoto> {
    const { store, broadcaster, logger, metrics, settings, changes } = this.deps;
    const log = logger.child({ photo: record.id });
    try {
      const result = await this.attempts(record);
      const processingMs = round2(performance.now() - receivedAt);
      const done = await store.saveResult(record.id, {
        cutout: result.image,
        mask: encodeMask(result.mask),
        processingMs,
        width: result.width,
        height: result.height,
        holdForApproval: settings.current().approvalMode,
      });
      if (!done) throw deleted(record.id);
      this.shared?.photoDone(done);
      const event = photoEvent(done);
      // Decided from the record just written, in the same tick as the broadcast: a photo hidden
      // or held before it was done never reaches a wall.
      const displays = isOnWalls(done) ? broadcaster.broadcastPhoto(event, result.image) : 0;
      changes.changed(done);
      this.recent.push(processingMs);
      if (this.recent.length > 200) this.recent.shift();
      metrics.processing.observe(processingMs / 1000);
      log.info(
        {
          event: 'processing.done',
          processingMs,
          stages: Object.fromEntries(
            Object.entries(result.timings).map(([k, v]: [string, number]) => [k, round2(v)]),
          ),
          displays,
          size: `${result.width}x${result.height}`,
        },
        'cut-out broadcast',
      );
      return { record: done, event };
    } catch (error) {
      const failure =
        error instanceof PhotoRelayError
          ? error
          : new PhotoRelayError('E_PROCESSING_FAILED', undefined, { cause: error });
      if (failure.code === 'E_ENGINE_STOPPED' || failure.code === 'E_STORAGE_FAILED') {
        // Shutting down, or the disk is full: nothing is wrong with the photo. Back in line,
        // the attempt not counted; the next start or the phone's resend processes it.
        store.backToQueue(record.id);
      } else if (failure.code !== 'E_PHOTO_DELETED') {
        const failed = store.markFailed(
          record.id,
          failure.code,
          failure.message,
          round2(performance.now() - receivedAt),
        );
        if (failed) changes.changed(failed);
        else throw deleted(record.id);
      }
      log.warn(
        { event: 'processing.failed', code: failure.code, err: failure.message },
        'processing failed',
      );
      throw failure;
    }
  }

  /**
   * Runs the engine on a photo, one counted attempt per turn. A photo attempted before and not
   * finished was in progress when the process (or the engine's worker) died: it takes its turns
   * alone. When the worker dies in this process, the photos inside it get another turn, alone,
   * until MAX_CRASHED_ATTEMPTS: the same rule as for a whole-process death at start, so an
   * innocent neighbour of a crashing photo is never set aside. The original is read only once the
   * turn is taken, so the photos waiting in line hold nothing in memory.
   */
  private async attempts(record: PhotoRecord) {
    // A photo attempted before (in progress at a death) takes its turns alone, here.
    const viaShared = record.attempts > 0 ? undefined : await this.sharedAttempt(record);
    if (viaShared) return viaShared;
    const { store, changes, logger } = this.deps;
    // Read again: this relay's own worker may have counted an attempt meanwhile (a crash there).
    let attempted = store.get(record.id)?.attempts ?? record.attempts;
    for (;;) {
      const endTurn = await this.turns.take(attempted > 0);
      try {
        const processing = store.markProcessing(record.id);
        if (!processing) throw deleted(record.id);
        attempted = processing.attempts;
        changes.changed(processing);
        logger.debug(
          { event: 'processing.start', photo: record.id, attempt: attempted },
          'processing',
        );
        return await this.segment(processing);
      } catch (error) {
        const crashed = error instanceof PhotoRelayError && error.code === 'E_ENGINE_CRASHED';
        if (!crashed || attempted >= MAX_CRASHED_ATTEMPTS) throw error;
        logger.warn(
          { event: 'processing.crashed', photo: record.id, attempt: attempted },
          'the engine worker died with this photo inside: trying it again, alone',
        );
      } finally {
        endTurn();
      }
    }
  }

  /**
   * The shared workers' cut-out (several machines), or undefined: no shared queue usable now, or
   * a photo only this relay can make (a background image is this relay's file). Not counted as an
   * attempt here: a relay killed while its photos are with other machines does not count it
   * against them at the next start. When this relay's own worker takes one of them, that worker
   * counts it (cluster/index.ts, beforeOwnPhoto): the photo is then inside this process.
   */
  private async sharedAttempt(record: PhotoRecord) {
    const options = this.sharedInference && this.plainOptions();
    if (!this.sharedInference || !options) return undefined;
    const { store, changes } = this.deps;
    const endTurn = await this.sharedTurns.take(false);
    try {
      const processing = store.markProcessing(record.id, { countAttempt: false });
      if (!processing) throw deleted(record.id);
      changes.changed(processing);
      return await this.sharedInference(processing, options);
    } catch (error) {
      // A worker told "no such photo" while the photo is still here (it asked another machine
      // at this relay's old address, say): made here instead.
      if (
        error instanceof PhotoRelayError &&
        error.code === 'E_PHOTO_DELETED' &&
        store.get(record.id)
      )
        return undefined;
      throw error;
    } finally {
      endTurn();
    }
  }

  /** The engine options of the display settings, unless they need the background image. */
  private plainOptions(): SegmentOptions | undefined {
    const { settings, backgroundImage } = this.deps;
    const { background, displayMaxEdge, cutoutMode: mode } = settings.current();
    if (background === 'image' && backgroundImage.bytes) return undefined;
    return {
      maxEdge: displayMaxEdge,
      mode,
      background: background.startsWith('#') ? background : undefined,
    };
  }

  /**
   * The engine call with the operator's display settings. A background image that cannot be
   * used must not fail uploads: if the photo fails with it but works without it, the image is
   * dropped (transparent from now on) and the photo goes through.
   */
  private async segment(record: PhotoRecord) {
    const { engine, settings, backgroundImage, logger, store } = this.deps;
    const { displayMaxEdge, cutoutMode: mode } = settings.current();
    const plain = this.plainOptions();
    if (plain) return engine.segment(await store.readOriginal(record), plain);
    const bytes = await store.readOriginal(record);
    try {
      return await engine.segment(bytes, {
        maxEdge: displayMaxEdge,
        mode,
        backgroundImage: backgroundImage.bytes,
      });
    } catch (error) {
      if (!(error instanceof PhotoRelayError) || error.status >= 500) throw error;
      const result = await engine.segment(bytes, { maxEdge: displayMaxEdge, mode });
      logger.warn(
        { event: 'background.dropped', err: error.message },
        'the background image cannot be used: cut-outs are transparent until a new one is set',
      );
      await backgroundImage.clear();
      settings.dropBackgroundImage();
      return result;
    }
  }

  /**
   * Re-processes what a crash or stop left unfinished (broadcast late, not dropped), except
   * photos that were in progress at MAX_CRASHED_ATTEMPTS deaths: those are marked failed.
   */
  resumeUnfinished(): { resumed: number; crashLooped: number } {
    const { resume, crashLooped } = this.deps.store.recoverUnfinished(MAX_CRASHED_ATTEMPTS);
    for (const record of crashLooped) {
      this.deps.logger.error(
        { event: 'photo.crash-loop', photo: record.id, attempts: record.attempts },
        'a photo was in progress at two crashes: marked failed (Retry in the dashboard)',
      );
    }
    for (const record of resume) {
      this.process(record).catch(() => undefined); // failures are recorded by run()
    }
    if (resume.length) {
      this.deps.logger.info(
        { event: 'resume', count: resume.length },
        'resuming unfinished photos',
      );
    }
    return { resumed: resume.length, crashLooped: crashLooped.length };
  }

  /**
   * The full-resolution cut-out (the operator's: admin API only), made on first request from the
   * stored mask (no inference), then kept on disk within `cacheBytes` (FULL_RENDER_CACHE_MB: the
   * oldest kept renders are deleted to make room; a render larger than the whole budget is not
   * kept). Bounded by FULL_RENDER_LIMITS and off the latency path of every upload: its engine
   * turn is a low-priority one.
   */
  fullCutout(record: PhotoRecord, options: { cacheBytes: number }): Promise<Buffer> {
    const existing = this.fullRenders.get(record.id);
    if (existing) return existing;
    const { store } = this.deps;
    const file = store.cutoutPath(record.id, 'full');
    if (existsSync(file)) return this.keptFullRender(record, file, options.cacheBytes);
    if (
      this.fullRendersRunning >= FULL_RENDER_LIMITS.running &&
      this.fullRenderLine.length >= FULL_RENDER_LIMITS.waiting
    ) {
      return Promise.reject(
        new PhotoRelayError(
          'E_QUEUE_FULL',
          `Too many full-size renders at once (${FULL_RENDER_LIMITS.running} running, ${FULL_RENDER_LIMITS.waiting} waiting). Try again in a few seconds.`,
          { retryAfterSeconds: FULL_RENDER_LIMITS.retryAfterSeconds },
        ),
      );
    }
    return this.renderFull(record, options.cacheBytes);
  }

  /** A kept render; recently used ones are the last deleted for room. */
  private async keptFullRender(record: PhotoRecord, file: string, cacheBytes: number) {
    const bytes = await readFile(file).catch(() => undefined);
    // Deleted for room meanwhile: rendered again.
    if (!bytes) return this.renderFull(record, cacheBytes);
    const now = new Date();
    await utimes(file, now, now).catch(() => undefined);
    return bytes;
  }

  private renderFull(record: PhotoRecord, cacheBytes: number): Promise<Buffer> {
    const existing = this.fullRenders.get(record.id);
    if (existing) return existing;
    const { store, engine } = this.deps;
    const render = (async () => {
      // A place is handed over by the render that ends (so none is taken twice meanwhile).
      if (this.fullRendersRunning >= FULL_RENDER_LIMITS.running) {
        await new Promise<void>((resolve) => this.fullRenderLine.push(resolve));
      } else this.fullRendersRunning++;
      try {
        const [bytes, mask] = await Promise.all([
          store.readOriginal(record),
          store.readMask(record.id),
        ]);
        // A low-priority turn: only while no photo waits, never the engine's last free turn, and
        // never beside a suspect running alone.
        const endTurn = await this.turns.takeLow();
        const stored = decodeMask(mask);
        const result = await engine
          .render(bytes, stored, { mode: modeOfMask(stored, engine) }, 'background')
          .finally(endTurn);
        const keeping = this.fullRenderKeeping.then(() =>
          this.keepFullRender(record.id, result.image, cacheBytes),
        );
        this.fullRenderKeeping = keeping.catch(() => undefined);
        await keeping.catch((error: unknown) => {
          // Not kept (disk full, …): the operator still gets this render.
          this.deps.logger.warn(
            { event: 'full-render.not-kept', photo: record.id, err: (error as Error).message },
            'a full-size render could not be kept on disk',
          );
        });
        return result.image;
      } finally {
        const next = this.fullRenderLine.shift();
        if (next) next();
        else this.fullRendersRunning--;
      }
    })().finally(() => this.fullRenders.delete(record.id));
    this.fullRenders.set(record.id, render);
    return render;
  }

  /** Writes a full render, first deleting the oldest kept ones until it fits in `budget` bytes. */
  private async keepFullRender(id: string, png: Buffer, budget: number): Promise<void> {
    const { store } = this.deps;
    if (png.length > budget) return;
    const target = store.cutoutPath(id, 'full');
    const dir = path.dirname(target);
    const kept = (
      await Promise.all(
        (await readdir(dir))
          .filter((name) => name.endsWith('.full.png'))
          .map(async (name) => {
            const file = path.join(dir, name);
            const info = await stat(file).catch(() => undefined);
            return info && { file, size: info.size, mtimeMs: info.mtimeMs };
          }),
      )
    )
      .filter((entry) => entry !== undefined)
      .sort((a, b) => a.mtimeMs - b.mtimeMs);
    let total = kept.reduce((sum, entry) => sum + entry.size, 0);
    for (const entry of kept) {
      if (total + png.length <= budget) break;
      await rm(entry.file, { force: true });
      total -= entry.size;
    }
    await store.saveFullCutout(id, png);
    // Deleted while it rendered: its files are gone, so is this one.
    if (!store.get(id)) await rm(target, { force: true });
  }

  /** Waits for the photos being processed now (used at shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.jobs.values()].map((job) => job.promise));
  }
}
