import { bilinearTaps } from './bilinear.ts';

/**
 * Mask arithmetic for the quality pipeline (quality.ts): pure functions on single-channel float
 * planes (0..1), all upright. Kept free of models and sharp so each step can be tested alone.
 */

export interface Plane {
  data: Float32Array;
  width: number;
  height: number;
}

/** A rectangle in relative coordinates (0..1 of the frame's width and height). */
export interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

export function plane(width: number, height: number, data?: Float32Array): Plane {
  return { data: data ?? new Float32Array(width * height), width, height };
}

/** An 8-bit mask as a 0..1 plane. */
export function planeFromBytes(bytes: Uint8Array, width: number, height: number): Plane {
  const data = new Float32Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = bytes[i]! / 255;
  return { data, width, height };
}

export function planeToBytes(source: Plane): Uint8Array {
  const out = new Uint8Array(source.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(clamp01(source.data[i]!) * 255);
  return out;
}

const clamp01 = (value: number) => (value <= 0 ? 0 : value >= 1 ? 1 : value);

/** Bilinear resize (pixel centres aligned). */
export function resizePlane(source: Plane, width: number, height: number): Plane {
  if (source.width === width && source.height === height) return source;
  const xs = bilinearTaps(source.width, width);
  const ys = bilinearTaps(source.height, height);
  const out = new Float32Array(width * height);
  const s = source.data;
  for (let y = 0; y < height; y++) {
    const top = ys.lower[y]! * source.width;
    const bottom = ys.upper[y]! * source.width;
    const fy = ys.weight[y]!;
    for (let x = 0; x < width; x++) {
      const l = xs.lower[x]!;
      const r = xs.upper[x]!;
      const fx = xs.weight[x]!;
      const a = s[top + l]! + (s[top + r]! - s[top + l]!) * fx;
      const b = s[bottom + l]! + (s[bottom + r]! - s[bottom + l]!) * fx;
      out[y * width + x] = a + (b - a) * fy;
    }
  }
  return { data: out, width, height };
}

/**
 * Bilinear resize straight to 8-bit (the full-size alpha): the source rows are widened once and
 * each output row blends two of them, so no full-size float plane is made (4 bytes a pixel at
 * up to 64 MP).
 */
export function resizePlaneToBytes(source: Plane, width: number, height: number): Uint8Array {
  const xs = bilinearTaps(source.width, width);
  const ys = bilinearTaps(source.height, height);
  const wide = new Float32Array(source.height * width);
  for (let y = 0; y < source.height; y++) {
    const row = y * source.width;
    for (let x = 0; x < width; x++) {
      const l = source.data[row + xs.lower[x]!]!;
      wide[y * width + x] = l + (source.data[row + xs.upper[x]!]! - l) * xs.weight[x]!;
    }
  }
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const top = ys.lower[y]! * width;
    const bottom = ys.upper[y]! * width;
    const fy = ys.weight[y]!;
    for (let x = 0, o = y * width; x < width; x++, o++) {
      const t = wide[top + x]!;
      const value = t + (wide[bottom + x]! - t) * fy;
      out[o] = value <= 0 ? 0 : value >= 1 ? 255 : (value * 255 + 0.5) | 0;
    }
  }
  return out;
}

/** The plane mirrored left to right. */
export function mirror(source: Plane): Plane {
  const { width, height } = source;
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) out[row + x] = source.data[row + width - 1 - x]!;
  }
  return { data: out, width, height };
}

/** Interleaved 8-bit pixels mirrored left to right (the model input for the flipped pass). */
export function mirrorPixels(
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (y * width + (width - 1 - x)) * channels;
      const to = (y * width + x) * channels;
      for (let c = 0; c < channels; c++) out[to + c] = data[from + c]!;
    }
  }
  return out;
}

export function average(a: Plane, b: Plane): Plane {
  const out = new Float32Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = (a.data[i]! + b.data[i]!) / 2;
  return { data: out, width: a.width, height: a.height };
}

/**
 * The bounding box of the subject (values ≥ threshold) and the share of the frame it covers,
 * or undefined when there is no subject at all.
 */
export function subjectBox(
  mask: Plane,
  threshold = 0.5,
): { box: Box; boxShare: number } | undefined {
  const { width, height, data } = mask;
  let left = width;
  let right = -1;
  let top = height;
  let bottom = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (data[y * width + x]! < threshold) continue;
      if (x < left) left = x;
      if (x > right) right = x;
      if (y < top) top = y;
      if (y > bottom) bottom = y;
    }
  }
  if (right < 0) return undefined;
  const box = {
    left: left / width,
    top: top / height,
    right: (right + 1) / width,
    bottom: (bottom + 1) / height,
  };
  return { box, boxShare: (box.right - box.left) * (box.bottom - box.top) };
}

