/**
 * Pure cut-out quality metrics for `npm run bench:quality` (no I/O). The IoU / MAE definitions
 * follow ../shared/quality-dev/README.md exactly; the halo measure is ours (see `haloMeasure`).
 */

import { bilinearTaps } from '../electron/engine/bilinear.ts';

export interface Gray {
  width: number;
  height: number;
  /** One byte per pixel. */
  data: Uint8Array;
}

export interface Rgba {
  width: number;
  height: number;
  /** Four bytes per pixel, R G B A, colour not premultiplied. */
  data: Uint8Array;
}

export interface MaskScore {
  /** |P ∩ G| / |P ∪ G| with P = alpha ≥ 128, G = mask ≥ 128; 1 when both are empty. */
  iou: number;
  /** Mean over all pixels of |alpha/255 − mask/255|, soft alpha. */
  mae: number;
}

/** Scores a soft alpha against a ground-truth mask of the same size. */
export function scoreMask(alpha: Gray, mask: Gray): MaskScore {
  if (alpha.width !== mask.width || alpha.height !== mask.height) {
    throw new Error(
      `alpha ${alpha.width}×${alpha.height} and mask ${mask.width}×${mask.height} differ in size`,
    );
  }
  const n = mask.width * mask.height;
  let intersection = 0;
  let union = 0;
  let absSum = 0;
  const a = alpha.data;
  const m = mask.data;
  for (let i = 0; i < n; i++) {
    const av = a[i]!;
    const mv = m[i]!;
    const p = av >= 128;
    const g = mv >= 128;
    if (p && g) intersection++;
    if (p || g) union++;
    absSum += av > mv ? av - mv : mv - av;
  }
  return { iou: union === 0 ? 1 : intersection / union, mae: n === 0 ? 0 : absSum / 255 / n };
}

/** The score a failed or missing prediction gets (README: IoU 0, MAE 1). */
export const FAILED_SCORE: MaskScore = { iou: 0, mae: 1 };

/**
 * Bilinear resize of a one-channel image with pixel centres aligned (as libvips and PIL do),
 * for the should-not-happen case of an output that is not at the native size.
 */
export function resizeGrayBilinear(source: Gray, width: number, height: number): Gray {
  if (source.width === width && source.height === height) return source;
  const xs = bilinearTaps(source.width, width);
  const ys = bilinearTaps(source.height, height);
  const out = new Uint8Array(width * height);
  const s = source.data;
  const sw = source.width;
  for (let y = 0; y < height; y++) {
    const top = ys.lower[y]! * sw;
    const bottom = ys.upper[y]! * sw;
    const wy = ys.weight[y]!;
    for (let x = 0; x < width; x++) {
      const x0 = xs.lower[x]!;
      const x1 = xs.upper[x]!;
      const wx = xs.weight[x]!;
      const t = s[top + x0]! + (s[top + x1]! - s[top + x0]!) * wx;
      const b = s[bottom + x0]! + (s[bottom + x1]! - s[bottom + x0]!) * wx;
      out[y * width + x] = Math.round(t + (b - t) * wy);
    }
  }
  return { width, height, data: out };
}

/** The alpha channel of RGBA pixels. */
export function alphaOf(image: Rgba): Gray {
  const n = image.width * image.height;
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = image.data[i * 4 + 3]!;
  return { width: image.width, height: image.height, data };
}

export interface HaloScore {
  /** Sum over the scored edge pixels of the colour distance (for pooling over a set). */
  sum: number;
  /** Edge pixels scored (edge alpha with an opaque pixel within the widest window). */
  pixels: number;
  /** Edge pixels with no opaque pixel within the widest window: not scored. */
  unmatched: number;
  /** sum / pixels, or null when the image has no scored edge pixel. */
  mean: number | null;
}

/** Window radii: 7×7 first, 15×15 where the 7×7 window holds no opaque pixel. */
export const HALO_RADII = [3, 7] as const;

/**
 * Alpha from which a pixel counts as opaque for the halo measure. Not 255: the engine's mask
 * truncates `value × 255` after min-max normalisation (rembg parity, electron/engine/tensor.ts),
 * so only the single maximum pixel of the model map reaches 255 and a cut-out's interior sits
 * at 250–254 (measured: 2–4 pixels at 255 per image). With 255 the "edge" would be the whole
 * foreground and the reference a speck. 250 (98 % opacity) keeps the interior opaque.
 */
export const HALO_OPAQUE_MIN = 250;

