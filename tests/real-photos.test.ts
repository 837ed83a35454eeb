import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PhotoRelayError } from '../shared/errors.ts';
import { createEngine, type Engine } from '../electron/engine/index.ts';
import {
  alphaOf,
  colourDifferenceWhereVisible,
  compareAlpha,
  missingSharedMessage,
  modelMissingReason,
  sharedFile,
} from './helpers.ts';

/** Real photos from ../shared/photos; each test skips with a message where its file is absent. */
const skipReason = await modelMissingReason('u2netp');
if (skipReason) console.warn(`Skipping real-photo tests: ${skipReason}`);

let engine: Engine | undefined;
beforeAll(async () => {
  if (!skipReason) engine = await createEngine();
});
afterAll(() => engine?.dispose());

async function load(relative: string, skip: (note: string) => never): Promise<Buffer> {
  const file = sharedFile(`photos/${relative}`);
  if (!file) skip(missingSharedMessage(`photos/${relative}`));
  return readFile(file);
}

describe.skipIf(skipReason)('parity with rembg (u2netp)', () => {
  for (const name of ['anime-girl-1', 'car-1', 'cloth-1', 'plants-1']) {
    test(`${name}: alpha MAE ≤ 0.005 and ≥ 99.5 % binary agreement`, async ({ skip }) => {
      const input = await load(`rembg-reference/fixtures/${name}.jpg`, skip);
      const reference = await load(`rembg-reference/results/${name}.u2netp.png`, skip);
      const result = await engine!.segment(input);
      const ours = await alphaOf(result.image);
      const theirs = await alphaOf(reference);
      expect([ours.width, ours.height]).toEqual([theirs.width, theirs.height]);
      const { mae, agreement } = compareAlpha(ours.data, theirs.data);
      console.log(
        `parity ${name}: MAE ${mae.toFixed(5)}, agreement ${(agreement * 100).toFixed(3)} %`,
      );
      expect(mae).toBeLessThanOrEqual(0.005);
      expect(agreement).toBeGreaterThanOrEqual(0.995);
    });
  }
});

describe.skipIf(skipReason)('EXIF orientation on real phone-style photos', () => {
  for (const shape of ['Landscape', 'Portrait']) {
    test(`${shape}_0…8 all come out upright and alike`, async ({ skip }) => {
      const upright = await engine!.segment(await load(`exif-orientation/${shape}_1.jpg`, skip), {
        maxEdge: 600,
      });
      for (let tag = 0; tag <= 8; tag++) {
        const result = await engine!.segment(
          await load(`exif-orientation/${shape}_${tag}.jpg`, skip),
          {
            maxEdge: 600,
          },
        );
        expect([tag, result.width, result.height]).toEqual([tag, upright.width, upright.height]);
        // The scene has no clear subject, so its soft mask varies with each file's JPEG noise;
        // the colours where both are visible show which way up the picture is.
        const difference = await colourDifferenceWhereVisible(result.image, upright.image);
        expect(difference, `${shape}_${tag} colour difference`).toBeLessThan(0.03);
      }
    });
  }

  test('the 12 MP phone JPEG (stored 2688×4032, Orientation 6) comes out 4032×2688', async ({
    skip,
  }) => {
    const bytes = await load('edge-cases/derived_12mp_orient6_4032x2688.jpg', skip);
    const display = await engine!.segment(bytes, { maxEdge: 1920 });
    expect([display.width, display.height, display.originalWidth, display.originalHeight]).toEqual([
      1920, 1280, 4032, 2688,
    ]);
    // The display PNG must fit a WebSocket message: ≤ 3 MB as base64.
    expect(display.image.toString('base64').length).toBeLessThanOrEqual(3_000_000);
    const full = await engine!.render(bytes, display.mask);
    expect([full.width, full.height]).toEqual([4032, 2688]);
  });

  test('the saw (stored 2225×2725, Orientation 8) comes out 2725×2225', async ({ skip }) => {
    const result = await engine!.segment(
      await load('edge-cases/derived_saw_orient8_2725x2225.jpg', skip),
    );
    expect([result.width, result.height]).toEqual([2725, 2225]);
  });
});

describe.skipIf(skipReason)('real edge cases', () => {
  test('CMYK JPEG with ICC profile and a 4K Ultra HDR JPEG with gain map work', async ({
    skip,
  }) => {
    const cmyk = await engine!.segment(await load('edge-cases/sharp_cmyk_500x333.jpg', skip));
    expect([cmyk.width, cmyk.height]).toEqual([500, 333]);
    const hdr = await engine!.segment(
      await load('edge-cases/sharp_ultrahdr_gainmap_3840x2160.jpg', skip),
      { maxEdge: 1920 },
    );
    expect([hdr.width, hdr.height]).toEqual([1920, 1080]);
  });

  const refused: [string, string][] = [
    ['edge-cases/sharp_giant_20000x14000.jpg', 'E_IMAGE_TOO_LARGE'],
    ['edge-cases/sharp_truncated.jpg', 'E_TRUNCATED_IMAGE'],
    ['edge-cases/sharp_corrupt_header.jpg', 'E_CORRUPT_IMAGE'],
  ];
  for (const [relative, code] of refused) {
    test(`${relative} is refused with ${code}`, async ({ skip }) => {
      const bytes = await load(relative, skip);
      const started = performance.now();
      const error = await engine!.segment(bytes).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PhotoRelayError);
      expect((error as PhotoRelayError).code).toBe(code);
      if (code === 'E_IMAGE_TOO_LARGE') {
        expect((error as PhotoRelayError).message).toMatch(/20000×14000/);
        // Refused from the header: decoding 280 MP would take seconds and gigabytes.
        expect(performance.now() - started).toBeLessThan(1000);
      }
    });
  }
});

describe('the other models on real people photos', () => {
  for (const model of ['mediapipe', 'sinet'] as const) {
    test(`${model} finds the person in a portrait and little in the corners`, async ({ skip }) => {
      const missing = await modelMissingReason(model);
      if (missing) skip(missing);
      const bytes = await load('people/pd_astronaut_512.png', skip);
      const other = await createEngine({ model });
      try {
        const result = await other.segment(bytes);
        const { data, width, height } = await alphaOf(result.image);
        const centre = data[Math.round(height * 0.45) * width + Math.round(width * 0.5)]!;
        const corner = data[5 * width + 5]!;
        expect(centre, 'person at the centre').toBeGreaterThan(128);
        expect(corner, 'background at the top-left corner').toBeLessThan(128);
        expect(result.timings.inferenceMs).toBeGreaterThan(0);
      } finally {
        await other.dispose();
      }
    });
  }
});
