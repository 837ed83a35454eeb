/**
 * `npm run bench:quality`: cut-out quality of the engine, through the relay's own code path
 * (`createEngine` + `engine.segment`), on the ground-truth sets in ../shared/quality-dev/ (or
 * `QUALITY_DIR`: one set with images/ and masks/, or a folder of such sets). Per set and
 * pipeline: mIoU, alpha MAE, images with IoU < 0.5, halo (bench/quality-metrics.ts) and median
 * ms per image; per pipeline: end-to-end ms on the 12 MP phone JPEG at display size against
 * bare u2netp inference measured in the same run. Prints tables, writes JSON to bench/results/.
 *
 * Env: QUALITY_DIR, QUALITY_PIPELINES (comma-separated names), QUALITY_SETS (comma-separated
 * set names), QUALITY_LIMIT (first N images per set, for a quick look), BENCH_RUNS (default 7).
 * The ground-truth files are read in place, never copied.
 */
import { writeResults } from './results.ts';
import { existsSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { PhotoRelayError } from '../shared/errors.ts';
import { modelsDir } from '../electron/config/paths.ts';
import { createEngine, type Engine, type SegmentOptions } from '../electron/engine/index.ts';
import { probeImage } from '../electron/engine/image-input.ts';
import { decodeModelInput } from '../electron/engine/pipeline.ts';
import { createSession } from '../electron/engine/session.ts';
import { buildInputTensor } from '../electron/engine/tensor.ts';
import { QUALITY_STEPS } from '../electron/engine/quality.ts';
import { getModelSpec } from '../electron/models/manifest.ts';
import { checkModel } from '../electron/models/model-files.ts';
import { batchPhotos, stagePhotos } from './photos.ts';
import {
  alphaOf,
  FAILED_SCORE,
  HALO_OPAQUE_MIN,
  HALO_RADII,
  haloMeasure,
  mean,
  median,
  resizeGrayBilinear,
  scoreMask,
  type Gray,
  type HaloScore,
  type MaskScore,
} from './quality-metrics.ts';

interface Pipeline {
  name: string;
  /** Passed through to `engine.segment`, merged over the scoring / timing options. */
  options: Record<string, unknown>;
}

/**
 * One line per pipeline. Keys the engine does not know yet (e.g. `mode`) are passed through
 * unchanged; a pipeline the engine refuses (E_BAD_OPTION) is reported as skipped.
 */
const STEP_NAMES = ['zoom', 'flip', 'person', 'levels', 'guided', 'decontaminate'] as const;

/** The quality pipeline with only `step` on. */
function onlyStep(step: (typeof STEP_NAMES)[number]): Record<string, boolean> {
  return Object.fromEntries(STEP_NAMES.map((name) => [name, name === step]));
}

const PIPELINES: Pipeline[] = [
  { name: 'fast', options: {} },
  { name: 'quality', options: { mode: 'quality' } },
  // Each step flipped against the quality pipeline (off where it is on, on where it is off:
  // person and guided are off by measurement, README), and each step alone on the single pass.
  ...STEP_NAMES.map((step) =>
    QUALITY_STEPS[step]
      ? { name: `no-${step}`, options: { mode: 'quality', steps: { [step]: false } } }
      : { name: `with-${step}`, options: { mode: 'quality', steps: { [step]: true } } },
  ),
  ...STEP_NAMES.map((step) => ({
    name: `only-${step}`,
    options: { mode: 'quality', steps: onlyStep(step) },
  })),
];

/** Run unless QUALITY_PIPELINES names others (`all` runs every one, the only-… ones included). */
const DEFAULT_PIPELINES = PIPELINES.map((p) => p.name).filter((name) => !name.startsWith('only-'));

const MODEL = 'u2netp';
const THREADS = 2;
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const DISPLAY_EDGE = 1920;
const LIMIT = process.env.QUALITY_LIMIT ? Number(process.env.QUALITY_LIMIT) : Infinity;
/** Native size (no maxEdge), transparent background: RGBA PNG. */
const SCORING_OPTIONS: Record<string, unknown> = { format: 'png' };
const TIMING_OPTIONS: Record<string, unknown> = { maxEdge: DISPLAY_EDGE };
const IMAGE_EXT = /\.(jpe?g|png|webp)$/i;

const round = (value: number, digits = 1) => Number(value.toFixed(digits));
const list = (value: string | undefined) =>
  value
    ?.split(',')
    .map((item) => item.trim())
    .filter(Boolean);
const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

// ---------------------------------------------------------------------------------------------
// Sets

interface Pair {
  id: string;
  image: string;
  mask: string;
}

interface GroundTruthSet {
  name: string;
  dir: string;
  pairs: Pair[];
}

const isDir = (dir: string) => existsSync(dir) && statSync(dir).isDirectory();
const isSetDir = (dir: string) => isDir(path.join(dir, 'images')) && isDir(path.join(dir, 'masks'));

async function loadSet(dir: string): Promise<GroundTruthSet> {
  const masks = new Map<string, string>();
  for (const entry of (await readdir(path.join(dir, 'masks'))).sort()) {
    if (IMAGE_EXT.test(entry)) masks.set(path.parse(entry).name, entry);
  }
  const pairs: Pair[] = [];
  for (const entry of (await readdir(path.join(dir, 'images'))).sort()) {
    if (!IMAGE_EXT.test(entry)) continue;
    const id = path.parse(entry).name;
    const mask = masks.get(id);
    if (!mask) {
      console.warn(`  ${path.basename(dir)}/${entry}: no mask, not scored`);
      continue;
    }
    pairs.push({ id, image: path.join(dir, 'images', entry), mask: path.join(dir, 'masks', mask) });
  }
  return { name: path.basename(dir), dir, pairs: pairs.slice(0, LIMIT) };
}

async function findSets(root: string): Promise<GroundTruthSet[]> {
  if (!isDir(root)) return [];
  if (isSetDir(root)) return [await loadSet(root)];
  const sets: GroundTruthSet[] = [];
  for (const entry of (await readdir(root)).sort()) {
    const dir = path.join(root, entry);
    if (isSetDir(dir)) sets.push(await loadSet(dir));
  }
  return sets;
}

// ---------------------------------------------------------------------------------------------
// Scoring

interface ImageResult extends MaskScore {
  id: string;
  /** Mean halo over the image's scored edge pixels (null: none). */
  halo: number | null;
  /** Sum of the halo distances (pooled into the set's halo). */
  haloSum: number;
  haloPixels: number;
  haloUnmatched: number;
  /** Wall time of `engine.segment` for this image. */
  ms: number | null;
  nativeSize: string;
  outputSize: string | null;
  resized: boolean;
  error?: string;
}

async function readMask(file: string): Promise<Gray> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  if (info.channels === 1) return { width: info.width, height: info.height, data };
  const n = info.width * info.height;
  const gray = new Uint8Array(n);
  for (let i = 0; i < n; i++) gray[i] = data[i * info.channels]!;
  return { width: info.width, height: info.height, data: gray };
}

