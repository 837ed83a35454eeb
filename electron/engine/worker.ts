import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { PhotoRelayError } from '../../shared/errors.ts';
import { assertBytesCoverPixels, isProgressiveJpeg } from './declared-size.ts';
import { probeImage, toImageError, type ProbedImage } from './image-input.ts';
import { configureLibvips } from './libvips.ts';
import {
  QUALITY_STEPS,
  qualityFinish,
  qualityMask,
  type QualityModels,
  type QualitySteps,
} from './quality.ts';
import { planeFromBytes, planeToBytes } from './refine.ts';
import { createSession } from './session.ts';
import type { ModelSpec } from '../models/manifest.ts';
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
/**
 * The person model for the quality pipeline, when it is installed: loaded on its first use (the
 * person step is off by default, so most relays never load it).
 */
let personSession: Promise<ort.InferenceSession> | undefined;
/** Serialises inference: one run at a time on the sessions, in arrival order. */
let inferenceTail: Promise<unknown> = Promise.resolve();

/** One model run: RGB at the model's input size in, 8-bit mask at model resolution out. */
function runModel(
  on: ort.InferenceSession,
  model: ModelSpec,
  modelInput: Uint8Array,
): Promise<{ mask: Uint8Array; inferenceMs: number; maskMs: number }> {
  const tensorData = buildInputTensor(modelInput, model.input);
  const { width, height } = model.input;
  const dims = model.input.layout === 'NCHW' ? [1, 3, height, width] : [1, height, width, 3];
  const run = inferenceTail.then(async () => {
    const started = performance.now();
    const outputs = await on.run({
      [model.input.name]: new ort.Tensor('float32', tensorData, dims),
    });
    const inferenceMs = performance.now() - started;
    const output = outputs[model.output.name];
    if (!output)
      throw new PhotoRelayError(
        'E_PROCESSING_FAILED',
        `Model gave no output "${model.output.name}".`,
      );
    const maskStarted = performance.now();
    const mask = outputToMask(output.data as Float32Array, model);
    for (const tensor of Object.values(outputs)) tensor.dispose();
    return { mask, inferenceMs, maskMs: performance.now() - maskStarted };
  });
  inferenceTail = run.catch(() => undefined);
  return run;
}

const infer = (modelInput: Uint8Array) => runModel(session, spec, modelInput);

function qualityModels(): QualityModels {
  const person = config.person;
  return {
    general: {
      width: spec.input.width,
      height: spec.input.height,
      run: async (rgb) => (await infer(rgb)).mask,
    },
    person: person && {
      width: person.spec.input.width,
      height: person.spec.input.height,
      run: async (rgb) => {
        // A failed load is tried again next time rather than kept.
        personSession ??= createSession(person.modelPath, config.threads).catch(
          (error: unknown) => {
            personSession = undefined;
            throw error;
          },
        );
        return (await runModel(await personSession, person.spec, rgb)).mask;
      },
    },
  };
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

const singleDecode = (bytes: Uint8Array, probed: ProbedImage) =>
  probed.width * probed.height > SINGLE_DECODE_PIXELS && isProgressiveJpeg(bytes);

async function segment(bytes: Uint8Array, options: OutputOptions): Promise<WorkerResult> {
  const started = performance.now();
  const probed = await probe(bytes);
  if (options.mode === 'quality') return segmentQuality(bytes, probed, options, started);
  if (singleDecode(bytes, probed)) {
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

function stepsOf(options: OutputOptions): QualitySteps {
  return { ...QUALITY_STEPS, ...options.steps };
}

async function segmentQuality(
  bytes: Uint8Array,
  probed: ProbedImage,
  options: OutputOptions,
  started: number,
): Promise<WorkerResult> {
  const decoding = decodePhoto(bytes, probed, options.maxEdge, config.maxPixels, {
    upright: true,
  });
  decoding.catch(() => undefined);
  // The same rule as the fast path: a large progressive JPEG is decoded once (see
  // SINGLE_DECODE_PIXELS), the model input taken from the upright output-size decode.
  const modelInput = singleDecode(bytes, probed)
    ? await modelInputFromPhoto(await decoding, spec.input)
    : await decodeModelInput(bytes, probed, spec.input, config.maxPixels);
  const decodeMs = performance.now() - started;
  const photo = async () => (await decoding).rgb;
  const steps = stepsOf(options);
  const refined = await qualityMask(modelInput, photo, qualityModels(), steps);
  const decoded = await decoding;
  const mask: MaskImage = {
    width: refined.mask.width,
    height: refined.mask.height,
    data: planeToBytes(refined.mask),
  };
  const result = await finishQuality(decoded, mask, options, {
    decodeMs,
    inferenceMs: refined.inferenceMs,
    maskMs: refined.refineMs,
    outputDecodeWaitMs: 0,
  });
  return { ...result, acted: refined.acted };
}

/** Compose and encode from the working mask: guided upscale and clean edge colours first. */
async function finishQuality(
  decoded: DecodedPhoto,
  mask: MaskImage,
  options: OutputOptions,
  partial: Omit<StageTimings, 'composeMs' | 'encodeMs'>,
): Promise<WorkerResult> {
  const steps = stepsOf(options);
  const upright = decoded.rgb; // decoded upright (decodePhoto's `upright`)
  const finishStarted = performance.now();
  const { rgb, alpha } = await qualityFinish(
    upright,
    planeFromBytes(mask.data, mask.width, mask.height),
    steps,
  );
  const full: DecodedPhoto = {
    ...decoded,
    rgb: { data: rgb, width: upright.width, height: upright.height, channels: 3 },
    orientation: 1,
  };
  const fullMask: MaskImage = { width: upright.width, height: upright.height, data: alpha };
  const refineMs = performance.now() - finishStarted;
  const result = await finish(full, fullMask, options, partial);
  result.timings.composeMs += refineMs; // the upscale and edge colours are part of compositing
  // The stored mask is the working one: a later render (full size) refines from it again.
  return { ...result, mask };
}

async function render(
  bytes: Uint8Array,
  mask: MaskImage,
  options: OutputOptions,
): Promise<WorkerResult> {
  const started = performance.now();
  const probed = await probe(bytes);
  const upright = options.mode === 'quality';
  const decoded = await decodePhoto(bytes, probed, options.maxEdge, config.maxPixels, { upright });
  const decodeMs = performance.now() - started;
  if (upright) {
    return finishQuality(decoded, mask, options, {
      decodeMs,
      inferenceMs: 0,
      maskMs: 0,
      outputDecodeWaitMs: 0,
    });
  }
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
