import { PhotoRelayError } from '../../shared/errors.ts';
import type { ProbedImage } from './image-input.ts';

/**
 * The fewest bytes a whole file can have for the pixels its header declares, from the format's
 * own coding, or undefined where the format has no such floor. A file below it cannot hold the
 * data for its pixels: it is cut short or its header lies (a 100 KB JPEG that says 8000×7999).
 * Decoders accept such files with a warning and fill the rest with grey, after allocating for
 * the whole declared size (libjpeg's coefficient arrays for a progressive JPEG: ~3 bytes per
 * pixel), so refusing them up front keeps a few bytes from costing hundreds of megabytes.
 *
 * - JPEG with Huffman coding: each 8×8 block of a sequential frame codes at least two symbols
 *   (its DC difference and an AC/end-of-block symbol) of at least one bit each; a progressive
 *   frame codes at least the DC symbol of every block of every component (its AC scans can skip
 *   32,767 empty blocks in one symbol). Arithmetic-coded frames (SOF9–15) and hierarchical ones
 *   (SOF5–7) get no floor.
 * - PNG: deflate produces at most 258 bytes per two-bit match, 1032:1 at best, and every row
 *   carries a filter byte.
 * - WebP: none (its boolean coder spends less than a bit on an empty macroblock).
 */
export function minimumFileBytes(bytes: Uint8Array, probed: ProbedImage): number | undefined {
  if (probed.format === 'jpeg') return jpegMinimum(bytes, probed);
  if (probed.format === 'png') return pngMinimum(bytes, probed);
  return undefined;
}

/** Refuses, as truncated, a file too small for the pixels it declares (see minimumFileBytes). */
export function assertBytesCoverPixels(bytes: Uint8Array, probed: ProbedImage): void {
  const minimum = minimumFileBytes(bytes, probed);
  if (minimum === undefined || bytes.length >= minimum) return;
  throw new PhotoRelayError(
    'E_TRUNCATED_IMAGE',
    `The image says it is ${probed.width}×${probed.height} pixels, but the file is too small to hold them (${bytes.length} bytes, at least ${Math.ceil(minimum)} needed): it was cut short or is damaged. Send it again.`,
  );
}

/** Whether the bytes are a progressive JPEG (SOF2, SOF6, SOF10, SOF14). */
export function isProgressiveJpeg(bytes: Uint8Array): boolean {
  const marker = jpegFrame(bytes)?.marker;
  return marker === 0xc2 || marker === 0xc6 || marker === 0xca || marker === 0xce;
}

interface JpegFrame {
  marker: number;
  components: { h: number; v: number }[];
}

/** The first SOFn segment before the image data, or undefined when there is none. */
function jpegFrame(bytes: Uint8Array): JpegFrame | undefined {
  let offset = 2;
  while (offset + 4 <= bytes.length) {
    if (bytes[offset] !== 0xff) return undefined;
    let at = offset + 1;
    while (at < bytes.length && bytes[at] === 0xff) at++; // fill bytes
    const marker = bytes[at];
    if (marker === undefined || at + 2 >= bytes.length) return undefined;
    // Markers without a length: TEM, RSTn, SOI; EOI or SOS end the header.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      offset = at + 1;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) return undefined;
    const length = (bytes[at + 1]! << 8) | bytes[at + 2]!;
    if (length < 2) return undefined;
    const isFrame = marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
    if (isFrame) {
      const count = bytes[at + 8];
      if (count === undefined || count === 0 || at + 9 + 3 * count > bytes.length) return undefined;
      const components = Array.from({ length: count }, (_, i) => {
        const sampling = bytes[at + 10 + 3 * i]!;
        return { h: Math.max(1, sampling >> 4), v: Math.max(1, sampling & 0x0f) };
      });
      return { marker, components };
    }
    offset = at + 1 + length;
  }
  return undefined;
}

function jpegMinimum(bytes: Uint8Array, probed: ProbedImage): number | undefined {
  const frame = jpegFrame(bytes);
  if (!frame) return undefined;
  const { width, height } = probed;
  const hMax = Math.max(...frame.components.map((c) => c.h));
  const vMax = Math.max(...frame.components.map((c) => c.v));
  const blocks = ({ h, v }: { h: number; v: number }) =>
    Math.ceil(Math.ceil((width * h) / hMax) / 8) * Math.ceil(Math.ceil((height * v) / vMax) / 8);
  const sequential = frame.marker === 0xc0 || frame.marker === 0xc1;
  if (sequential) {
    return (2 * frame.components.reduce((sum, component) => sum + blocks(component), 0)) / 8;
  }
  if (frame.marker === 0xc2) {
    return frame.components.reduce((sum, component) => sum + blocks(component), 0) / 8;
  }
  if (frame.marker === 0xc3) return (width * height) / 8; // lossless: at least a bit per sample
  return undefined;
}

const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

function pngMinimum(bytes: Uint8Array, probed: ProbedImage): number | undefined {
  // IHDR comes first: length (4), type (4), width, height, bit depth, colour type.
  if (String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR' || bytes.length < 26) {
    return undefined;
  }
  const depth = bytes[24]!;
  const channels = PNG_CHANNELS[bytes[25]!];
  if (!channels || ![1, 2, 4, 8, 16].includes(depth)) return undefined;
  const rowBytes = Math.ceil((probed.width * channels * depth) / 8) + 1;
  return (probed.height * rowBytes) / 1032;
}
