import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ERROR_CATALOG, PhotoRelayError } from '../shared/errors.ts';
import { createEngine, type Engine } from '../electron/engine/index.ts';
import { alphaOf, compareAlpha, modelMissingReason, syntheticPhoto } from './helpers.ts';

const skipReason = await modelMissingReason('u2netp');
if (skipReason) console.warn(`Skipping engine tests that need the real model: ${skipReason}`);

async function errorOf(promise: Promise<unknown>): Promise<PhotoRelayError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof PhotoRelayError))
    throw new Error(`expected a PhotoRelayError, got ${String(error)}`);
  return error;
}

describe('engine start-up (no model needed)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-models-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  test('a missing model fails at start with instructions', async () => {
    const error = await errorOf(createEngine({ modelsDir: dir }));
    expect(error.code).toBe('E_MODEL_MISSING');
    expect(error.message).toMatch(/models fetch/);
    expect(error.message).toMatch(/models install --from/);
  });

  test('a model file of the right size but garbage content fails to load, clearly', async () => {
    await writeFile(path.join(dir, 'sinet_portrait.onnx'), randomBytes(395434));
    const error = await errorOf(createEngine({ modelsDir: dir, model: 'sinet' }));
    expect(error.code).toBe('E_MODEL_LOAD_FAILED');
    expect(error.message).toMatch(/sinet/);
  });

  test('an unknown model id is refused with the list of known ones', async () => {
    const error = await errorOf(createEngine({ modelsDir: dir, model: 'u3net' }));
    expect(error.code).toBe('E_MODEL_UNKNOWN');
    expect(error.message).toMatch(/u2netp, mediapipe, sinet/);
  });
});

