import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { PhotoRelayError } from '../../shared/errors.ts';
import { assertBytesCoverPixels, isProgressiveJpeg } from './declared-size.ts';
import { probeImage, toImageError, type ProbedImage } from './image-input.ts';
import { configureLibvips } from './libvips.ts';
import { createSession } from './session.ts';
import type { OutputOptions } from './options.ts';
import {
  compose,
  decodeModelInput,
  decodePhoto,
  encode,
  modelInputFromPhoto,
  type DecodedPhoto,
} from './pipeline.ts';
import type {
  FromWorker,
  MaskImage,
  StageTimings,
  ToWorker,
  WorkerConfig,
  WorkerResult,
} from './worker-messages.ts';
import { buildInputTensor, outputToMask } from './tensor.ts';

/**
 * The engine's worker: owns the one ONNX session for its model (created once: repeated
 * create/release leaks in onnxruntime-node) and runs whole jobs, so `session.run()`, which blocks
 * its thread, never blocks the caller's event loop. Up to two jobs overlap here: the next photo
 * decodes on libvips' threads while this thread runs inference.
 */
const port = parentPort;
if (!port) throw new Error('worker.ts must run as a worker thread');
const config = workerData as WorkerConfig;
const { spec } = config;
// This thread's load of sharp reset the process-wide libvips cache to its defaults.
configureLibvips();

function send(message: FromWorker): void {
  port!.postMessage(message);
}

let session: ort.InferenceSession;
/** Serialises inference: one run at a time on the session, in arrival order. */
let inferenceTail: Promise<unknown> = Promise.resolve();

async function infer(
  modelInput: Uint8Array,
): Promise<{ mask: Uint8Array; inferenceMs: number; maskMs: number }> {
  const tensorData = buildInputTensor(modelInput, spec.input);
  const { width, height } = spec.input;
  const dims = spec.input.layout === 'NCHW' ? [1, 3, height, width] : [1, height, width, 3];
  const run = inferenceTail.then(async () => {
    const started = performance.now();
    const outputs = await session.run({
      [spec.input.name]: new ort.Tensor('float32', tensorData, dims),
    });
    const inferenceMs = performance.now() - started;
    const output = outputs[spec.output.name];
    if (!output)
      throw new PhotoRelayError(
        'E_PROCESSING_FAILED',
        `Model gave no output "${spec.output.name}".`,
      );
    const maskStarted = performance.now();
    const mask = outputToMask(output.data as Float32Array, spec);
    for (const tensor of Object.values(outputs)) tensor.dispose();
    return { mask, inferenceMs, maskMs: performance.now() - maskStarted };
  });
  inferenceTail = run.catch(() => undefined);
  return run;
}

async function finish(
  photo: DecodedPhoto,
  mask: MaskImage,
  options: OutputOptions,
  partial: Omit<StageTimings, 'composeMs' | 'encodeMs'>,
): Promise<WorkerResult> {
  let started = performance.now();
  const composed = await compose(photo, { ...mask, channels: 1 }, options);
  const composeMs = performance.now() - started;
  started = performance.now();
  const image = await encode(composed, options);
  const encodeMs = performance.now() - started;
  return {
    image,
    format: options.format,
    width: composed.width,
    height: composed.height,
    channels: composed.channels,
    inputFormat: photo.format,
    originalWidth: photo.originalWidth,
    originalHeight: photo.originalHeight,
    mask,
    timings: { ...partial, composeMs, encodeMs },
  };
}

/**
 * The header checks, with the whole file at hand: format, pixel limit, and whether the file can
 * hold the pixels it declares (a header that lies would cost a decode of the declared size).
 */
async function probe(bytes: Uint8Array): Promise<ProbedImage> {
  const probed = await probeImage(bytes, config.maxPixels);
  assertBytesCoverPixels(bytes, probed);
  return probed;
}

/**
 * Above this many pixels a progressive JPEG is decoded once, at the output size, and the model
 * input is taken from that decode. libjpeg holds a progressive file's coefficients for the whole
 * image whatever the shrink (~3 bytes per pixel: 36 MB at 12 MP, 190 MB at 64 MP), so the two
 * parallel decodes would hold it twice; below it the parallel path is faster and exact.
 */
