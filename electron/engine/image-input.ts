import { readFile } from 'node:fs/promises';
import sharp, { type Metadata } from 'sharp';
import { PhotoRelayError } from '../../shared/errors.ts';

export type InputFormat = 'jpeg' | 'png' | 'webp';

/** 64 MP: room for 48–50 MP phone cameras, a quarter of sharp's own 268 MP default. */
export const DEFAULT_MAX_PIXELS = 64_000_000;

function startsWith(bytes: Uint8Array, signature: number[], offset = 0): boolean {
  return signature.every((value, index) => bytes[offset + index] === value);
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, end));
}

const HEIF_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1']);

/**
 * Identifies the format from the leading bytes only; names and declared types lie. Only the three
 * accepted formats pass; HEIC and SVG get their own codes because their senders need advice.
 * (The `file-type` package needs Node 22, and three signatures do not justify it.)
 */
export function identifyFormat(bytes: Uint8Array): InputFormat {
  if (bytes.length === 0) throw new PhotoRelayError('E_EMPTY_FILE');
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  if (ascii(bytes, 4, 8) === 'ftyp') {
    const brand = ascii(bytes, 8, 12);
    if (HEIF_BRANDS.has(brand)) throw new PhotoRelayError('E_HEIC_UNSUPPORTED');
    if (brand === 'avif' || brand === 'avis') {
      throw new PhotoRelayError(
        'E_UNSUPPORTED_FORMAT',
        'AVIF images are not supported. Send a JPEG, PNG or WebP photo.',
      );
    }
  }
  const head = new TextDecoder('utf-8', { fatal: false })
    .decode(bytes.subarray(0, 512))
    .replace(/^\uFEFF/, '')
    .trimStart()
    .toLowerCase();
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) {
    throw new PhotoRelayError('E_SVG_UNSUPPORTED');
  }
  throw new PhotoRelayError('E_UNSUPPORTED_FORMAT');
}

/**
 * Whether the file ends before its format says it does: JPEG without its end-of-image marker,
 * PNG without IEND, WebP shorter than its RIFF size. Read from the bytes, because libvips' error
 * text is shared between threads and two failing decodes can swap or lose it.
 */
export function looksTruncated(bytes: Uint8Array, format: InputFormat): boolean {
  if (format === 'jpeg') {
    let end = bytes.length;
    while (end > 2 && bytes[end - 1] === 0) end--; // some writers pad with zeros
    return !(bytes[end - 2] === 0xff && bytes[end - 1] === 0xd9);
  }
  if (format === 'png') {
    return ascii(bytes, Math.max(0, bytes.length - 8), bytes.length - 4) !== 'IEND';
  }
  const riffSize = (bytes[4]! | (bytes[5]! << 8) | (bytes[6]! << 16) | (bytes[7]! << 24)) >>> 0;
  return bytes.length < riffSize + 8;
}

/**
 * Turns a decode failure into a catalog error: truncation is read from the bytes when they are
 * given; otherwise the patterns are the messages libvips/libjpeg/libpng/libwebp print.
 */
export function toImageError(
  error: unknown,
  input?: { bytes: Uint8Array; format: InputFormat },
): PhotoRelayError {
  if (error instanceof PhotoRelayError) return error;
  const text = error instanceof Error ? error.message : String(error);
  if (input && !/pixel limit/i.test(text) && looksTruncated(input.bytes, input.format)) {
    return new PhotoRelayError('E_TRUNCATED_IMAGE', undefined, { cause: error });
  }
  if (/pixel limit/i.test(text))
    return new PhotoRelayError('E_IMAGE_TOO_LARGE', undefined, { cause: error });
  if (/corrupt header|contains no image|unsupported image format|bad magic/i.test(text)) {
    return new PhotoRelayError('E_CORRUPT_IMAGE', undefined, { cause: error });
  }
  if (/premature end|truncated|unexpected end|not enough data|read error|out of data/i.test(text)) {
    return new PhotoRelayError('E_TRUNCATED_IMAGE', undefined, { cause: error });
  }
  return new PhotoRelayError('E_CORRUPT_IMAGE', undefined, { cause: error });
}

function megapixels(pixels: number): string {
  const value = pixels / 1e6;
  return `${value >= 10 ? value.toFixed(0) : value.toFixed(1)} MP`;
}

export interface ProbedImage {
  format: InputFormat;
  /** Dimensions as stored, before EXIF orientation. */
  width: number;
  height: number;
  /** EXIF orientation 1–8 (1 when absent). */
  orientation: number;
}

/**
 * Reads only the header: identifies the format and refuses decompression bombs before a single
 * pixel is decoded.
 */
export async function probeImage(bytes: Uint8Array, maxPixels: number): Promise<ProbedImage> {
  const format = identifyFormat(bytes);
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw toImageError(error);
  }
  const { width, height } = metadata;
  if (!width || !height) throw new PhotoRelayError('E_CORRUPT_IMAGE');
  if (width * height > maxPixels) {
    throw new PhotoRelayError(
      'E_IMAGE_TOO_LARGE',
      `The image is ${width}×${height} (${megapixels(width * height)}); the limit is ${megapixels(maxPixels)}. Send a smaller photo.`,
    );
  }
  return { format, width, height, orientation: metadata.orientation ?? 1 };
}

/**
 * probeImage for a photo received into a file, from its first bytes (`head`) where they hold the
 * header (JPEG and PNG nearly always do within 64 KB): the file is not read whole. A refusal by
 * signature or pixel count from the head is final; when the head alone cannot be read (a WebP, a
 * JPEG with a larger header) the file is read once, for the probe only. (sharp is not given the
 * path: its cache would keep the file open, and Windows cannot rename an open file.)
 */
export async function probeImageFile(
  file: string,
  head: Uint8Array,
  size: number,
  maxPixels: number,
): Promise<ProbedImage> {
  if (head.length >= size) return probeImage(head, maxPixels);
  identifyFormat(head);
  try {
    return await probeImage(head, maxPixels);
  } catch (error) {
    if (error instanceof PhotoRelayError && error.code === 'E_IMAGE_TOO_LARGE') throw error;
  }
  return probeImage(await readFile(file), maxPixels);
}