/** `box` grown by `margin` of its own size on every side, clipped to the frame. */
export function expandBox(box: Box, margin: number): Box {
  const w = box.right - box.left;
  const h = box.bottom - box.top;
  return {
    left: Math.max(0, box.left - w * margin),
    top: Math.max(0, box.top - h * margin),
    right: Math.min(1, box.right + w * margin),
    bottom: Math.min(1, box.bottom + h * margin),
  };
}

/** A box in whole pixels of a `width`×`height` frame, at least one pixel each way. */
export function pixelBox(box: Box, width: number, height: number) {
  const left = Math.min(width - 1, Math.floor(box.left * width));
  const top = Math.min(height - 1, Math.floor(box.top * height));
  const right = Math.max(left + 1, Math.min(width, Math.ceil(box.right * width)));
  const bottom = Math.max(top + 1, Math.min(height, Math.ceil(box.bottom * height)));
  return { left, top, width: right - left, height: bottom - top };
}

/**
 * Puts the second look's mask (`crop`, covering `box` of the frame) back into `target`: inside
 * the box it replaces the first mask, with a linear blend over `feather` of the box's size at its
 * inner edges (where the box was not clipped by the frame), so no seam shows.
 */
export function pasteCrop(target: Plane, crop: Plane, box: Box, feather = 0.08): Plane {
  const { width, height } = target;
  const out = new Float32Array(target.data);
  const px = pixelBox(box, width, height);
  const resized = resizePlane(crop, px.width, px.height);
  const featherX = Math.max(1, px.width * feather);
  const featherY = Math.max(1, px.height * feather);
  const blendLeft = px.left > 0;
  const blendTop = px.top > 0;
  const blendRight = px.left + px.width < width;
  const blendBottom = px.top + px.height < height;
  for (let y = 0; y < px.height; y++) {
    const fromTop = blendTop ? Math.min(1, (y + 0.5) / featherY) : 1;
    const fromBottom = blendBottom ? Math.min(1, (px.height - y - 0.5) / featherY) : 1;
    const wy = Math.min(fromTop, fromBottom);
    for (let x = 0; x < px.width; x++) {
      const fromLeft = blendLeft ? Math.min(1, (x + 0.5) / featherX) : 1;
      const fromRight = blendRight ? Math.min(1, (px.width - x - 0.5) / featherX) : 1;
      const w = Math.min(wy, fromLeft, fromRight);
      const i = (px.top + y) * width + px.left + x;
      out[i] = out[i]! * (1 - w) + resized.data[y * px.width + x]! * w;
    }
  }
  return { data: out, width, height };
}

/**
 * Adds the person mask where it overlaps the general subject: each connected region of
 * `person` ≥ 0.5 is kept when at least `minOverlap` of it is already subject in `mask`, and there,
 * within `reach` pixels of the subject, the result is the larger of the two. A region that does
 * not touch the subject (a bystander) adds nothing, and a kept region adds only what lies next to
 * the subject (an arm, hair the general model lost), not a blob spreading over the background:
 * a plain union would put every passer-by on the wall.
 */
export function addOverlappingPerson(
  mask: Plane,
  person: Plane,
  minOverlap: number,
  reach = Infinity,
  confident = 0.5,
): Plane {
  const { width, height } = mask;
  const near = nearSubject(mask, reach);
  const labels = new Int32Array(width * height).fill(-1);
  const stack: number[] = [];
  const out = new Float32Array(mask.data);
  const p = person.data;
  let label = 0;
  const members: number[] = [];
  for (let start = 0; start < labels.length; start++) {
    if (labels[start] !== -1 || p[start]! < 0.5) continue;
    // One region, 4-connected.
    members.length = 0;
    let overlap = 0;
    labels[start] = label;
    stack.push(start);
    while (stack.length) {
      const i = stack.pop()!;
      members.push(i);
      if (mask.data[i]! >= 0.5) overlap++;
      const x = i % width;
      const neighbours = [
        x > 0 ? i - 1 : -1,
        x < width - 1 ? i + 1 : -1,
        i >= width ? i - width : -1,
        i + width < labels.length ? i + width : -1,
      ];
      for (const n of neighbours) {
        if (n < 0 || labels[n] !== -1 || p[n]! < 0.5) continue;
        labels[n] = label;
        stack.push(n);
      }
    }
    if (overlap / members.length >= minOverlap) {
      for (const i of members)
        if (p[i]! >= confident && p[i]! > out[i]! && (!near || near[i]! > 0)) out[i] = p[i]!;
    }
    label++;
  }
  return { data: out, width, height };
}