async function scoreImage(engine: Engine, pair: Pair, pipeline: Pipeline): Promise<ImageResult> {
  const [bytes, mask] = await Promise.all([readFile(pair.image), readMask(pair.mask)]);
  const nativeSize = `${mask.width}×${mask.height}`;
  const options = { ...SCORING_OPTIONS, ...pipeline.options } as SegmentOptions;
  const started = performance.now();
  let result;
  try {
    result = await engine.segment(bytes, options);
  } catch (error) {
    // A refused option is the pipeline's problem, not the image's: let the caller skip it.
    if (error instanceof PhotoRelayError && error.code === 'E_BAD_OPTION') throw error;
    return failed(pair, nativeSize, errorText(error));
  }
  const ms = performance.now() - started;
  try {
    if (result.channels !== 4) {
      throw new Error(`output has ${result.channels} channels, no alpha to score`);
    }
    const decoded = await sharp(result.image)
      .ensureAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const rgba = { width: decoded.info.width, height: decoded.info.height, data: decoded.data };
    const resized = rgba.width !== mask.width || rgba.height !== mask.height;
    const alpha = resizeGrayBilinear(alphaOf(rgba), mask.width, mask.height);
    const score = scoreMask(alpha, mask);
    // The halo is a property of the output as delivered, so it is measured at the output size.
    const halo: HaloScore = haloMeasure(rgba);
    return {
      id: pair.id,
      ...score,
      halo: halo.mean,
      haloPixels: halo.pixels,
      haloUnmatched: halo.unmatched,
      haloSum: halo.sum,
      ms,
      nativeSize,
      outputSize: `${rgba.width}×${rgba.height}`,
      resized,
    };
  } catch (error) {
    return { ...failed(pair, nativeSize, errorText(error)), ms };
  }
}

