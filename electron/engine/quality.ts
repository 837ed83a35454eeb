import sharp from 'sharp';
import type { RawImage } from './raw-image.ts';
import {
  addOverlappingPerson,
  average,
  decontaminate,
  expandBox,
  guidedUpsample,
  luma,
  mirror,
  mirrorPixels,
  pasteCrop,
  pixelBox,
  planeFromBytes,
  resizePlane,
  resizePlaneToBytes,
  sharpenLevels,
  subjectBox,
  type Plane,
} from './refine.ts';

/**
 * The `quality` cut-out: the general model's mask refined by measured steps (bench:quality, the
 * README's table says what each bought and cost), then upscaled edge-aware and with the edge
 * colours decontaminated. `fast` is the single pass (rembg's u2netp, parity-tested).
 */
export const CUTOUT_MODES = ['quality', 'fast'] as const;
export type CutoutMode = (typeof CUTOUT_MODES)[number];
/**
 * The product's default (relay, dashboard, CLI), chosen by measurement: the README's Cut-out
 * quality section has the figures. The engine API itself defaults to `fast` (rembg parity).
 */
export const DEFAULT_CUTOUT_MODE: CutoutMode = 'quality';

/** CUTOUT_MODE as written by people (` Fast`), for the relay and the CLI alike: empty is unset. */
export function normaliseCutoutMode(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const mode = value.trim().toLowerCase();
  return mode === '' ? undefined : mode;
}

export interface QualitySteps {
  /** A second look at a small subject: the model again on a crop around it. */
  zoom: boolean;
  /** When there is no second look: the model on the mirrored photo too, masks averaged. */
  flip: boolean;
  /** The person model's mask added where it overlaps the general subject. */
  person: boolean;
  /** Near-certain values pushed to fully opaque / fully clear. */
  levels: boolean;
  /** Edge-aware upscale guided by the photo instead of bilinear. */
  guided: boolean;
  /** Foreground colour estimated for semi-transparent edge pixels (no halo). */
  decontaminate: boolean;
}

/** The steps `quality` runs: each on or off by measurement (README, Cut-out quality). */
export const QUALITY_STEPS: QualitySteps = {
  zoom: true,
  flip: true,
  person: false,
  levels: true,
  guided: false,
  decontaminate: true,
};

/** Tuned on the development sets (bench:quality); see the README for the figures. */
export const QUALITY_TUNING = {
  /** A second look when the subject's bounding box covers less than this share of the frame. */
  zoomBelowShare: 0.3,
  /** …and covers at least this share (below it the "subject" is a few specks of noise). */
  zoomMinShare: 0.002,
  /** The crop around the subject, grown by this share of its size on each side. */
  zoomMargin: 0.2,
  /** A person region is added when at least this share of it is already subject. */
  personMinOverlap: 0.4,
  /** …and adds only within this share of the working mask's long edge from the subject. */
  personReach: 0.015,
  /** …and only where the person model is this sure (its soft edge spreads over the background). */
  personConfident: 0.97,
  /** sharpenLevels' low end: values under it become 0, over 1 − it become 1. */
  levelsLow: 0.1,
  /** Long edge of the working mask (the stored mask), more when a second look needs it. */
  workingEdge: 640,
  maxWorkingEdge: 1280,
  guidedRadius: 3,
  guidedEpsilon: 1e-2,
  decontaminateRadius: 6,
} as const;

/** What the quality pipeline needs from the worker: its models, run in turn. */
export interface QualityModels {
  general: { width: number; height: number; run(rgb: Uint8Array): Promise<Uint8Array> };
  person?: { width: number; height: number; run(rgb: Uint8Array): Promise<Uint8Array> };
}

export interface QualityMask {
  /** Upright, at the working size: what is stored for later renders. */
  mask: Plane;
  /** Which steps acted on this photo (tests and logs). */
  acted: { zoom: boolean; flip: boolean; person: boolean };
  inferenceMs: number;
  refineMs: number;
}