/** Where some subject pixel (≥ 0.5) lies within `reach` pixels (a square window), or undefined for no limit. */
function nearSubject(mask: Plane, reach: number): Float32Array | undefined {
  if (!Number.isFinite(reach)) return undefined;
  const binary = new Float32Array(mask.data.length);
  for (let i = 0; i < binary.length; i++) binary[i] = mask.data[i]! >= 0.5 ? 1 : 0;
  return boxMean(binary, mask.width, mask.height, Math.max(1, Math.round(reach)));
}

/**
 * Pushes the soft mask's near-certain values to 0 and 1: (v − low) / (1 − 2·low), clamped. The
 * 0.5 threshold is unchanged; the subject's inside becomes fully opaque and the background
 * fully clear, where u2netp leaves a few percent of either.
 */
export function sharpenLevels(source: Plane, low: number): Plane {
  const out = new Float32Array(source.data.length);
  const scale = 1 / (1 - 2 * low);
  for (let i = 0; i < out.length; i++) out[i] = clamp01((source.data[i]! - low) * scale);
  return { data: out, width: source.width, height: source.height };
}

/**
 * Mean over a (2r+1)² window, clipped at the borders (divided by the pixels inside): two passes
 * of running sums, O(1) per pixel whatever the radius.
 */
export function boxMean(source: Float32Array, width: number, height: number, r: number) {
  const horizontal = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let sum = 0;
    for (let x = 0; x <= Math.min(r, width - 1); x++) sum += source[row + x]!;
    for (let x = 0; x < width; x++) {
      const count = Math.min(width - 1, x + r) - Math.max(0, x - r) + 1;
      horizontal[row + x] = sum / count;
      const add = x + r + 1;
      const drop = x - r;
      if (add < width) sum += source[row + add]!;
      if (drop >= 0) sum -= source[row + drop]!;
    }
  }
  const out = new Float32Array(width * height);
  for (let x = 0; x < width; x++) {
    let sum = 0;
    for (let y = 0; y <= Math.min(r, height - 1); y++) sum += horizontal[y * width + x]!;
    for (let y = 0; y < height; y++) {
      const count = Math.min(height - 1, y + r) - Math.max(0, y - r) + 1;
      out[y * width + x] = sum / count;
      const add = y + r + 1;
      const drop = y - r;
      if (add < height) sum += horizontal[add * width + x]!;
      if (drop >= 0) sum -= horizontal[drop * width + x]!;
    }
  }
  return out;
}

/** Luma (0..1) of interleaved RGB. */
export function luma(rgb: Uint8Array, width: number, height: number): Plane {
  const out = new Float32Array(width * height);
  for (let i = 0, p = 0; i < out.length; i++, p += 3) {
    out[i] = (0.299 * rgb[p]! + 0.587 * rgb[p + 1]! + 0.114 * rgb[p + 2]!) / 255;
  }
  return { data: out, width, height };
}

/**
 * The mask at the photo's full output size, edge-aware: a guided filter (He, Sun and Tang) with
 * the photo's luma as the guide, computed at the mask's working size and applied at full size
 * (He and Sun's "fast guided filter": the linear coefficients are smooth, so they upsample
 * bilinearly). Edges follow the photo's edges instead of a bilinear blur of a small mask.
 */
export function guidedUpsample(
  mask: Plane,
  guideSmall: Plane,
  rgb: Uint8Array,
  full: { width: number; height: number },
  radius: number,
  epsilon: number,
): Uint8Array {
  const { width, height } = mask;
  const n = width * height;
  const I = guideSmall.data;
  const p = mask.data;
  const Ip = new Float32Array(n);
  const II = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    Ip[i] = I[i]! * p[i]!;
    II[i] = I[i]! * I[i]!;
  }
  const meanI = boxMean(I, width, height, radius);
  const meanP = boxMean(p, width, height, radius);
  const meanIp = boxMean(Ip, width, height, radius);
  const meanII = boxMean(II, width, height, radius);
  const a = new Float32Array(n);
  const b = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const variance = meanII[i]! - meanI[i]! * meanI[i]!;
    const covariance = meanIp[i]! - meanI[i]! * meanP[i]!;
    a[i] = covariance / (variance + epsilon);
    b[i] = meanP[i]! - a[i]! * meanI[i]!;
  }
  const meanA = boxMean(a, width, height, radius);
  const meanB = boxMean(b, width, height, radius);
  // The coefficients are widened to the full width once per source row, then each output row
  // blends two widened rows; the guide's luma is computed on the way and alpha written as bytes
  // (no full-size float planes).
  const { width: fullWidth, height: fullHeight } = full;
  const xs = bilinearTaps(width, fullWidth);
  const ys = bilinearTaps(height, fullHeight);
  const wideA = new Float32Array(height * fullWidth);
  const wideB = new Float32Array(height * fullWidth);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    const wideRow = y * fullWidth;
    for (let x = 0; x < fullWidth; x++) {
      const l = row + xs.lower[x]!;
      const r = row + xs.upper[x]!;
      const fx = xs.weight[x]!;
      wideA[wideRow + x] = meanA[l]! + (meanA[r]! - meanA[l]!) * fx;
      wideB[wideRow + x] = meanB[l]! + (meanB[r]! - meanB[l]!) * fx;
    }
  }
  const out = new Uint8Array(fullWidth * fullHeight);
  for (let y = 0; y < fullHeight; y++) {
    const top = ys.lower[y]! * fullWidth;
    const bottom = ys.upper[y]! * fullWidth;
    const fy = ys.weight[y]!;
    let o = y * fullWidth;
    let p3 = o * 3;
    for (let x = 0; x < fullWidth; x++, o++, p3 += 3) {
      const at = wideA[top + x]! + (wideA[bottom + x]! - wideA[top + x]!) * fy;
      const bt = wideB[top + x]! + (wideB[bottom + x]! - wideB[top + x]!) * fy;
      const guide = (0.299 * rgb[p3]! + 0.587 * rgb[p3 + 1]! + 0.114 * rgb[p3 + 2]!) / 255;
      const value = at * guide + bt;
      out[o] = value <= 0 ? 0 : value >= 1 ? 255 : (value * 255 + 0.5) | 0;
    }
  }
  return out;
}