describe.skipIf(skipReason)('engine with u2netp on generated photos', () => {
  let engine: Engine;
  let photo: Buffer;
  beforeAll(async () => {
    engine = await createEngine({ maxPixels: 4_000_000 });
    photo = await syntheticPhoto(640, 480);
  });
  afterAll(() => engine.dispose());

  test('cuts out the subject: PNG with alpha, transparent background, timings', async () => {
    const result = await engine.segment(photo);
    expect(result.format).toBe('png');
    expect([result.width, result.height, result.originalWidth, result.originalHeight]).toEqual([
      640, 480, 640, 480,
    ]);
    const meta = await sharp(result.image).metadata();
    expect(meta.format).toBe('png');
    expect(meta.channels).toBe(4);
    const { data } = await sharp(result.image).raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) => data.subarray((y * 640 + x) * 4, (y * 640 + x) * 4 + 4);
    expect(at(320, 240)[3]).toBeGreaterThan(200); // the disc
    expect(at(10, 470)[3]).toBeLessThan(30); // the background
    // Fully transparent pixels carry no colour (smaller PNGs).
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] === 0) expect(data[i]! + data[i + 1]! + data[i + 2]!).toBe(0);
    }
    expect(result.mask.width * result.mask.height).toBe(result.mask.data.length);
    for (const key of ['decodeMs', 'inferenceMs', 'maskMs', 'composeMs', 'encodeMs'] as const) {
      expect(result.timings[key]).toBeGreaterThan(0);
    }
    expect(result.timings.totalMs).toBeGreaterThanOrEqual(result.timings.inferenceMs);
  });

  test('maxEdge scales the long edge down, never up', async () => {
    const small = await engine.segment(photo, { maxEdge: 200 });
    expect([small.width, small.height]).toEqual([200, 150]);
    expect([small.originalWidth, small.originalHeight]).toEqual([640, 480]);
    const same = await engine.segment(photo, { maxEdge: 4000 });
    expect([same.width, same.height]).toEqual([640, 480]);
  });

  test('WebP output keeps alpha; a background colour replaces transparency', async () => {
    const webp = await engine.segment(photo, { format: 'webp' });
    const webpMeta = await sharp(webp.image).metadata();
    expect(webpMeta.format).toBe('webp');
    expect(webpMeta.hasAlpha).toBe(true);

    const flat = await engine.segment(photo, { background: '#ff0000' });
    const { data, info } = await sharp(flat.image).raw().toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(3);
    const corner = data.subarray((470 * 640 + 10) * 3, (470 * 640 + 10) * 3 + 3);
    expect(corner[0]).toBeGreaterThan(200);
    expect(corner[1]).toBeLessThan(60);
  });

  test('bad output options fail with a message naming the parameter', async () => {
    const edge = await errorOf(engine.segment(photo, { maxEdge: 0 }));
    expect(edge.code).toBe('E_BAD_OPTION');
    expect(edge.message).toMatch(/maxEdge/);
    const colour = await errorOf(engine.segment(photo, { background: 'red' }));
    expect(colour.message).toMatch(/background/);
    const format = await errorOf(engine.segment(photo, { format: 'gif' as 'png' }));
    expect(format.message).toMatch(/format/);
  });

  test('CMYK, grayscale, 16-bit, PNG with alpha and WebP inputs all work', async () => {
    const base = sharp(photo);
    const inputs: Record<string, Buffer> = {
      cmyk: await base.clone().toColourspace('cmyk').jpeg().toBuffer(),
      gray: await base.clone().grayscale().jpeg().toBuffer(),
      png16: await base.clone().toColourspace('rgb16').png().toBuffer(),
      rgba: await base.clone().ensureAlpha(0.5).png().toBuffer(),
      webp: await base.clone().webp().toBuffer(),
    };
    expect((await sharp(inputs.cmyk).metadata()).space).toBe('cmyk');
    expect((await sharp(inputs.png16).metadata()).depth).toBe('ushort');
    const reference = await alphaOf((await engine.segment(photo)).image);
    for (const [name, bytes] of Object.entries(inputs)) {
      const result = await engine.segment(bytes);
      expect([name, result.width, result.height]).toEqual([name, 640, 480]);
      const { agreement } = compareAlpha((await alphaOf(result.image)).data, reference.data);
      expect(agreement, name).toBeGreaterThan(0.97);
    }
  });

  test('EXIF orientation is applied before inference; output carries no EXIF', async () => {
    const upright = await engine.segment(photo);
    const uprightAlpha = await alphaOf(upright.image);
    const uprightRgb = await sharp(upright.image).removeAlpha().raw().toBuffer();
    // Stored pixels turned so that applying the tag shows the upright photo again.
    const storedTurn: Record<number, number> = { 3: 180, 6: 270, 8: 90 };
    for (const [orientation, turn] of Object.entries(storedTurn)) {
      const tagged = await sharp(await sharp(photo).rotate(turn).jpeg({ quality: 95 }).toBuffer())
        .withMetadata({ orientation: Number(orientation) })
        .jpeg({ quality: 95 })
        .toBuffer();
      const result = await engine.segment(tagged);
      expect([orientation, result.width, result.height]).toEqual([orientation, 640, 480]);
      const alpha = await alphaOf(result.image);
      expect(compareAlpha(alpha.data, uprightAlpha.data).agreement).toBeGreaterThan(0.98);
      // The asymmetric bar must be at the top left, as in the upright photo.
      const rgb = await sharp(result.image).removeAlpha().raw().toBuffer();
      expect(compareAlpha(rgb, uprightRgb).mae).toBeLessThan(0.03);
      const meta = await sharp(result.image).metadata();
      expect(meta.exif).toBeUndefined();
      expect(meta.orientation).toBeUndefined();
    }
  });

  test('every kind of bad input fails with its catalog code and the engine keeps working', async () => {
    const cases: [string, Uint8Array, string][] = [
      ['empty', new Uint8Array(), 'E_EMPTY_FILE'],
      ['text', Buffer.from('just some text, not a photo'), 'E_UNSUPPORTED_FORMAT'],
      [
        'svg',
        Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>'),
        'E_SVG_UNSUPPORTED',
      ],
      [
        'heic',
        Buffer.from([
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
        ]),
        'E_HEIC_UNSUPPORTED',
      ],
      ['truncated', photo.subarray(0, Math.round(photo.length * 0.6)), 'E_TRUNCATED_IMAGE'],
      [
        'corrupt',
        Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(2000)]),
        'E_CORRUPT_IMAGE',
      ],
      ['too many pixels', await syntheticPhoto(2400, 2000), 'E_IMAGE_TOO_LARGE'],
    ];
    for (const [name, bytes, code] of cases) {
      const error = await errorOf(engine.segment(bytes));
      expect([name, error.code]).toEqual([name, code]);
      expect(error.status).toBe(ERROR_CATALOG[error.code].status);
      expect(error.message.length).toBeGreaterThan(10);
    }
    const after = await engine.segment(photo, { maxEdge: 100 });
    expect(after.width).toBe(100);
  });

  test('render() re-uses a mask for the full-size output without inference', async () => {
    const display = await engine.segment(photo, { maxEdge: 160 });
    const full = await engine.render(photo, display.mask);
    expect([full.width, full.height]).toEqual([640, 480]);
    expect(full.timings.inferenceMs).toBe(0);
    const direct = await alphaOf((await engine.segment(photo)).image);
    expect(compareAlpha((await alphaOf(full.image)).data, direct.data).agreement).toBeGreaterThan(
      0.99,
    );
  });
});

