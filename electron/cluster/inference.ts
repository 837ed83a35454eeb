import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, UnrecoverableError, Worker, type Job } from 'bullmq';
import { PhotoRelayError, isErrorCode } from '../../shared/errors.ts';
import type { ClusterQueue } from '../../shared/cluster.ts';
import type { Engine, SegmentOptions, SegmentResult } from '../engine/index.ts';
import { ClusterFetchError, fetchClusterFile } from './cluster-routes.ts';
import { readPresence } from './presence.ts';
import type { EventKeys, RedisLink } from './redis-link.ts';

/**
 * The shared inference queue (BullMQ). A job carries a reference to the photo, not its bytes:
 * the original stays on the relay that accepted it and the worker fetches it once over HTTP
 * (a 12 MP original is 3–5 MB; putting it through Redis would copy it twice and hold it in
 * Redis's memory). The result (display cut-out + stored mask, ~2.5 MB) goes back through Redis
 * under a key of its own with an expiry: the relay needs it at once, and the worker then needs
 * no way to write into a relay. The relay reads it and deletes it.
 */
export const QUEUE_NAME = 'cutout';

/** How often a relay waiting for a job checks that some worker is there to take it. */
const UNATTENDED_CHECK_MS = 5000;

/**
 * A job a worker has held this long without ending is made by its relay instead (a worker that
 * keeps its lock but never ends: a GPU driver hung, say). Far above any real job (seconds).
 */
const JOB_DEADLINE_MS = 120_000;
/** The most a photo waits for the shared workers, in line included (a line that never moves). */
const LINE_DEADLINE_MS = 15 * 60_000;

/** How long a stop waits for BullMQ to close gracefully (Redis away: it would wait for ever). */
const CLOSE_DEADLINE_MS = 5000;

/** `promise`, or `fallback` once `ms` have passed. */
function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
    timer.unref();
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** How long a finished job and its result wait for their relay (a relay restarting, say). */
const RESULT_TTL_SECONDS = 3600;

export interface CutoutJob {
  photoId: string;
  /** The relay that accepted it: where the original is. */
  relayId: string;
  relayUrl: string;
  inputFormat: string;
  options: SegmentOptions;
}

/** What a finished job returns; the bytes are under `resultKey`. */
interface CutoutReturn {
  resultKey: string;
  workerId: string;
}

/** Tunable for tests: how soon a dead worker's job is taken again (BullMQ's stalled check). */
export interface StallTiming {
  lockMs: number;
  stalledIntervalMs: number;
}

export const DEFAULT_STALL_TIMING: StallTiming = { lockMs: 10_000, stalledIntervalMs: 5_000 };

/** A result as stored in Redis: a JSON header (lengths, sizes, timings) then the bytes. */
export function encodeResult(result: SegmentResult): Buffer {
  const { image, mask, ...rest } = result;
  const header = Buffer.from(
    JSON.stringify({
      ...rest,
      imageLength: image.length,
      mask: { width: mask.width, height: mask.height },
    }),
  );
  const length = Buffer.alloc(4);
  length.writeUInt32LE(header.length, 0);
  return Buffer.concat([length, header, image, mask.data]);
}

export function decodeResult(bytes: Buffer): SegmentResult {
  const headerLength = bytes.readUInt32LE(0);
  const header = JSON.parse(bytes.subarray(4, 4 + headerLength).toString()) as Omit<
    SegmentResult,
    'image' | 'mask'
  > & { imageLength: number; mask: { width: number; height: number } };
  const start = 4 + headerLength;
  const { imageLength, mask, ...rest } = header;
  return {
    ...rest,
    image: bytes.subarray(start, start + imageLength),
    mask: {
      width: mask.width,
      height: mask.height,
      data: new Uint8Array(bytes.subarray(start + imageLength)),
    },
  };
}

/** A catalog error through BullMQ's failedReason (a string): `CODE message`. */
function failureReason(error: unknown): string {
  if (error instanceof PhotoRelayError) return `${error.code} ${error.message}`;
  return `E_PROCESSING_FAILED ${(error as Error).message}`;
}

function failureFromReason(reason: string): PhotoRelayError {
  const space = reason.indexOf(' ');
  const code = space > 0 ? reason.slice(0, space) : '';
  if (isErrorCode(code)) return new PhotoRelayError(code, reason.slice(space + 1));
  return new PhotoRelayError('E_PROCESSING_FAILED', reason);
}

