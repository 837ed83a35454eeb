import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEngine, type Engine } from '../electron/engine/index.ts';
import {
  addOverlappingPerson,
  plane,
  sharpenLevels,
  subjectBox,
} from '../electron/engine/refine.ts';
import {
  alphaOf,
  missingSharedMessage,
  modelMissingReason,
  repoRoot,
  sharedFile,
} from './helpers.ts';

/**
 * The quality pipeline's steps on real photos through the real models: each acts where it must
 * and not where it must not. (What each buys on the development sets is bench:quality's job.)
 */
const skipReason = (await modelMissingReason('u2netp')) ?? (await modelMissingReason('mediapipe'));
if (skipReason) console.warn(`Skipping the quality-pipeline tests: ${skipReason}`);

let engine: Engine | undefined;
beforeAll(async () => {
  if (!skipReason) engine = await createEngine({ threads: 2 });
});
afterAll(() => engine?.dispose());

async function load(relative: string, skip: (note: string) => never): Promise<Buffer> {
  const file = sharedFile(`photos/${relative}`);
  if (!file) skip(missingSharedMessage(`photos/${relative}`));
  return readFile(file);
}

/** IoU of two alpha masks of one size, at 128. */
function iou(a: Uint8Array, b: Uint8Array): number {
  let both = 0;
  let either = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]! >= 128;
    const y = b[i]! >= 128;
    if (x && y) both++;
    if (x || y) either++;
  }
  return either === 0 ? 1 : both / either;
}