function failed(pair: Pair, nativeSize: string, error: string): ImageResult {
  return {
    id: pair.id,
    ...FAILED_SCORE,
    halo: null,
    haloSum: 0,
    haloPixels: 0,
    haloUnmatched: 0,
    ms: null,
    nativeSize,
    outputSize: null,
    resized: false,
    error,
  };
}

interface SetResult {
  set: string;
  pipeline: string;
  images: number;
  failed: number;
  mIoU: number;
  mae: number;
  iouBelowHalf: number;
  /** Pooled over all scored edge pixels of the set. */
  halo: number | null;
  haloPixels: number;
  /** Edge pixels with no opaque pixel within 15×15 (not in the halo). */
  haloUnmatched: number;
  medianMsPerImage: number;
  resizedOutputs: number;
  worst: { id: string; iou: number; mae: number }[];
  perImage: ImageResult[];
}

function summarise(set: string, pipeline: string, perImage: ImageResult[]): SetResult {
  const haloPixels = perImage.reduce((total, r) => total + r.haloPixels, 0);
  const haloSum = perImage.reduce((total, r) => total + r.haloSum, 0);
  return {
    set,
    pipeline,
    images: perImage.length,
    failed: perImage.filter((r) => r.error !== undefined).length,
    mIoU: mean(perImage.map((r) => r.iou)),
    mae: mean(perImage.map((r) => r.mae)),
    iouBelowHalf: perImage.filter((r) => r.iou < 0.5).length,
    halo: haloPixels > 0 ? haloSum / haloPixels : null,
    haloPixels,
    haloUnmatched: perImage.reduce((total, r) => total + r.haloUnmatched, 0),
    medianMsPerImage: median(perImage.flatMap((r) => (r.ms === null ? [] : [r.ms]))),
    resizedOutputs: perImage.filter((r) => r.resized).length,
    worst: [...perImage]
      .sort((a, b) => a.iou - b.iou)
      .slice(0, 5)
      .map((r) => ({ id: r.id, iou: r.iou, mae: r.mae })),
    perImage,
  };
}

// ---------------------------------------------------------------------------------------------
// Timing

async function bareInference(): Promise<{ ms: number; photo: string }> {
  const spec = getModelSpec(MODEL);
  const status = await checkModel(modelsDir(), spec, false);
  if (status.state !== 'ok') throw new Error(`${MODEL} is not installed in ${modelsDir()}`);
  const phone = (await stagePhotos())[0]!;
  const probed = await probeImage(phone.bytes, 64e6);
  const input = buildInputTensor(
    await decodeModelInput(phone.bytes, probed, spec.input, 64e6),
    spec.input,
  );
  const { width, height } = spec.input;
  const dims = spec.input.layout === 'NCHW' ? [1, 3, height, width] : [1, height, width, 3];
  const session = await createSession(status.path, THREADS);
  const tensor = new ort.Tensor('float32', input, dims);
  await session.run({ [spec.input.name]: tensor });
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    await session.run({ [spec.input.name]: tensor });
    times.push(performance.now() - started);
  }
  await session.release();
  return { ms: median(times), photo: phone.source };
}

async function endToEnd(engine: Engine, bytes: Buffer, pipeline: Pipeline): Promise<number[]> {
  const options = { ...TIMING_OPTIONS, ...pipeline.options } as SegmentOptions;
  await engine.segment(bytes, options); // warm-up
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    await engine.segment(bytes, options);
    times.push(performance.now() - started);
  }
  return times;
}