describe.skipIf(skipReason)('engine queue, crashes and responsiveness', () => {
  test('the queue is bounded and its depth observable', async () => {
    const engine = await createEngine({ maxQueue: 2 });
    try {
      const photo = await syntheticPhoto(800, 600);
      const depths: number[] = [];
      engine.onStats((stats) => depths.push(stats.queued));
      const jobs = Array.from({ length: 6 }, () =>
        engine.segment(photo, { maxEdge: 400 }).then(
          () => 'ok',
          (error: unknown) => (error instanceof PhotoRelayError ? error.code : 'other'),
        ),
      );
      const outcomes = await Promise.all(jobs);
      // 2 go into the worker, 2 wait, the rest are refused at once.
      expect(outcomes.filter((o) => o === 'ok')).toHaveLength(4);
      expect(outcomes.filter((o) => o === 'E_QUEUE_FULL')).toHaveLength(2);
      expect(Math.max(...depths)).toBe(2);
      expect(engine.stats()).toMatchObject({ queued: 0, inWorker: 0, completed: 4 });
    } finally {
      await engine.dispose();
    }
  });

  test('when the worker dies its jobs fail clearly and a new worker takes over', async () => {
    const engine = await createEngine();
    try {
      const photo = await syntheticPhoto(800, 600);
      const jobs = Array.from({ length: 4 }, () =>
        engine.segment(photo, { maxEdge: 400 }).then(
          () => 'ok',
          (error: unknown) => (error instanceof PhotoRelayError ? error.code : String(error)),
        ),
      );
      engine.crashWorkerForTest();
      const outcomes = await Promise.all(jobs);
      // The two inside the dead worker fail; the two still waiting run on its successor.
      expect(outcomes).toEqual(['E_ENGINE_CRASHED', 'E_ENGINE_CRASHED', 'ok', 'ok']);
      expect(engine.stats().workerRestarts).toBe(1);
      const after = await engine.segment(photo, { maxEdge: 100 });
      expect(after.width).toBe(100);
    } finally {
      await engine.dispose();
    }
  });

  test('dispose() refuses new work and rejects what was waiting', async () => {
    const engine = await createEngine();
    const photo = await syntheticPhoto(400, 300);
    const jobs = Array.from({ length: 4 }, () =>
      engine.segment(photo).then(
        () => 'ok',
        (error: unknown) => (error instanceof PhotoRelayError ? error.code : String(error)),
      ),
    );
    await engine.dispose();
    const outcomes = await Promise.all(jobs);
    expect(outcomes.slice(0, 2)).toEqual(['ok', 'ok']);
    expect(outcomes.slice(2)).toEqual(['E_ENGINE_STOPPED', 'E_ENGINE_STOPPED']);
    expect((await errorOf(engine.segment(photo))).code).toBe('E_ENGINE_STOPPED');
  });

  test("the caller's event loop stays responsive while a batch is processed", async () => {
    const engine = await createEngine();
    try {
      const photos = await Promise.all(
        Array.from({ length: 6 }, (_, i) => syntheticPhoto(1600 + i * 16, 1200)),
      );
      const delay = monitorEventLoopDelay({ resolution: 5 });
      delay.enable();
      const started = performance.now();
      const results = await Promise.all(photos.map((p) => engine.segment(p, { maxEdge: 1280 })));
      const elapsed = performance.now() - started;
      delay.disable();
      const inference = results.map((r) => r.timings.inferenceMs);
      // Each inference alone blocks its thread for far longer than this: had it run here, the
      // loop would have stalled for at least that long.
      const maxDelayMs = delay.max / 1e6;
      expect(Math.min(...inference)).toBeGreaterThan(50);
      expect(maxDelayMs).toBeLessThan(Math.min(...inference) / 2);
      expect(elapsed).toBeGreaterThan(inference.reduce((a, b) => a + b, 0) * 0.9);
    } finally {
      await engine.dispose();
    }
  });
});
