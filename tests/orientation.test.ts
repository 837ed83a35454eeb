import sharp from 'sharp';
import { expect, test } from 'vitest';
import { orientRaw } from '../electron/engine/orientation.ts';

test('orientRaw matches libvips autoOrient for all eight EXIF orientations', async () => {
  // A small asymmetric image with distinct pixels, so any wrong mapping shows.
  const width = 7;
  const height = 4;
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) % 251;
  for (let orientation = 1; orientation <= 8; orientation++) {
    const tagged = await sharp(pixels, { raw: { width, height, channels: 3 } })
      .png()
      .withMetadata({ orientation })
      .toBuffer();
    const expected = await sharp(tagged).autoOrient().raw().toBuffer({ resolveWithObject: true });
    const ours = orientRaw({ data: pixels, width, height, channels: 3 }, orientation);
    expect([orientation, ours.width, ours.height]).toEqual([
      orientation,
      expected.info.width,
      expected.info.height,
    ]);
    expect(Buffer.from(ours.data).equals(expected.data), `orientation ${orientation}`).toBe(true);
  }
});