// ---------------------------------------------------------------------------------------------
// Main

const root = process.env.QUALITY_DIR
  ? path.resolve(process.env.QUALITY_DIR)
  : path.resolve(import.meta.dirname, '../../shared/quality-dev');
const setFilter = list(process.env.QUALITY_SETS);
const sets = (await findSets(root)).filter(
  (set) => set.pairs.length > 0 && (!setFilter || setFilter.includes(set.name)),
);
if (sets.length === 0) {
  console.log(
    `bench:quality skipped: no ground-truth set (a folder with images/ and masks/) found at ${root}` +
      (setFilter ? ` matching QUALITY_SETS=${setFilter.join(',')}` : '') +
      '. Set QUALITY_DIR to one set or a folder of sets.',
  );
  process.exit(0);
}

const pipelineFilter = list(process.env.QUALITY_PIPELINES);
if (pipelineFilter) {
  const unknown = pipelineFilter.filter(
    (name) => name !== 'all' && !PIPELINES.some((p) => p.name === name),
  );
  if (unknown.length > 0) {
    console.error(
      `QUALITY_PIPELINES names unknown pipeline(s): ${unknown.join(', ')} (known: ${PIPELINES.map((p) => p.name).join(', ')})`,
    );
    process.exit(1);
  }
}
const chosen = pipelineFilter?.includes('all') ? PIPELINES.map((p) => p.name) : pipelineFilter;
const pipelines = PIPELINES.filter((p) => (chosen ?? DEFAULT_PIPELINES).includes(p.name));

console.log(
  `Quality benchmark — ${MODEL}, ${THREADS} threads, ${os.cpus().length} cores; sets: ${sets
    .map((s) => `${s.name} (${s.pairs.length})`)
    .join(', ')}; pipelines: ${pipelines.map((p) => p.name).join(', ')}`,
);

console.log(`Bare ${MODEL} inference (${RUNS} runs after 1 warm-up)…`);
const bare = await bareInference();
const engine = await createEngine({ model: MODEL, threads: THREADS });
const phoneBytes = (await stagePhotos())[0]!.bytes;
const BATCH = Number(process.env.BENCH_BATCH ?? 12);
const batch = await batchPhotos(BATCH);

const results: SetResult[] = [];
const timing: {
  pipeline: string;
  endToEndMs: number;
  bareInferenceMs: number;
  ratio: number;
  samplesMs: number[];
  /** Photos per second with BATCH real photos submitted at once (display output). */
  photosPerSecond: number;
}[] = [];
const skipped: { pipeline: string; reason: string }[] = [];

try {
  for (const pipeline of pipelines) {
    try {
      for (const set of sets) {
        const perImage: ImageResult[] = [];
        const started = performance.now();
        for (const [index, pair] of set.pairs.entries()) {
          perImage.push(await scoreImage(engine, pair, pipeline));
          const done = index + 1;
          const last = perImage.at(-1)!;
          if (last.error) console.warn(`  ${set.name}/${pair.id}: FAILED ${last.error}`);
          if (done % 10 === 0 || done === set.pairs.length) {
            console.log(
              `  [${pipeline.name}] ${set.name} ${done}/${set.pairs.length}  running mIoU ${mean(
                perImage.map((r) => r.iou),
              ).toFixed(3)}  ${((performance.now() - started) / 1000).toFixed(0)} s`,
            );
          }
        }
        results.push(summarise(set.name, pipeline.name, perImage));
      }
      console.log(
        `  [${pipeline.name}] 12 MP phone JPEG at maxEdge ${DISPLAY_EDGE}, ${RUNS} runs after 1 warm-up…`,
      );
      const samples = await endToEnd(engine, phoneBytes, pipeline);
      const e2e = median(samples);
      // Throughput: the engine pipelines photos (one's decode beside another's inference).
      const started = performance.now();
      await Promise.all(
        batch.map((photo) =>
          engine.segment(photo.bytes, { ...TIMING_OPTIONS, ...pipeline.options }),
        ),
      );
      const photosPerSecond = round(batch.length / ((performance.now() - started) / 1000), 2);
      timing.push({
        pipeline: pipeline.name,
        endToEndMs: round(e2e),
        bareInferenceMs: round(bare.ms),
        ratio: round(e2e / bare.ms, 2),
        samplesMs: samples.map((value) => round(value)),
        photosPerSecond,
      });
    } catch (error) {
      if (!(error instanceof PhotoRelayError && error.code === 'E_BAD_OPTION')) throw error;
      const reason = `${error.code}: ${error.message}`;
      console.warn(`  [${pipeline.name}] skipped, the engine refused it (${reason})`);
      skipped.push({ pipeline: pipeline.name, reason });
      // Drop any partial rows of this pipeline.
      for (let i = results.length - 1; i >= 0; i--) {
        if (results[i]!.pipeline === pipeline.name) results.splice(i, 1);
      }
    }
  }
} finally {
  await engine.dispose();
}

