import type { ErrorCode } from '../../shared/errors.ts';
import type { ModelSpec } from '../models/manifest.ts';
import type { InputFormat } from './image-input.ts';
import type { OutputOptions } from './options.ts';

/** Messages between the engine (main thread) and its worker. */

export interface WorkerConfig {
  modelPath: string;
  spec: ModelSpec;
  threads: number;
  maxPixels: number;
  /** The person model for the quality pipeline's person step, when it is installed. */
  person?: { modelPath: string; spec: ModelSpec };
}

export interface StageTimings {
  /**
   * Header probe + decode + orient + resize to the model input: the part inference waits for.
   * The output-size decode runs beside it and beside inference.
   */
  decodeMs: number;
  inferenceMs: number;
  /** Time still spent waiting for the output-size decode after inference (normally 0). */
  outputDecodeWaitMs: number;
  /** model output → 8-bit mask at model resolution. */
  maskMs: number;
  /** mask upscale to the output size fused with compositing (one pass). */
  composeMs: number;
  encodeMs: number;
}

export interface MaskImage {
  width: number;
  height: number;
  /** One byte per pixel, 0 = background, 255 = foreground. */
  data: Uint8Array;
}

export interface WorkerResult {
  image: Uint8Array;
  format: OutputOptions['format'];
  width: number;
  height: number;
  channels: number;
  inputFormat: InputFormat;
  originalWidth: number;
  originalHeight: number;
  mask: MaskImage;
  timings: StageTimings;
  /** `quality` mode: which of its model steps acted on this photo. */
  acted?: { zoom: boolean; flip: boolean; person: boolean };
}

export type ToWorker =
  | { type: 'segment'; id: number; bytes: Uint8Array; options: OutputOptions }
  | { type: 'render'; id: number; bytes: Uint8Array; mask: MaskImage; options: OutputOptions }
  | { type: 'crash-for-test' };

export type FromWorker =
  | { type: 'ready'; loadMs: number }
  | { type: 'load-failed'; message: string }
  | { type: 'done'; id: number; result: WorkerResult }
  | { type: 'failed'; id: number; code: ErrorCode; message: string };