describe.skipIf(skipReason)('quality mode on real photos', () => {
  test('a small subject gets a second look, and it finds the subject better', async ({ skip }) => {
    const car = await load('objects/rembg_car-2.jpg', skip);
    const { width, height } = await sharp(car).metadata();
    // The same photo small in a wide plain frame: 1/4 of the width, near the lower left.
    const small = { width: Math.round(width / 4), height: Math.round(height / 4) };
    const at = { left: Math.round(width * 0.15), top: Math.round(height * 0.55) };
    const wide = await sharp({
      create: { width, height, channels: 3, background: '#c9ccc4' },
    })
      .composite([{ input: await sharp(car).resize(small).toBuffer(), ...at }])
      .jpeg({ quality: 92 })
      .toBuffer();
    const quality = await engine!.segment(wide, { mode: 'quality' });
    expect(quality.acted?.zoom).toBe(true);
    expect(quality.acted?.flip).toBe(false);
    const fast = await engine!.segment(wide, { mode: 'fast' });
    // Reference: the cut-out of the car seen big, shrunk into the same place.
    const big = await engine!.segment(car, { mode: 'fast' });
    const bigAlpha = await sharp((await alphaOf(big.image)).data, {
      raw: { width, height, channels: 1 },
    })
      .resize(small)
      .extractChannel(0)
      .raw()
      .toBuffer();
    const reference = new Uint8Array(width * height);
    for (let y = 0; y < small.height; y++) {
      reference.set(
        bigAlpha.subarray(y * small.width, (y + 1) * small.width),
        (at.top + y) * width + at.left,
      );
    }
    const qualityIou = iou((await alphaOf(quality.image)).data, reference);
    const fastIou = iou((await alphaOf(fast.image)).data, reference);
    expect(qualityIou).toBeGreaterThan(fastIou);
    expect(qualityIou).toBeGreaterThan(0.7);
  });

  test('a frame-filling subject gets no second look: the mirrored pass instead', async ({
    skip,
  }) => {
    const portrait = await load('people/fr_obama_1920x1080.jpg', skip);
    const result = await engine!.segment(portrait, { mode: 'quality', maxEdge: 1024 });
    expect(result.acted?.zoom).toBe(false);
    expect(result.acted?.flip).toBe(true);
    // The stored mask is the working one (long edge 640), not the 320² model output.
    expect(Math.max(result.mask.width, result.mask.height)).toBe(640);
  });

  test('the edge colours are cleaned: semi-transparent pixels move towards the subject', async ({
    skip,
  }) => {
    const girl = await load('people/rembg_girl-1.jpg', skip);
    const plain = await engine!.segment(girl, {
      mode: 'quality',
      maxEdge: 1024,
      steps: { decontaminate: false },
    });
    const clean = await engine!.segment(girl, { mode: 'quality', maxEdge: 1024 });
    const rgbaPlain = await sharp(plain.image).raw().toBuffer();
    const rgbaClean = await sharp(clean.image).raw().toBuffer();
    // Same alpha; only edge colours differ.
    let edge = 0;
    let changed = 0;
    for (let i = 0; i < rgbaPlain.length; i += 4) {
      expect(rgbaClean[i + 3]).toBe(rgbaPlain[i + 3]);
      const alpha = rgbaPlain[i + 3]!;
      if (alpha === 0 || alpha === 255) {
        if (alpha === 255) expect(rgbaClean[i]).toBe(rgbaPlain[i]);
        continue;
      }
      edge++;
      if (rgbaClean[i] !== rgbaPlain[i] || rgbaClean[i + 1] !== rgbaPlain[i + 1]) changed++;
    }
    expect(edge).toBeGreaterThan(1000);
    expect(changed / edge).toBeGreaterThan(0.5);
  });

  test('a large progressive JPEG goes through quality mode', async () => {
    // Over 8 MP and progressive: decoded once, as in fast mode (the memory rule of worker.ts).
    const big = await sharp({
      create: { width: 3600, height: 2400, channels: 3, background: '#d8d2c4' },
    })
      .composite([
        {
          input: Buffer.from(
            '<svg xmlns="http://www.w3.org/2000/svg" width="3600" height="2400"><circle cx="1800" cy="1300" r="700" fill="#b03020"/></svg>',
          ),
        },
      ])
      .jpeg({ progressive: true, quality: 85 })
      .toBuffer();
    const result = await engine!.segment(big, { mode: 'quality', maxEdge: 1920 });
    expect([result.width, result.height]).toEqual([1920, 1280]);
  });

  test('fast mode is the single pass: no step acts', async ({ skip }) => {
    const girl = await load('people/rembg_girl-1.jpg', skip);
    const result = await engine!.segment(girl, { maxEdge: 640 });
    expect(result.acted).toBeUndefined();
    expect([result.mask.width, result.mask.height]).toEqual([320, 320]);
  });
});

describe('the person step keeps bystanders out', () => {
  // A 10×10 frame: the general subject on the left; the person model sees the subject's person
  // (overlapping it) and a bystander on the right that the general model left out.
  const subject = plane(10, 10);
  const person = plane(10, 10);
  for (let y = 2; y < 8; y++) {
    for (let x = 1; x < 4; x++) subject.data[y * 10 + x] = 0.9;
    for (let x = 1; x < 5; x++) person.data[y * 10 + x] = 0.8; // one column wider than the subject
    for (let x = 7; x < 9; x++) person.data[y * 10 + x] = 0.95; // the bystander
  }

  test('a person region overlapping the subject is added; one apart from it is not', () => {
    const merged = addOverlappingPerson(subject, person, 0.4);
    expect(merged.data[5 * 10 + 4]).toBeCloseTo(0.8); // the subject's missing column
    expect(merged.data[5 * 10 + 2]).toBeCloseTo(0.9); // the larger value is kept
    expect(merged.data[5 * 10 + 8]).toBe(0); // the bystander stays out
  });

  test('a region only grazing the subject is not added', () => {
    const merged = addOverlappingPerson(subject, person, 0.9);
    expect(merged.data[5 * 10 + 4]).toBe(0);
  });

  test('levels keep the 0.5 threshold and make the inside opaque', () => {
    const levelled = sharpenLevels(plane(3, 1, new Float32Array([0.05, 0.5, 0.93])), 0.1);
    expect([...levelled.data]).toEqual([0, 0.5, 1]);
    expect(subjectBox(subject)?.boxShare).toBeCloseTo(0.18);
  });
});