const SINGLE_DECODE_PIXELS = 8_000_000;

async function segment(bytes: Uint8Array, options: OutputOptions): Promise<WorkerResult> {
  const started = performance.now();
  const probed = await probe(bytes);
  if (probed.width * probed.height > SINGLE_DECODE_PIXELS && isProgressiveJpeg(bytes)) {
    const decoded = await decodePhoto(bytes, probed, options.maxEdge, config.maxPixels);
    const modelInput = await modelInputFromPhoto(decoded, spec.input);
    const decodeMs = performance.now() - started;
    const { mask, inferenceMs, maskMs } = await infer(modelInput);
    const mask8: MaskImage = { width: spec.input.width, height: spec.input.height, data: mask };
    return finish(decoded, mask8, options, {
      decodeMs,
      inferenceMs,
      maskMs,
      outputDecodeWaitMs: 0,
    });
  }
  // Both decodes start now, on libvips' threads: inference needs only the small one, and the
  // output-size decode finishes beside it.
  const decoding = decodePhoto(bytes, probed, options.maxEdge, config.maxPixels);
  // Observed at once: if it fails while inference runs, that must not count as unhandled.
  decoding.catch(() => undefined);
  const modelInput = await decodeModelInput(bytes, probed, spec.input, config.maxPixels);
  const decodeMs = performance.now() - started;
  const { mask, inferenceMs, maskMs } = await infer(modelInput);
  const waitStarted = performance.now();
  const decoded = await decoding;
  const outputDecodeWaitMs = performance.now() - waitStarted;
  const mask8: MaskImage = { width: spec.input.width, height: spec.input.height, data: mask };
  return finish(decoded, mask8, options, { decodeMs, inferenceMs, maskMs, outputDecodeWaitMs });
}

async function render(
  bytes: Uint8Array,
  mask: MaskImage,
  options: OutputOptions,
): Promise<WorkerResult> {
  const started = performance.now();
  const probed = await probe(bytes);
  const decoded = await decodePhoto(bytes, probed, options.maxEdge, config.maxPixels);
  const decodeMs = performance.now() - started;
  return finish(decoded, mask, options, {
    decodeMs,
    inferenceMs: 0,
    maskMs: 0,
    outputDecodeWaitMs: 0,
  });
}

function reportFailure(id: number, error: unknown): void {
  const known = error instanceof PhotoRelayError ? error : undefined;
  if (known) {
    send({ type: 'failed', id, code: known.code, message: known.message });
    return;
  }
  // Anything else from sharp is about the image; anything else at all is a processing failure.
  const mapped = toImageError(error);
  const message = error instanceof Error ? error.message : String(error);
  send({
    type: 'failed',
    id,
    code: mapped.code === 'E_CORRUPT_IMAGE' ? 'E_PROCESSING_FAILED' : mapped.code,
    message: mapped.code === 'E_CORRUPT_IMAGE' ? `Processing failed: ${message}` : mapped.message,
  });
}

function handle(message: ToWorker): void {
  if (message.type === 'crash-for-test') {
    // Fault injection for the engine's crash-recovery test: dies like a native crash would.
    process.exit(70);
  }
  const job =
    message.type === 'segment'
      ? segment(message.bytes, message.options)
      : render(message.bytes, message.mask, message.options);
  job
    .then((result) => {
      // Copied, not transferred: sharp's output buffers are external memory and not detachable.
      send({ type: 'done', id: message.id, result });
    })
    .catch((error: unknown) => {
      reportFailure(message.id, error);
    });
}

async function start(): Promise<void> {
  const started = performance.now();
  try {
    session = await createSession(config.modelPath, config.threads);
  } catch (error) {
    send({ type: 'load-failed', message: error instanceof Error ? error.message : String(error) });
    return;
  }
  port!.on('message', handle);
  send({ type: 'ready', loadMs: performance.now() - started });
}

void start();
