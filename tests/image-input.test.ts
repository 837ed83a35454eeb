import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { PhotoRelayError, ERROR_CATALOG } from '../shared/errors.ts';
import { identifyFormat, probeImage, toImageError } from '../electron/engine/image-input.ts';
import { syntheticPhoto } from './helpers.ts';

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    return error instanceof PhotoRelayError
      ? error.code
      : `not a PhotoRelayError: ${String(error)}`;
  }
  return undefined;
}

describe('identifyFormat (from bytes, never names)', () => {
  test('accepts JPEG, PNG and WebP by signature', async () => {
    expect(identifyFormat(await syntheticPhoto(64, 48, 'jpeg'))).toBe('jpeg');
    expect(identifyFormat(await syntheticPhoto(64, 48, 'png'))).toBe('png');
    expect(identifyFormat(await syntheticPhoto(64, 48, 'webp'))).toBe('webp');
  });

  test('refuses empty files, text, GIF, SVG and HEIC with their own codes', async () => {
    expect(codeOf(() => identifyFormat(new Uint8Array()))).toBe('E_EMPTY_FILE');
    expect(codeOf(() => identifyFormat(Buffer.from('hello, not an image')))).toBe(
      'E_UNSUPPORTED_FORMAT',
    );
    const gif = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#f00' } })
      .gif()
      .toBuffer();
    expect(codeOf(() => identifyFormat(gif))).toBe('E_UNSUPPORTED_FORMAT');
    const svg = Buffer.from(
      '\uFEFF  <?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
    );
    expect(codeOf(() => identifyFormat(svg))).toBe('E_SVG_UNSUPPORTED');
    // The first box of every iPhone HEIC: size, 'ftyp', major brand 'heic'.
    const heic = Buffer.from([
      0,
      0,
      0,
      0x18,
      ...Buffer.from('ftypheic'),
      0,
      0,
      0,
      0,
      ...Buffer.from('mif1heic'),
    ]);
    expect(codeOf(() => identifyFormat(heic))).toBe('E_HEIC_UNSUPPORTED');
    expect(ERROR_CATALOG.E_HEIC_UNSUPPORTED.message).toMatch(/JPEG/);
  });
});

describe('probeImage', () => {
  test('reads size and orientation from the header', async () => {
    const rotated = await sharp(await syntheticPhoto(80, 40))
      .withMetadata({ orientation: 6 })
      .jpeg()
      .toBuffer();
    expect(await probeImage(rotated, 1e6)).toEqual({
      format: 'jpeg',
      width: 80,
      height: 40,
      orientation: 6,
    });
  });

  test('refuses images over the pixel limit before decoding, naming both numbers', async () => {
    const photo = await syntheticPhoto(400, 300);
    const error = await probeImage(photo, 119_999).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PhotoRelayError);
    expect((error as PhotoRelayError).code).toBe('E_IMAGE_TOO_LARGE');
    expect((error as PhotoRelayError).message).toMatch(/400×300 \(0\.1 MP\); the limit is 0\.1 MP/);
  });

  test('a JPEG whose header is cut off is corrupt', async () => {
    const photo = await syntheticPhoto(200, 100);
    const error = await probeImage(photo.subarray(0, 40), 1e6).catch((e: unknown) => e);
    expect((error as PhotoRelayError).code).toBe('E_CORRUPT_IMAGE');
  });
});

test('toImageError maps libvips wording to catalog codes', () => {
  expect(toImageError(new Error('VipsJpeg: premature end of JPEG image')).code).toBe(
    'E_TRUNCATED_IMAGE',
  );
  expect(toImageError(new Error('Input file has corrupt header: VipsJpeg: bad')).code).toBe(
    'E_CORRUPT_IMAGE',
  );
  expect(toImageError(new Error('Input image exceeds pixel limit')).code).toBe('E_IMAGE_TOO_LARGE');
});

test('truncation is read from the bytes, whatever libvips said', async () => {
  const { looksTruncated } = await import('../electron/engine/image-input.ts');
  const jpeg = await syntheticPhoto(200, 100, 'jpeg');
  const png = await syntheticPhoto(200, 100, 'png');
  const webp = await syntheticPhoto(200, 100, 'webp');
  expect(looksTruncated(jpeg, 'jpeg')).toBe(false);
  expect(looksTruncated(Buffer.concat([jpeg, Buffer.alloc(16)]), 'jpeg')).toBe(false);
  expect(looksTruncated(jpeg.subarray(0, jpeg.length - 100), 'jpeg')).toBe(true);
  expect(looksTruncated(png, 'png')).toBe(false);
  expect(looksTruncated(png.subarray(0, png.length - 20), 'png')).toBe(true);
  expect(looksTruncated(webp, 'webp')).toBe(false);
  expect(looksTruncated(webp.subarray(0, webp.length - 20), 'webp')).toBe(true);
  const cut = { bytes: jpeg.subarray(0, 500), format: 'jpeg' as const };
  expect(toImageError(new Error('Unknown error'), cut).code).toBe('E_TRUNCATED_IMAGE');
  expect(toImageError(new Error('Unknown error'), { bytes: jpeg, format: 'jpeg' }).code).toBe(
    'E_CORRUPT_IMAGE',
  );
});
