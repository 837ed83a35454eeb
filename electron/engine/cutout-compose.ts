import { bilinearTaps } from './bilinear.ts';
import { orientationView } from './orientation.ts';
import type { RawImage } from './raw-image.ts';

/** RGBA bytes can be written as one 32-bit word only where the byte order is known. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export interface ComposeInput {
  /** RGB pixels at output size, as stored (before EXIF orientation). */
  rgb: RawImage;
  /** EXIF orientation of `rgb`, applied here by index arithmetic (1 = upright). */
  orientation: number;
  /** Upright 8-bit mask at model resolution. */
  mask: RawImage;
  /**
   * A solid colour, or RGB pixels at the upright output size (a background image); omitted:
   * transparent (RGBA out).
   */
  background?: [number, number, number] | Uint8Array;
}

interface WideRow {
  values: Float32Array;
  /** First and last output column with a non-zero value (first > last: the row is empty). */
  first: number;
  last: number;
}

/**
 * One pass over the upright output: upscales the mask (separable bilinear; each mask row is
 * widened once), reads the colour through the orientation mapping, and writes RGBA (or RGB on a
 * solid background). No full-size mask or rotated copy is ever made. Only the columns where the
 * mask is non-zero are visited: elsewhere the pixel is fully transparent, and its colour stays at
 * the zero the buffer starts with (colour 0 makes the PNG 3–4× smaller). With ~80 % of a typical
 * cut-out transparent, that skip is most of the speed.
 */
export function composeCutout({ rgb, orientation, mask, background }: ComposeInput): RawImage {
  const view = orientationView(orientation, rgb.width, rgb.height);
  const { width, height } = view;
  const channels = background ? 3 : 4;
  const out = new Uint8Array(width * height * channels);
  if (background instanceof Uint8Array) out.set(background.subarray(0, out.length));
  else if (background) Buffer.from(out.buffer).fill(Buffer.from(background));
  const xs = bilinearTaps(mask.width, width);
  const ys = bilinearTaps(mask.height, height);
  const source = rgb.data;
  const rows = new Map<number, WideRow>();
  const wideRow = (row: number): WideRow => {
    let wide = rows.get(row);
    if (!wide) {
      const values = new Float32Array(width);
      const offset = row * mask.width;
      let first = width;
      let last = -1;
      for (let x = 0; x < width; x++) {
        const a = mask.data[offset + xs.lower[x]!]!;
        const b = mask.data[offset + xs.upper[x]!]!;
        const value = a + (b - a) * xs.weight[x]!;
        values[x] = value;
        if (value >= 0.5) {
          if (first === width) first = x;
          last = x;
        }
      }
      wide = { values, first, last };
      rows.set(row, wide);
      rows.delete(row - 2); // rows are visited in order; two are live at a time
    }
    return wide;
  };
  const [bgR, bgG, bgB] = background instanceof Uint8Array ? [0, 0, 0] : (background ?? [0, 0, 0]);
  const bgPixels = background instanceof Uint8Array ? background : undefined;

  // Transparent output (the display path) gets its own tight loop: one 32-bit store per visible
  // pixel instead of four byte stores and no per-pixel background branch.
  const out32 = !background && LITTLE_ENDIAN ? new Uint32Array(out.buffer) : undefined;

  for (let v = 0; v < height; v++) {
    const top = wideRow(ys.lower[v]!);
    const bottom = wideRow(ys.upper[v]!);
    // Outside both rows' non-zero spans, every blend of them rounds to 0.
    const first = Math.min(top.first, bottom.first);
    const last = Math.max(top.last, bottom.last);
    if (first > last) continue;
    const topValues = top.values;
    const bottomValues = bottom.values;
    const fy = ys.weight[v]!;
    const du = view.du;
    let stored = view.base + v * view.dv + first * du;
    if (out32) {
      let o = v * width + first;
      for (let u = first; u <= last; u++, stored += du, o++) {
        const t = topValues[u]!;
        const alpha = (t + (bottomValues[u]! - t) * fy + 0.5) | 0;
        if (alpha === 0) continue;
        const p = stored * 3;
        out32[o] =
          (source[p]! | (source[p + 1]! << 8) | (source[p + 2]! << 16) | (alpha << 24)) >>> 0;
      }
      continue;
    }
    let o = (v * width + first) * channels;
    for (let u = first; u <= last; u++, stored += du, o += channels) {
      const t = topValues[u]!;
      const alpha = (t + (bottomValues[u]! - t) * fy + 0.5) | 0;
      if (alpha === 0) continue;
      const p = stored * 3;
      if (background) {
        const k = alpha / 255;
        const r = bgPixels ? bgPixels[o]! : bgR;
        const g = bgPixels ? bgPixels[o + 1]! : bgG;
        const b = bgPixels ? bgPixels[o + 2]! : bgB;
        out[o] = (source[p]! * k + r * (1 - k) + 0.5) | 0;
        out[o + 1] = (source[p + 1]! * k + g * (1 - k) + 0.5) | 0;
        out[o + 2] = (source[p + 2]! * k + b * (1 - k) + 0.5) | 0;
      } else {
        out[o] = source[p]!;
        out[o + 1] = source[p + 1]!;
        out[o + 2] = source[p + 2]!;
        out[o + 3] = alpha;
      }
    }
  }
  return { data: out, width, height, channels };
}