/**
 * Foreground colours for the semi-transparent edge pixels, so the old background does not show
 * as a halo around hair and shoulders (blur fusion: Forte and Pitié, "Approximate Fast
 * Foreground Colour Estimation", 2021). At the working size the local foreground and background
 * colours are the alpha-weighted means around each pixel; at full size each edge pixel's colour
 * I becomes F = F̄ + α·(I − α·F̄ − (1 − α)·B̄), the colour that, composited over B̄ with α, gives
 * back I. Opaque and clear pixels are untouched. `rgb` is changed in place.
 */
export function decontaminate(
  rgb: Uint8Array,
  alpha: { data: Uint8Array; width: number; height: number },
  rgbSmall: Uint8Array,
  alphaSmall: Plane,
  radius: number,
): void {
  const { width, height } = alphaSmall;
  const n = width * height;
  const a = alphaSmall.data;
  const inverse = new Float32Array(n);
  for (let i = 0; i < n; i++) inverse[i] = 1 - a[i]!;
  const weightF = boxMean(a, width, height, radius);
  const weightB = boxMean(inverse, width, height, radius);
  // F̄ and B̄ interleaved per small pixel (r, g, b, r, g, b), for locality in the edge loop.
  const means = new Float32Array(n * 6);
  const channel = new Float32Array(n);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < n; i++) channel[i] = rgbSmall[i * 3 + c]! * a[i]!;
    const sumF = boxMean(channel, width, height, radius);
    for (let i = 0; i < n; i++) channel[i] = rgbSmall[i * 3 + c]! * inverse[i]!;
    const sumB = boxMean(channel, width, height, radius);
    for (let i = 0; i < n; i++) {
      means[i * 6 + c] = sumF[i]! / Math.max(weightF[i]!, 1e-4);
      means[i * 6 + 3 + c] = sumB[i]! / Math.max(weightB[i]!, 1e-4);
    }
  }
  // Only edge pixels are visited, so the small planes are sampled there rather than resized.
  const A = alpha.data;
  const xs = bilinearTaps(width, alpha.width);
  const ys = bilinearTaps(height, alpha.height);
  const sampled = new Float32Array(6);
  for (let y = 0; y < alpha.height; y++) {
    const top = ys.lower[y]! * width;
    const bottom = ys.upper[y]! * width;
    const fy = ys.weight[y]!;
    for (let x = 0, i = y * alpha.width; x < alpha.width; x++, i++) {
      const value8 = A[i]!;
      if (value8 === 0 || value8 === 255) continue;
      const k = value8 / 255;
      const l = xs.lower[x]!;
      const r = xs.upper[x]!;
      const fx = xs.weight[x]!;
      const p00 = (top + l) * 6;
      const p01 = (top + r) * 6;
      const p10 = (bottom + l) * 6;
      const p11 = (bottom + r) * 6;
      for (let c = 0; c < 6; c++) {
        const upper = means[p00 + c]! + (means[p01 + c]! - means[p00 + c]!) * fx;
        const lower = means[p10 + c]! + (means[p11 + c]! - means[p10 + c]!) * fx;
        sampled[c] = upper + (lower - upper) * fy;
      }
      for (let c = 0; c < 3; c++) {
        const f = sampled[c]!;
        const b = sampled[3 + c]!;
        const value = f + k * (rgb[i * 3 + c]! - k * f - (1 - k) * b);
        rgb[i * 3 + c] = value <= 0 ? 0 : value >= 255 ? 255 : (value + 0.5) | 0;
      }
    }
  }
}
