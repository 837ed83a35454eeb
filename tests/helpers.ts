import { existsSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { modelsDir } from '../electron/config/paths.ts';
import { getModelSpec } from '../electron/models/manifest.ts';
import { checkModel } from '../electron/models/model-files.ts';

export const repoRoot = path.resolve(import.meta.dirname, '..');
/** The team's data folder beside the checkout (photos, models). Absent on other machines. */
export const sharedDir = path.resolve(repoRoot, '../shared');

/** Path of a file under ../shared, or undefined when it is not there. */
export function sharedFile(relative: string): string | undefined {
  const file = path.join(sharedDir, relative);
  return existsSync(file) ? file : undefined;
}

export function missingSharedMessage(relative: string): string {
  return `needs ${path.join(sharedDir, relative)} (the team's shared data beside the checkout); not present here`;
}

/** Undefined when the model is installed; otherwise why tests that need it are skipped. */
export async function modelMissingReason(id: string): Promise<string | undefined> {
  const dir = modelsDir();
  const status = await checkModel(dir, getModelSpec(id), false);
  return status.state === 'ok'
    ? undefined
    : `model ${id} is ${status.state} in ${dir}: run \`npx photo-relay models install --from ../shared/models\` or \`models fetch\``;
}

/**
 * A synthetic photo that runs anywhere: a bright disc (the "subject") on a dark textured
 * background, asymmetric (a bar at the top-left) so orientation mistakes show.
 */
export async function syntheticPhoto(
  width: number,
  height: number,
  format: 'jpeg' | 'png' | 'webp' = 'jpeg',
): Promise<Buffer> {
  const radius = Math.round(Math.min(width, height) * 0.3);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <rect width="100%" height="100%" fill="#2b3a4a"/>
    <rect x="0" y="0" width="${Math.round(width * 0.3)}" height="${Math.round(height * 0.08)}" fill="#55606a"/>
    <circle cx="${width / 2}" cy="${height / 2}" r="${radius}" fill="#f2c14e"/>
    <circle cx="${width / 2 - radius / 3}" cy="${height / 2 - radius / 4}" r="${radius / 6}" fill="#333"/>
  </svg>`;
  const image = sharp(Buffer.from(svg));
  if (format === 'png') return image.png().toBuffer();
  if (format === 'webp') return image.webp({ quality: 90 }).toBuffer();
  return image.jpeg({ quality: 90 }).toBuffer();
}

/** Alpha channel of a PNG/WebP cut-out as raw bytes. */
export async function alphaOf(
  image: Uint8Array,
): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(image)
    .extractChannel('alpha')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** Mean absolute difference (0–1) and agreement at 0.5 (0–1) between two alpha masks. */
export function compareAlpha(a: Uint8Array, b: Uint8Array): { mae: number; agreement: number } {
  if (a.length !== b.length) throw new Error(`mask sizes differ: ${a.length} vs ${b.length}`);
  let sum = 0;
  let agree = 0;
  for (let i = 0; i < a.length; i++) {
    sum += Math.abs(a[i]! - b[i]!);
    if (a[i]! >= 128 === b[i]! >= 128) agree++;
  }
  return { mae: sum / a.length / 255, agreement: agree / a.length };
}

/**
 * Mean absolute colour difference (0–1) over the pixels visible (alpha > 0) in both RGBA
 * cut-outs of the same size: small when the same picture sits the same way up in both.
 */
export async function colourDifferenceWhereVisible(a: Uint8Array, b: Uint8Array): Promise<number> {
  const [pa, pb] = await Promise.all(
    [a, b].map((image) => sharp(image).ensureAlpha().raw().toBuffer()),
  );
  if (pa!.length !== pb!.length) throw new Error('cut-outs differ in size');
  let sum = 0;
  let count = 0;
  for (let i = 0; i < pa!.length; i += 4) {
    if (pa![i + 3] === 0 || pb![i + 3] === 0) continue;
    sum +=
      Math.abs(pa![i]! - pb![i]!) +
      Math.abs(pa![i + 1]! - pb![i + 1]!) +
      Math.abs(pa![i + 2]! - pb![i + 2]!);
    count += 3;
  }
  if (count === 0) throw new Error('no pixel is visible in both cut-outs');
  return sum / count / 255;
}

/**
 * Like syntheticPhoto, but the subject is filled with noise, so its cut-out PNG stays large
 * (about a megabyte at 1400×1000): for tests that need heavy broadcasts.
 */
export async function noisyPhoto(width: number, height: number): Promise<Buffer> {
  const radius = Math.round(Math.min(width, height) * 0.4);
  const disc = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><circle cx="${width / 2}" cy="${height / 2}" r="${radius}" fill="#fff"/></svg>`,
  );
  const noise = await sharp({
    create: {
      width,
      height,
      channels: 3,
      background: '#c0a040',
      noise: { type: 'gaussian', mean: 170, sigma: 50 },
    },
  })
    .composite([{ input: disc, blend: 'dest-in' }])
    .png()
    .toBuffer();
  return sharp({ create: { width, height, channels: 3, background: '#1d2a36' } })
    .composite([{ input: noise }])
    .jpeg({ quality: 92 })
    .toBuffer();
}
