import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  mutationBases,
  mutations,
  newTally,
  record,
  sendMutation,
  type OutcomeTally,
} from '../bench/mutated.bench.ts';
import { minimumFileBytes } from '../electron/engine/declared-size.ts';
import { probeImage } from '../electron/engine/image-input.ts';
import { PhotoRelayError } from '../shared/errors.ts';
import { modelMissingReason } from './helpers.ts';
import { PIN, startTestRelay, type TestRelay } from './relay-helpers.ts';

/**
 * Hostile files through the real relay and engine: bit flips, overwrites, truncations, broken
 * SOI/SOF/IHDR/VP8 headers, wrong chunk lengths and huge declared sizes (bench/mutated.bench.ts
 * makes them, from ../shared/photos where present and synthetic photos always). Every answer must
 * be 200 or the catalog's 4xx for its code: never a 500, a hang or a crash.
 */
const skipReason = await modelMissingReason('u2netp');
if (skipReason) console.warn(`Skipping the mutated-image tests: ${skipReason}`);

const COUNT = 300;
const WARM_UP = 100;
const SAMPLE_EVERY = 25;
/**
 * RSS growth allowed from the end of the warm-up to the end (200 inputs). Measured here, same
 * seed: before the fix 688 → 1,007 MB (+318: libvips' cache kept the decoders of progressive
 * JPEGs whose headers claim up to 64 MP, ~190 MB each); after it 668 → 673 MB (+5; this process
 * also runs the client and Vitest). 100 MB sits far from both.
 */
const GROWTH_BOUND_MB = 100;

function describeTally(tally: OutcomeTally): string {
  return JSON.stringify({ answers: tally.byAnswer, unexpected: tally.unexpected }, null, 2);
}

describe.skipIf(skipReason)('mutated images', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay({ MIN_FREE_DISK_MB: '0' });
  });
  afterAll(() => relay.close());

  test(`${COUNT} mutations through the relay: 200 or a catalog 4xx each, memory flat`, async () => {
    const { bases } = await mutationBases({ maxEdge: 640 });
    const tally = newTally();
    const rss: { after: number; mb: number }[] = [];
    const queue = mutations(bases, COUNT, 7);
    let done = 0;
    // Two at a time, like two phones: the engine decodes one photo beside the other's inference.
    await Promise.all(
      [0, 1].map(async () => {
        for (let next = queue.next(); !next.done; next = queue.next()) {
          record(tally, next.value, await sendMutation(relay.url, PIN, next.value, 30_000));
          if (++done % SAMPLE_EVERY === 0) {
            rss.push({ after: done, mb: process.memoryUsage().rss / 1e6 });
          }
        }
      }),
    );
    expect(tally.unexpectedCount, describeTally(tally)).toBe(0);
    // Every kind of answer the mutations are meant to reach was reached.
    const answers = Object.keys(tally.byAnswer);
    expect(answers).toContain('200');
    expect(answers).toContain('422 E_CORRUPT_IMAGE');
    expect(answers).toContain('422 E_TRUNCATED_IMAGE');
    expect(answers).toContain('415 E_UNSUPPORTED_FORMAT');

    const warm = rss.find((point) => point.after >= WARM_UP)!;
    const end = rss.at(-1)!;
    const curve = rss.map((point) => `${point.after}→${Math.round(point.mb)}`).join(' ');
    console.info(`mutated-images RSS (inputs → MB): ${curve}`);
    expect(end.mb - warm.mb, `RSS curve ${curve}`).toBeLessThan(GROWTH_BOUND_MB);
    // The relay is still well after all of it.
    expect((await fetch(`${relay.url}/healthz`)).status).toBe(200);
  }, 180_000);

  test('a header that declares more pixels than the file can hold is refused before decoding', async () => {
    const photo = await sharp({
      create: { width: 640, height: 480, channels: 3, background: '#808080' },
    })
      .jpeg({ progressive: true })
      .toBuffer();
    // The SOF says 8000×7999: a 64 MP decode (190 MB of coefficients) for a few kilobytes.
    const sof = photo.indexOf(Buffer.from([0xff, 0xc2]));
    const lying = Buffer.from(photo);
    lying.writeUInt16BE(7999, sof + 5);
    lying.writeUInt16BE(8000, sof + 7);
    const error = await relay.relay.engine.segment(lying).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(PhotoRelayError);
    expect((error as PhotoRelayError).code).toBe('E_TRUNCATED_IMAGE');
    expect((error as PhotoRelayError).message).toMatch(/8000×7999.*too small/);
  });

  test('the most compressible real files still pass the size floor', async () => {
    // Flat white, the best case of each coder: they sit just above the floor, never under it.
    const flat = () =>
      sharp({ create: { width: 4032, height: 3024, channels: 3, background: '#ffffff' } });
    const files = [
      await flat().jpeg({ quality: 50 }).toBuffer(),
      await flat().jpeg({ progressive: true }).toBuffer(),
      await flat().jpeg({ mozjpeg: true }).toBuffer(),
      await flat().jpeg({ chromaSubsampling: '4:4:4', optimiseCoding: true }).toBuffer(),
      await flat().png({ compressionLevel: 9 }).toBuffer(),
      await flat().png({ palette: true, colours: 2, compressionLevel: 9 }).toBuffer(),
    ];
    for (const file of files) {
      const probed = await probeImage(file, 64e6);
      expect(file.length).toBeGreaterThanOrEqual(minimumFileBytes(file, probed)!);
    }
    // And the engine takes one of them whole.
    const result = await relay.relay.engine.segment(files[0]!, { maxEdge: 640 });
    expect(result.originalWidth).toBe(4032);
  });
});
