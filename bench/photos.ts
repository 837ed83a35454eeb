import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

const sharedPhotos = path.resolve(import.meta.dirname, '../../shared/photos');

export interface BenchPhoto {
  name: string;
  bytes: Buffer;
  source: string;
}

/** A stand-in of the same size when ../shared is absent, so the benchmark runs anywhere. */
async function synthetic(width: number, height: number): Promise<Buffer> {
  const noise = await sharp({
    create: {
      width,
      height,
      channels: 3,
      background: '#556677',
      noise: { type: 'gaussian', mean: 120, sigma: 40 },
    },
  })
    .jpeg({ quality: 90 })
    .toBuffer();
  return noise;
}

async function photo(
  name: string,
  relative: string,
  width: number,
  height: number,
): Promise<BenchPhoto> {
  const file = path.join(sharedPhotos, relative);
  if (existsSync(file)) return { name, bytes: await readFile(file), source: relative };
  return {
    name,
    bytes: await synthetic(width, height),
    source: `synthetic ${width}×${height} (${relative} absent)`,
  };
}

/** The three sizes the issue names: a 12 MP phone JPEG, a 1920×1080 photo and a small one. */
export async function stagePhotos(): Promise<BenchPhoto[]> {
  return Promise.all([
    photo('12mp-phone', 'edge-cases/derived_12mp_orient6_4032x2688.jpg', 2688, 4032),
    photo('1920x1080', 'people/fr_obama_1920x1080.jpg', 1920, 1080),
    photo('small-480', 'rembg-reference/fixtures/car-1.jpg', 480, 360),
  ]);
}

/** A batch of real event-style photos (people and objects) for throughput. */
export async function batchPhotos(count: number): Promise<BenchPhoto[]> {
  const files = ['people', 'objects']
    .map((folder) => path.join(sharedPhotos, folder))
    .filter((dir) => existsSync(dir));
  const { readdir } = await import('node:fs/promises');
  const found: string[] = [];
  for (const dir of files) {
    for (const entry of (await readdir(dir)).sort()) {
      if (/\.(jpe?g|png|webp)$/i.test(entry)) found.push(path.join(dir, entry));
    }
  }
  if (found.length === 0) {
    return Promise.all(
      Array.from({ length: count }, async (_, i) => ({
        name: `synthetic-${i}`,
        bytes: await synthetic(1600, 1200),
        source: 'synthetic 1600×1200',
      })),
    );
  }
  return Promise.all(
    found.slice(0, count).map(async (file) => ({
      name: path.basename(file),
      bytes: await readFile(file),
      source: path.relative(sharedPhotos, file),
    })),
  );
}