/**
 * The relay's side: puts a photo's job in the shared queue and waits for its result. Answers
 * undefined (the relay then uses its own engine) while Redis is away or goes away meanwhile, so
 * an event never stops for Redis.
 */
export class SharedInference {
  private readonly queue: Queue<CutoutJob, CutoutReturn>;
  private readonly events: QueueEvents;

  constructor(
    private readonly link: RedisLink,
    private readonly keys: EventKeys,
  ) {
    this.queue = new Queue(QUEUE_NAME, {
      connection: link.connection({ enableOfflineQueue: false, maxRetriesPerRequest: 1 }),
      prefix: keys.bull,
    });
    this.queue.on('error', () => undefined);
    this.events = new QueueEvents(QUEUE_NAME, { connection: link.connection(), prefix: keys.bull });
    this.events.on('error', () => undefined);
  }

  /**
   * A photo's cut-out by whichever worker takes it; undefined when the shared queue cannot be
   * used now. Rejects with the catalog error a worker met (bad image…).
   */
  async segment(job: CutoutJob): Promise<SegmentResult | undefined> {
    if (!this.link.up) return undefined;
    let added: Job<CutoutJob, CutoutReturn>;
    try {
      // A job of its own each time: a relay restarted mid-job adds a new one (the old result,
      // if it comes, is never read and expires), and a Retry is never answered by an old failure.
      added = await this.queue.add('cutout', job, {
        jobId: `${job.photoId}.${randomUUID().slice(0, 8)}`,
        removeOnComplete: { age: RESULT_TTL_SECONDS },
        removeOnFail: { age: RESULT_TTL_SECONDS },
      });
    } catch {
      return undefined;
    }
    // However long the line, a photo is not waited for past this: its relay makes it.
    const finished = within(added.waitUntilFinished(this.events), LINE_DEADLINE_MS, undefined);
    const active = { since: undefined as number | undefined };
    let onDown!: () => void;
    let unattended: NodeJS.Timeout | undefined;
    const down = new Promise<undefined>((resolve) => {
      onDown = () => resolve(undefined);
      this.link.once('down', onDown);
      // No worker anywhere (every relay LOCAL_WORKER=0 and no worker process): a job still
      // waiting is taken back and made here rather than waited for forever.
      // A job a worker has held past JOB_DEADLINE_MS (counted from when it took it, not from
      // the wait in line) is made here too.
      unattended = setInterval(() => {
        void Promise.all([this.takeBackUnattended(added), this.overdue(added, active)]).then(
          ([taken, overdue]) => {
            if (taken || overdue) resolve(undefined);
          },
        );
      }, UNATTENDED_CHECK_MS);
    });
    let returned: CutoutReturn | undefined;
    try {
      returned = await Promise.race([finished, down]);
    } catch (error) {
      const failure = failureFromReason((error as Error).message);
      // A photo the engine refused fails the same here; anything else (the original not
      // fetched, a worker's own trouble) is made by this relay instead.
      if (failure.status < 500) throw failure;
      return undefined;
    } finally {
      this.link.off('down', onDown);
      clearInterval(unattended);
    }
    if (!returned) return undefined; // Redis went away mid-job: this relay finishes it itself
    const bytes = await this.link.client.getBuffer(returned.resultKey).catch(() => null);
    if (!bytes) return undefined;
    this.link.client.del(returned.resultKey).catch(() => undefined);
    return decodeResult(bytes);
  }

  /**
   * True when the job has been active (a worker holds it) for more than JOB_DEADLINE_MS, timed by
   * this relay's clock from when it first saw it active (a worker's clock may be off).
   */
  private async overdue(
    job: Job<CutoutJob, CutoutReturn>,
    active: { since: number | undefined },
  ): Promise<boolean> {
    const state = await job.getState().catch(() => 'unknown');
    if (state !== 'active') {
      active.since = undefined;
      return false;
    }
    active.since ??= Date.now();
    return Date.now() - active.since > JOB_DEADLINE_MS;
  }

  /** True when no worker is online and the job, still waiting, was taken out of the queue. */
  private async takeBackUnattended(job: Job<CutoutJob, CutoutReturn>): Promise<boolean> {
    const workers = await readPresence<{ lastSeenAt: string }>(this.link, this.keys.workers);
    if (workers.some((worker) => worker.online)) return false;
    try {
      await job.remove();
      return true;
    } catch {
      return false; // a worker has it after all (it is locked): wait for it
    }
  }

