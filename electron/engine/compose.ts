export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

export interface ComposeInput {
  /** Upright RGB pixels at output size. */
  rgb: RawImage;
  /** 8-bit mask at model resolution. */
  mask: RawImage;
  /** Solid background; omitted: transparent (RGBA out). */
  background?: [number, number, number];
}

/** Source taps for bilinear sampling with pixel centres aligned (as PIL and libvips do). */
function taps(sourceSize: number, targetSize: number) {
  const lower = new Int32Array(targetSize);
  const upper = new Int32Array(targetSize);
  const weight = new Float32Array(targetSize);
  const scale = sourceSize / targetSize;
  for (let i = 0; i < targetSize; i++) {
    const position = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), sourceSize - 1);
    const index = Math.floor(position);
    lower[i] = index;
    upper[i] = Math.min(index + 1, sourceSize - 1);
    weight[i] = position - index;
  }
  return { lower, upper, weight };
}

/**
 * One pass over the output: upscales the mask bilinearly and writes RGBA (or RGB on a solid
 * background). Doing both in one loop avoids a full-size mask buffer, and fully transparent
 * pixels get colour 0 so the PNG compresses 3–4× better (their colour is invisible anyway).
 */
export function composeCutout({ rgb, mask, background }: ComposeInput): RawImage {
  const { width, height } = rgb;
  const channels = background ? 3 : 4;
  const out = new Uint8Array(width * height * channels);
  const xs = taps(mask.width, width);
  const ys = taps(mask.height, height);
  const m = mask.data;
  const source = rgb.data;
  const [bgR, bgG, bgB] = background ?? [0, 0, 0];
  for (let y = 0; y < height; y++) {
    const row0 = ys.lower[y]! * mask.width;
    const row1 = ys.upper[y]! * mask.width;
    const fy = ys.weight[y]!;
    let p = y * width * 3;
    let o = y * width * channels;
    for (let x = 0; x < width; x++, p += 3, o += channels) {
      const x0 = xs.lower[x]!;
      const x1 = xs.upper[x]!;
      const a = m[row0 + x0]!;
      const b = m[row0 + x1]!;
      const c = m[row1 + x0]!;
      const d = m[row1 + x1]!;
      let alpha: number;
      if (a === b && a === c && a === d) {
        alpha = a;
      } else {
        const fx = xs.weight[x]!;
        const top = a + (b - a) * fx;
        const bottom = c + (d - c) * fx;
        alpha = (top + (bottom - top) * fy + 0.5) | 0;
      }
      if (background) {
        const t = alpha / 255;
        out[o] = (source[p]! * t + bgR * (1 - t) + 0.5) | 0;
        out[o + 1] = (source[p + 1]! * t + bgG * (1 - t) + 0.5) | 0;
        out[o + 2] = (source[p + 2]! * t + bgB * (1 - t) + 0.5) | 0;
      } else if (alpha !== 0) {
        out[o] = source[p]!;
        out[o + 1] = source[p + 1]!;
        out[o + 2] = source[p + 2]!;
        out[o + 3] = alpha;
      }
      // Transparent pixels keep the zero-filled colour.
    }
  }
  return { data: out, width, height, channels };
}