export interface HaloOptions {
  opaqueMin?: number;
  /** Window half-sizes, tried in order until one holds an opaque pixel. */
  radii?: readonly number[];
}

/**
 * Halo measure — lower is better. Edge pixels are the semi-transparent ones,
 * 0 < alpha < `opaqueMin`; opaque pixels have alpha ≥ `opaqueMin` (default `HALO_OPAQUE_MIN`;
 * pass 255 for the strict "alpha = 255" reading). For every edge pixel: the Euclidean distance
 * in RGB (channels on the 0–255 scale, so 0…≈441) between that pixel's output colour and the
 * mean colour of the opaque output pixels near it: those inside the 7×7 window centred on it,
 * or, when that window holds none, inside the 15×15 window. Edge pixels with no opaque pixel in
 * the 15×15 window either are not scored (counted in `unmatched`). The image's halo is the mean
 * over its scored edge pixels; a set's halo pools all scored edge pixels of the set
 * (Σ sum / Σ pixels). Every edge pixel weighs the same, whatever its alpha.
 *
 * It captures background colour bleeding into the edge: a cut-out whose fringe keeps the dark
 * or coloured background of the photo scores high, one whose fringe carries the foreground's
 * own colour scores low. Colour is the output's straight (non-premultiplied) RGB.
 *
 * Cost: one pass to build integral images of opaque-masked R, G, B and the opaque count, then
 * O(1) per edge pixel.
 */
export function haloMeasure(
  image: Rgba,
  { opaqueMin = HALO_OPAQUE_MIN, radii = HALO_RADII }: HaloOptions = {},
): HaloScore {
  const { width, height, data } = image;
  const stride = width + 1;
  const size = stride * (height + 1);
  // Float64: sums of up to 255 × pixels stay exact far beyond any photo size.
  const sr = new Float64Array(size);
  const sg = new Float64Array(size);
  const sb = new Float64Array(size);
  const sc = new Float64Array(size);
  let edgeCount = 0;
  for (let y = 0; y < height; y++) {
    let rowR = 0;
    let rowG = 0;
    let rowB = 0;
    let rowC = 0;
    const above = y * stride;
    const here = (y + 1) * stride;
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 4;
      const alpha = data[p + 3]!;
      if (alpha >= opaqueMin) {
        rowR += data[p]!;
        rowG += data[p + 1]!;
        rowB += data[p + 2]!;
        rowC++;
      } else if (alpha > 0) edgeCount++;
      sr[here + x + 1] = sr[above + x + 1]! + rowR;
      sg[here + x + 1] = sg[above + x + 1]! + rowG;
      sb[here + x + 1] = sb[above + x + 1]! + rowB;
      sc[here + x + 1] = sc[above + x + 1]! + rowC;
    }
  }
  let sum = 0;
  let pixels = 0;
  let unmatched = 0;
  if (edgeCount > 0) {
    const boxSum = (table: Float64Array, x0: number, y0: number, x1: number, y1: number) =>
      table[y1 * stride + x1]! -
      table[y0 * stride + x1]! -
      table[y1 * stride + x0]! +
      table[y0 * stride + x0]!;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const p = (y * width + x) * 4;
        const alpha = data[p + 3]!;
        if (alpha === 0 || alpha >= opaqueMin) continue;
        let matched = false;
        for (const radius of radii) {
          // Half-open box [x0, x1) × [y0, y1) in integral-image coordinates.
          const x0 = Math.max(0, x - radius);
          const y0 = Math.max(0, y - radius);
          const x1 = Math.min(width, x + radius + 1);
          const y1 = Math.min(height, y + radius + 1);
          const count = boxSum(sc, x0, y0, x1, y1);
          if (count === 0) continue;
          const dr = data[p]! - boxSum(sr, x0, y0, x1, y1) / count;
          const dg = data[p + 1]! - boxSum(sg, x0, y0, x1, y1) / count;
          const db = data[p + 2]! - boxSum(sb, x0, y0, x1, y1) / count;
          sum += Math.sqrt(dr * dr + dg * dg + db * db);
          pixels++;
          matched = true;
          break;
        }
        if (!matched) unmatched++;
      }
    }
  }
  return { sum, pixels, unmatched, mean: pixels > 0 ? sum / pixels : null };
}

export const median = (values: number[]): number => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

export const mean = (values: number[]): number =>
  values.length === 0
    ? Number.NaN
    : values.reduce((total, value) => total + value, 0) / values.length;