  async counts(): Promise<ClusterQueue | null> {
    if (!this.link.up) return null;
    try {
      const counts = await this.queue.getJobCounts('waiting', 'active', 'delayed', 'failed');
      return {
        waiting: counts.waiting ?? 0,
        active: counts.active ?? 0,
        delayed: counts.delayed ?? 0,
        failed: counts.failed ?? 0,
      };
    } catch {
      return null;
    }
  }

  async close(): Promise<void> {
    await within(
      Promise.allSettled([this.queue.close(), this.events.close()]),
      CLOSE_DEADLINE_MS,
      undefined,
    );
  }
}

/** Where a worker gets a job's original: its own relay's disk, or the relay over HTTP. */
export type OriginalSource = (job: CutoutJob) => Promise<Buffer>;

/** Fetches an original from the relay that accepted it (cluster-routes.ts). */
export function fetchOriginal(secret: () => Promise<string>): OriginalSource {
  return async (job) => {
    try {
      return await fetchClusterFile(job.relayUrl, job.photoId, 'original', await secret());
    } catch (error) {
      if (error instanceof ClusterFetchError && error.gone)
        throw new PhotoRelayError(
          'E_PHOTO_DELETED',
          `Photo ${job.photoId} is gone from its relay.`,
        );
      throw error;
    }
  };
}

export interface WorkerCounters {
  running: number;
  done: number;
  failed: number;
}

/**
 * Takes jobs from the shared queue and runs them on an engine. A job whose worker dies is taken
 * again by another one (BullMQ's stalled-job check); its relay broadcasts the photo once because
 * only the relay writes and broadcasts, and it does so once per photo.
 */
export class InferenceWorker {
  readonly id = `${os.hostname()}-${randomUUID().slice(0, 8)}`;
  readonly counters: WorkerCounters = { running: 0, done: 0, failed: 0 };
  private readonly worker: Worker<CutoutJob, CutoutReturn>;

  constructor(
    private readonly link: RedisLink,
    private readonly keys: EventKeys,
    private readonly engine: Engine,
    private readonly original: OriginalSource,
    private readonly options: {
      concurrency: number;
      stall?: StallTiming;
      /**
       * A relay's own worker (LOCAL_WORKER), told before its engine sees one of this relay's own
       * photos: the photo is then inside this process, so a crash here counts against it (the
       * relay sets aside a photo that kept killing it, as on its own).
       */
      beforeOwnPhoto?: (job: CutoutJob) => void;
    },
  ) {
    const stall = options.stall ?? DEFAULT_STALL_TIMING;
    this.worker = new Worker(QUEUE_NAME, (job) => this.run(job), {
      connection: link.connection(),
      prefix: keys.bull,
      concurrency: options.concurrency,
      lockDuration: stall.lockMs,
      stalledInterval: stall.stalledIntervalMs,
      maxStalledCount: 2,
    });
    this.worker.on('error', () => undefined);
  }

  private async run(job: Job<CutoutJob, CutoutReturn>): Promise<CutoutReturn> {
    this.counters.running++;
    try {
      const bytes = await this.original(job.data);
      this.options.beforeOwnPhoto?.(job.data);
      const result = await this.engine.segment(bytes, job.data.options).catch((error: unknown) => {
        // A photo the engine refuses fails the same way wherever it runs: not tried again.
        if (error instanceof PhotoRelayError && error.status < 500)
          throw new UnrecoverableError(failureReason(error));
        throw new Error(failureReason(error));
      });
      const resultKey = this.keys.result(job.id ?? job.data.photoId);
      await this.link.client.set(resultKey, encodeResult(result), 'EX', RESULT_TTL_SECONDS);
      this.counters.done++;
      return { resultKey, workerId: this.id };
    } catch (error) {
      this.counters.failed++;
      if (error instanceof PhotoRelayError) throw new UnrecoverableError(failureReason(error));
      throw error;
    } finally {
      this.counters.running--;
    }
  }

  /** Lets the jobs in hand finish (up to CLOSE_DEADLINE_MS), then stops taking any. */
  async close(): Promise<void> {
    const closed = await within(
      this.worker.close().then(() => true),
      CLOSE_DEADLINE_MS,
      false,
    );
    // Not closed in time (Redis away): stop now; a job in hand is taken again once its lock expires.
    if (!closed) await within(this.worker.close(true), CLOSE_DEADLINE_MS, undefined);
  }
}