/**
 * Before/after crops for the eye (tests/artifacts/edges-*.png): hair (the top of the subject) and
 * a shoulder (its left edge a third of the way down), `fast` on the left and `quality` on the
 * right, on a flat blue where a dark or coloured halo shows. Six photos of people.
 */
describe.skipIf(skipReason)('edge crops for review', () => {
  const photos = [
    'people/rembg_girl-1.jpg',
    'people/rembg_girl-2.jpg',
    'people/rembg_girl-3.jpg',
    'people/fr_obama_1920x1080.jpg',
    'people/fr_two_people_1126x661.jpg',
    'people/fr_obama_and_biden_2000x1428.jpg',
  ];
  const wall = { r: 40, g: 90, b: 200 };
  const CROP = 200;

  async function onWall(cutout: Buffer) {
    return sharp(cutout).flatten({ background: wall }).raw().toBuffer({ resolveWithObject: true });
  }

  test('writes hair and shoulder crops, fast beside quality', async ({ skip }) => {
    const artifacts = path.join(repoRoot, 'tests/artifacts');
    await mkdir(artifacts, { recursive: true });
    for (const relative of photos) {
      const bytes = await load(relative, skip);
      const fast = await engine!.segment(bytes, { mode: 'fast', maxEdge: 1280 });
      const quality = await engine!.segment(bytes, { mode: 'quality', maxEdge: 1280 });
      const alpha = await alphaOf(quality.image);
      const found = subjectBox(
        plane(
          alpha.width,
          alpha.height,
          Float32Array.from(alpha.data, (v) => v / 255),
        ),
      );
      expect(found, relative).toBeDefined();
      const { box } = found!;
      const centre = (x: number, y: number) => ({
        left: Math.round(Math.min(Math.max(x - CROP / 2, 0), alpha.width - CROP)),
        top: Math.round(Math.min(Math.max(y - CROP / 2, 0), alpha.height - CROP)),
        width: CROP,
        height: CROP,
      });
      // Hair: the top of the subject (the first row with opaque pixels, at their middle).
      // Shoulder: the subject's left edge a third of the way down.
      const opaque = (x: number, y: number) => alpha.data[y * alpha.width + x]! >= 128;
      const topRow = Array.from({ length: alpha.height }, (_, y) => y).find((y) =>
        Array.from({ length: alpha.width }, (_, x) => x).some((x) => opaque(x, y)),
      )!;
      const topXs = Array.from({ length: alpha.width }, (_, x) => x).filter((x) =>
        opaque(x, topRow),
      );
      const hair = centre(topXs[topXs.length >> 1]!, topRow + CROP / 3);
      const shoulderRow = Math.round((box.top + (box.bottom - box.top) / 3) * alpha.height);
      const leftEdge = Array.from({ length: alpha.width }, (_, x) => x).find((x) =>
        opaque(x, shoulderRow),
      );
      const shoulder = centre((leftEdge ?? box.left * alpha.width) + CROP / 4, shoulderRow);
      const tiles = [];
      for (const [row, region] of [hair, shoulder].entries()) {
        for (const [column, result] of [fast, quality].entries()) {
          const flat = await onWall(result.image);
          tiles.push({
            input: await sharp(flat.data, { raw: flat.info })
              .extract(region)
              .resize(CROP * 2, CROP * 2, { kernel: 'nearest' })
              .png()
              .toBuffer(),
            left: column * CROP * 2,
            top: row * CROP * 2,
          });
        }
      }
      const file = path.join(
        artifacts,
        `edges-${path.basename(relative, path.extname(relative))}.png`,
      );
      await sharp({
        create: { width: CROP * 4, height: CROP * 4, channels: 3, background: '#000' },
      })
        .composite(tiles)
        .png()
        .toFile(file);
    }
  });
});