const fmt = (value: number | null, digits: number) =>
  value === null || Number.isNaN(value) ? 'n/a' : round(value, digits);

console.log(
  `\nCut-out quality (native size, transparent PNG; ${root}); halo: RGB distance of edge pixels (0 < α < ${HALO_OPAQUE_MIN}) to the opaque (α ≥ ${HALO_OPAQUE_MIN}) mean within 7×7 (else 15×15); halo cover: share of edge pixels with an opaque pixel in reach\n`,
);
console.table(
  results.map((r) => ({
    set: r.set,
    pipeline: r.pipeline,
    images: r.images,
    mIoU: fmt(r.mIoU, 3),
    MAE: fmt(r.mae, 3),
    'IoU<0.5': r.iouBelowHalf,
    halo: fmt(r.halo, 1),
    'halo cover %': fmt((100 * r.haloPixels) / (r.haloPixels + r.haloUnmatched || 1), 0),
    'ms/image': fmt(r.medianMsPerImage, 0),
    ...(r.failed > 0 ? { failed: r.failed } : {}),
  })),
);
console.log(
  `\n12 MP phone JPEG end to end (maxEdge ${DISPLAY_EDGE}), medians of ${RUNS} runs; ${bare.photo}\n`,
);
console.table(
  timing.map((t) => ({
    pipeline: t.pipeline,
    'e2e ms': t.endToEndMs,
    'bare ms': t.bareInferenceMs,
    'e2e/bare': t.ratio,
    [`photos/s (${BATCH} at once)`]: t.photosPerSecond,
    // fast: 0.8 / bare (one model run a photo); quality: 0.8 / (2 × bare) (two).
    target: round((t.pipeline === 'fast' ? 0.8 : 0.4) / (t.bareInferenceMs / 1000), 2),
  })),
);
console.log('\nWorst 5 images by IoU:');
for (const r of results) {
  console.log(
    `  ${r.set} / ${r.pipeline}: ${r.worst.map((w) => `${w.id} ${w.iou.toFixed(2)}`).join(', ')}`,
  );
}
const resized = results.filter((r) => r.resizedOutputs > 0);
for (const r of resized) {
  console.warn(
    `  note: ${r.set} / ${r.pipeline}: ${r.resizedOutputs} outputs were not at the native size (resized bilinearly before scoring)`,
  );
}
for (const s of skipped) console.log(`Skipped pipeline ${s.pipeline}: ${s.reason}`);

await writeResults('quality', {
  model: MODEL,
  threads: THREADS,
  runs: RUNS,
  displayEdge: DISPLAY_EDGE,
  groundTruth: root,
  sets: sets.map((s) => ({ name: s.name, dir: s.dir, images: s.pairs.length })),
  scoringOptions: SCORING_OPTIONS,
  halo: { opaqueMin: HALO_OPAQUE_MIN, windowRadii: HALO_RADII },
  timingOptions: TIMING_OPTIONS,
  pipelines: pipelines.map((p) => ({ name: p.name, options: p.options })),
  skipped,
  timingPhoto: bare.photo,
  results,
  timing,
});
