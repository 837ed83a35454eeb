import type { ModelSpec } from '../models/manifest.ts';

/**
 * Builds the model's input tensor from an interleaved RGB buffer already resized to the model's
 * input size, following the normalisation recorded in the manifest (rembg's for u2netp).
 */
export function buildInputTensor(rgb: Uint8Array, spec: ModelSpec['input']): Float32Array {
  const pixels = spec.width * spec.height;
  const { divideBy, mean, std, stdMultiplier } = spec.normalisation;
  let divisor = divideBy === 'max' ? 0 : divideBy;
  if (divideBy === 'max') {
    for (const value of rgb) if (value > divisor) divisor = value;
    divisor = Math.max(divisor, 1e-6);
  }
  // Per tensor channel: value = rgb[source] * scale + offset, folding the three steps into one.
  const sourceOf = spec.channelOrder === 'RGB' ? [0, 1, 2] : [2, 1, 0];
  const scale = std.map((s) => 1 / (divisor * s * stdMultiplier));
  const offset = mean.map((m, c) => -m / (std[c]! * stdMultiplier));
  const tensor = new Float32Array(pixels * 3);
  const planar = spec.layout === 'NCHW';
  for (let c = 0; c < 3; c++) {
    const source = sourceOf[c]!;
    const a = scale[c]!;
    const b = offset[c]!;
    if (planar) {
      const base = c * pixels;
      for (let i = 0, p = source; i < pixels; i++, p += 3) tensor[base + i] = rgb[p]! * a + b;
    } else {
      for (let i = 0, p = source; i < pixels; i++, p += 3) tensor[i * 3 + c] = rgb[p]! * a + b;
    }
  }
  return tensor;
}

/**
 * Turns the model's foreground map into an 8-bit mask at model resolution. Truncation (not
 * rounding) and min-max normalisation match rembg, which the parity test holds us to.
 */
export function outputToMask(output: Float32Array, spec: ModelSpec): Uint8Array {
  const { width, height } = spec.input;
  const pixels = width * height;
  const { channels, foregroundChannel, layout, minMaxNormalise } = spec.output;
  const at =
    layout === 'NCHW'
      ? (i: number) => output[foregroundChannel * pixels + i]!
      : (i: number) => output[i * channels + foregroundChannel]!;
  let low = 0;
  let range = 1;
  if (minMaxNormalise) {
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < pixels; i++) {
      const value = at(i);
      if (value < min) min = value;
      if (value > max) max = value;
    }
    low = min;
    range = max - min || 1;
  }
  const mask = new Uint8Array(pixels);
  for (let i = 0; i < pixels; i++) {
    const value = (at(i) - low) / range;
    mask[i] = value <= 0 ? 0 : value >= 1 ? 255 : Math.floor(value * 255);
  }
  return mask;
}
