import { readFile } from 'node:fs/promises';
import { PhotoRelayError } from '../../shared/errors.ts';
import type { PhotoEvent } from '../../shared/protocol.ts';
import type { Engine, MaskImage } from '../engine/index.ts';
import type { PhotoRecord, PhotoStore } from '../store/photo-store.ts';
import type { Broadcaster } from './broadcaster.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

export interface ProcessedPhoto {
  record: PhotoRecord;
  event: PhotoEvent;
}

const round2 = (ms: number) => Math.round(ms * 100) / 100;

export function photoEvent(record: PhotoRecord): PhotoEvent {
  return {
    id: record.id,
    timestamp: record.timestamp,
    description: record.description,
    originalFilename: record.originalFilename,
    processingTime: record.processingTime ?? 0,
    width: record.width ?? 0,
    height: record.height ?? 0,
    cutoutUrl: `/api/photos/${record.id}/cutout`,
  };
}

/** Mask file: width and height (uint32 LE) then one byte per pixel. */
function encodeMask(mask: MaskImage): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(mask.width, 0);
  header.writeUInt32LE(mask.height, 4);
  return Buffer.concat([header, mask.data]);
}

function decodeMask(file: Buffer): MaskImage {
  const width = file.readUInt32LE(0);
  const height = file.readUInt32LE(4);
  return { width, height, data: new Uint8Array(file.subarray(8, 8 + width * height)) };
}

/**
 * Takes accepted photos through the engine: processing → cut-out and mask stored → done →
 * broadcast. Counts what is pending so the relay can refuse new uploads (503) before accepting
 * more than it can queue, rather than after.
 */
export class Processor {
  private pendingCount = 0;
  private readonly running = new Set<Promise<unknown>>();
  private readonly fullRenders = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly deps: {
      store: PhotoStore;
      engine: Engine;
      broadcaster: Broadcaster;
      logger: Logger;
      metrics: Metrics;
      displayOptions: () => { maxEdge: number; background?: string; backgroundImage?: Uint8Array };
      approvalMode: () => boolean;
    },
  ) {}

  /** The last 200 processing times (ms), for the dashboard's percentiles. */
  readonly recent: number[] = [];

  /** Approval mode: lets a held-back photo reach the walls. */
  async approve(record: PhotoRecord): Promise<void> {
    const { store, broadcaster } = this.deps;
    store.setApproved(record.id, true);
    const updated = store.get(record.id)!;
    if (updated.status === 'done' && !updated.hidden) {
      broadcaster.broadcastPhoto(photoEvent(updated), await readFile(store.cutoutPath(record.id)));
    }
  }

  /** Takes a photo off every wall (or puts it back). */
  async setHidden(record: PhotoRecord, hidden: boolean): Promise<void> {
    const { store, broadcaster } = this.deps;
    store.setHidden(record.id, hidden);
    if (hidden) broadcaster.broadcastRemoved(record.id);
    else if (record.status === 'done' && record.approved) {
      broadcaster.broadcastPhoto(photoEvent(record), await readFile(store.cutoutPath(record.id)));
    }
  }

  async remove(record: PhotoRecord): Promise<void> {
    await this.deps.store.remove(record);
    this.deps.broadcaster.broadcastRemoved(record.id);
  }

  /** Processes a failed photo again from its kept original. */
  retry(record: PhotoRecord): void {
    this.deps.store.requeue(record.id);
    this.process(this.deps.store.get(record.id)!).catch(() => undefined);
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
   * resolves after its broadcast, rejects with a catalog error.
   */
  process(
    record: PhotoRecord,
    bytes?: Buffer,
    receivedAt = performance.now(),
    admitted = false,
  ): Promise<ProcessedPhoto> {
    if (!admitted) {
      this.pendingCount++;
      this.deps.metrics.queueDepth.set(this.pendingCount);
    }
    const job = this.run(record, bytes, receivedAt).finally(() => {
      this.release();
      this.running.delete(job);
    });
    this.running.add(job);
    return job;
  }

  private async run(
    record: PhotoRecord,
    given: Buffer | undefined,
    receivedAt: number,
  ): Promise<ProcessedPhoto> {
    const { store, engine, broadcaster, logger, metrics } = this.deps;
    const log = logger.child({ photo: record.id });
    try {
      const bytes = given ?? (await store.readOriginal(record));
      store.markProcessing(record.id);
      log.debug({ event: 'processing.start' }, 'processing');
      const result = await engine.segment(bytes, this.deps.displayOptions());
      const processingMs = round2(performance.now() - receivedAt);
      await store.saveResult(record.id, {
        cutout: result.image,
        mask: encodeMask(result.mask),
        processingMs,
        width: result.width,
        height: result.height,
      });
      if (this.deps.approvalMode()) store.setApproved(record.id, false);
      const done = store.get(record.id)!;
      const event = photoEvent(done);
      // In approval mode the photo waits for the operator before reaching any wall.
      const displays = done.approved ? broadcaster.broadcastPhoto(event, result.image) : 0;
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
      // E_ENGINE_STOPPED means we are shutting down: leave it queued for the next start.
      if (failure.code !== 'E_ENGINE_STOPPED') {
        store.markFailed(
          record.id,
          failure.code,
          failure.message,
          round2(performance.now() - receivedAt),
        );
      }
      log.warn(
        { event: 'processing.failed', code: failure.code, err: failure.message },
        'processing failed',
      );
      throw failure;
    }
  }

  /** Re-processes what a crash or stop left unfinished; they are broadcast late, not dropped. */
  resumeUnfinished(): number {
    const unfinished = this.deps.store.unfinished();
    for (const record of unfinished) {
      this.process(record).catch(() => undefined); // failures are recorded by run()
    }
    if (unfinished.length) {
      this.deps.logger.info(
        { event: 'resume', count: unfinished.length },
        'resuming unfinished photos',
      );
    }
    return unfinished.length;
  }

  /**
   * The full-resolution cut-out, made on first request from the stored mask (no inference) at
   * background priority, then kept on disk: off the latency path of every upload.
   */
  fullCutout(record: PhotoRecord): Promise<Buffer> {
    let render = this.fullRenders.get(record.id);
    if (!render) {
      const { store, engine } = this.deps;
      render = (async () => {
        const cached = await readFile(store.cutoutPath(record.id, 'full')).catch(() => undefined);
        if (cached) return cached;
        const [bytes, mask] = await Promise.all([
          store.readOriginal(record),
          store.readMask(record.id),
        ]);
        const result = await engine.render(bytes, decodeMask(mask), {}, 'background');
        await store.saveFullCutout(record.id, result.image);
        return result.image;
      })().finally(() => this.fullRenders.delete(record.id));
      this.fullRenders.set(record.id, render);
    }
    return render;
  }

  /** Waits for the photos being processed now (used at shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }
}