/** Interleaved RGB resized with sharp (raw in, raw out). */
async function resizeRgb(
  image: RawImage,
  width: number,
  height: number,
  region?: { left: number; top: number; width: number; height: number },
): Promise<Uint8Array> {
  let chain = sharp(image.data, {
    raw: { width: image.width, height: image.height, channels: image.channels as 3 },
  });
  if (region) chain = chain.extract(region);
  return chain.resize(width, height, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
}

/** The working size for an upright photo of `width`×`height` (never larger than the photo). */
function workingSize(width: number, height: number, longEdge: number) {
  const scale = Math.min(1, longEdge / Math.max(width, height));
  return {
    width: Math.max(1, Math.round(width * scale)),
    height: Math.max(1, Math.round(height * scale)),
  };
}

/**
 * The refined mask. `modelInput` is the upright photo at the general model's input size (aspect
 * ignored, as rembg feeds it); `photo()` gives the upright photo at the output size, awaited only
 * when a second look needs its pixels.
 */
export async function qualityMask(
  modelInput: Uint8Array,
  photo: () => Promise<RawImage>,
  models: QualityModels,
  steps: QualitySteps,
): Promise<QualityMask> {
  const tuning = QUALITY_TUNING;
  const { general, person } = models;
  let inferenceMs = 0;
  const timed = async (run: () => Promise<Uint8Array>) => {
    const started = performance.now();
    const out = await run();
    inferenceMs += performance.now() - started;
    return out;
  };
  const first = planeFromBytes(
    await timed(() => general.run(modelInput)),
    general.width,
    general.height,
  );
  const refineStarted = performance.now();
  let waited = 0;
  const subject = subjectBox(first);
  // A blank or uniform photo's normalised output has specks over 0.5: no second look for those.
  const zoom =
    steps.zoom &&
    subject !== undefined &&
    subject.boxShare < tuning.zoomBelowShare &&
    subject.boxShare >= tuning.zoomMinShare;
  let mask: Plane;
  let acted = { zoom: false, flip: false, person: false };
  if (zoom) {
    const upright = await photo();
    const box = expandBox(subject.box, tuning.zoomMargin);
    const region = pixelBox(box, upright.width, upright.height);
    // The crop's detail is kept: the working mask grows so the crop gets about the model's size.
    const cropEdge = Math.max(box.right - box.left, box.bottom - box.top);
    const edge = Math.min(
      tuning.maxWorkingEdge,
      Math.max(tuning.workingEdge, general.width / cropEdge),
    );
    const size = workingSize(upright.width, upright.height, edge);
    const cropInput = await resizeRgb(upright, general.width, general.height, region);
    const waitStarted = performance.now();
    const second = planeFromBytes(
      await timed(() => general.run(cropInput)),
      general.width,
      general.height,
    );
    waited += performance.now() - waitStarted;
    // The crop's exact pixel box, in relative terms, so the paste lands where it was taken.
    const exact = {
      left: region.left / upright.width,
      top: region.top / upright.height,
      right: (region.left + region.width) / upright.width,
      bottom: (region.top + region.height) / upright.height,
    };
    mask = pasteCrop(resizePlane(first, size.width, size.height), second, exact);
    acted.zoom = true;
  } else {
    let merged = first;
    if (steps.flip) {
      const mirrored = mirrorPixels(modelInput, general.width, general.height, 3);
      const waitStarted = performance.now();
      const flipped = planeFromBytes(
        await timed(() => general.run(mirrored)),
        general.width,
        general.height,
      );
      waited += performance.now() - waitStarted;
      merged = average(first, mirror(flipped));
      acted.flip = true;
    }
    // The photo's size, once the mirrored pass (which needs only the model input) has run.
    const upright = await photo();
    const size = workingSize(upright.width, upright.height, tuning.workingEdge);
    mask = resizePlane(merged, size.width, size.height);
  }
  if (steps.person && person) {
    const personInput = await resizeRgb(
      { data: modelInput, width: general.width, height: general.height, channels: 3 },
      person.width,
      person.height,
    );
    const waitStarted = performance.now();
    const people = planeFromBytes(
      await timed(() => person.run(personInput)),
      person.width,
      person.height,
    );
    waited += performance.now() - waitStarted;
    const before = mask;
    mask = addOverlappingPerson(
      mask,
      resizePlane(people, mask.width, mask.height),
      tuning.personMinOverlap,
      tuning.personReach * Math.max(mask.width, mask.height),
      tuning.personConfident,
    );
    acted = { ...acted, person: mask !== before && changed(before, mask) };
  }
  if (steps.levels) mask = sharpenLevels(mask, tuning.levelsLow);
  return { mask, acted, inferenceMs, refineMs: performance.now() - refineStarted - waited };
}

function changed(a: Plane, b: Plane): boolean {
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return true;
  return false;
}

/**
 * The output's alpha and colours from the working mask: the upscale (guided by the photo, or
 * bilinear) and the edge colours. `upright` is the upright photo at the output size; its pixels
 * are changed in place where edge colours are cleaned (no full-size copy).
 */
export async function qualityFinish(
  upright: RawImage,
  working: Plane,
  steps: QualitySteps,
): Promise<{ rgb: Uint8Array; alpha: Uint8Array }> {
  const tuning = QUALITY_TUNING;
  const { width, height } = upright;
  const alpha = steps.guided
    ? guidedUpsample(
        working,
        luma(
          await resizeRgb(upright, working.width, working.height),
          working.width,
          working.height,
        ),
        upright.data,
        { width, height },
        tuning.guidedRadius,
        tuning.guidedEpsilon,
      )
    : resizePlaneToBytes(working, width, height);
  // The photo's pixels are this render's own (decoded for it): edge colours change in place.
  const rgb = upright.data;
  if (steps.decontaminate) {
    // The local colour means are smooth: half the working size is plenty, at a quarter the cost.
    const half = { width: Math.ceil(working.width / 2), height: Math.ceil(working.height / 2) };
    const smaller = await resizeRgb(upright, half.width, half.height);
    decontaminate(
      rgb,
      { data: alpha, width, height },
      smaller,
      resizePlane(working, half.width, half.height),
      Math.max(1, Math.round(tuning.decontaminateRadius / 2)),
    );
  }
  return { rgb, alpha };
}
