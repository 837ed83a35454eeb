/**
 * `npx tsx bench/renditions.bench.ts`: bytes per wall per photo, PNG (the original protocol, and
 * `cutoutUrl`) against the compact WebP protocol-2 walls load (`compactUrl`), and the extra CPU
 * the encode costs. The team's people and object photos (../shared/photos; synthetic stand-ins
 * elsewhere) are cut out by the real engine at display size (long edge 1920, the default
 * pipeline), then encoded as the relay does (electron/relay/renditions.ts). Per photo: bytes,
 * encode wall-clock and CPU ms, alpha MAE and colour MAE (both images composited on mid grey,
 * 0–1) against the PNG. `BENCH_SWEEP=1` also runs the candidate settings the choice was made
 * from (and one AVIF). Table printed, JSON in bench/results/.
 */
import os from 'node:os';
import sharp from 'sharp';
import { modelsDir } from '../electron/config/paths.ts';
import { createEngine } from '../electron/engine/index.ts';
import { COMPACT_WEBP, encodeCompact } from '../electron/relay/renditions.ts';
import { batchPhotos } from './photos.ts';
import { writeResults } from './results.ts';

const SWEEP = process.env.BENCH_SWEEP === '1';
const round = (value: number, digits = 1) => Number(value.toFixed(digits));
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

/** Mean absolute alpha and colour differences (0–1), each image composited on mid grey. */
function differences(a: Buffer, b: Buffer): { alpha: number; colour: number } {
  let alpha = 0;
  let colour = 0;
  for (let i = 0; i < a.length; i += 4) {
    const aa = a[i + 3]!;
    const ba = b[i + 3]!;
    alpha += Math.abs(aa - ba);
    for (let c = 0; c < 3; c++) {
      colour += Math.abs((a[i + c]! * aa - b[i + c]! * ba + 128 * (ba - aa)) / 255);
    }
  }
  const pixels = a.length / 4;
  return { alpha: alpha / pixels / 255, colour: colour / pixels / 3 / 255 };
}

const rgba = (image: Buffer) => sharp(image).ensureAlpha().raw().toBuffer();

type Encoder = { name: string; encode: (png: Buffer) => Promise<Buffer> };
const chosen: Encoder = { name: `webp ${JSON.stringify(COMPACT_WEBP)}`, encode: encodeCompact };
const candidates: Encoder[] = [
  ...[
    { quality: 80, alphaQuality: 100, effort: 4 },
    { quality: 80, alphaQuality: 90, effort: 4 },
    { quality: 85, alphaQuality: 100, effort: 2 },
    { quality: 90, alphaQuality: 100, effort: 2 },
    { quality: 80, alphaQuality: 100, effort: 0 },
    { quality: 70, alphaQuality: 70, effort: 4 },
  ].map((options) => ({
    name: `webp ${JSON.stringify(options)}`,
    encode: (png: Buffer) => sharp(png).webp(options).toBuffer(),
  })),
  {
    name: 'avif {"quality":50,"effort":2}',
    encode: (png: Buffer) => sharp(png).avif({ quality: 50, effort: 2 }).toBuffer(),
  },
];

const photos = await batchPhotos(1000);
console.log(`cutting out ${photos.length} photos at display size…`);
const engine = await createEngine({
  model: 'u2netp',
  modelsDir: modelsDir(),
  threads: Math.min(4, os.availableParallelism()),
});
const cutouts: { name: string; png: Buffer; pixels: Buffer; full: boolean }[] = [];
for (const photo of photos) {
  const result = await engine.segment(photo.bytes, { maxEdge: 1920 });
  cutouts.push({
    name: photo.source,
    png: result.image,
    pixels: await rgba(result.image),
    full: Math.max(result.width, result.height) === 1920,
  });
}
await engine.dispose();

interface PhotoFigures {
  photo: string;
  pngBytes: number;
  compactBytes: number;
  encodeMs: number;
  cpuMs: number;
  alphaMae: number;
  colourMae: number;
}

/** Medians (and p95, maxima) of one encoder's figures over the photos. */
function summarise(encoder: string, perPhoto: PhotoFigures[]) {
  const median = (values: number[]) => percentile(values, 50);
  const total = (values: number[]) => values.reduce((sum, value) => sum + value, 0);
  const pick = (rows: PhotoFigures[], field: keyof Omit<PhotoFigures, 'photo'>) =>
    rows.map((row) => row[field]);
  // The photos as large as the walls get them (long edge 1920: the issue's ~2.5 MB PNGs).
  const full = perPhoto.filter((row) => cutouts.find((c) => c.name === row.photo)!.full);
  return {
    encoder,
    photos: perPhoto.length,
    pngBytesMedian: median(pick(perPhoto, 'pngBytes')),
    compactBytesMedian: median(pick(perPhoto, 'compactBytes')),
    ratioMedian: round(median(perPhoto.map((row) => row.compactBytes / row.pngBytes)), 3),
    ratioTotal: round(total(pick(perPhoto, 'compactBytes')) / total(pick(perPhoto, 'pngBytes')), 3),
    encodeMsMedian: median(pick(perPhoto, 'encodeMs')),
    encodeMsP95: percentile(pick(perPhoto, 'encodeMs'), 95),
    cpuMsMedian: median(pick(perPhoto, 'cpuMs')),
    fullSize: {
      photos: full.length,
      pngBytesMedian: median(pick(full, 'pngBytes')),
      compactBytesMedian: median(pick(full, 'compactBytes')),
      cpuMsMedian: median(pick(full, 'cpuMs')),
    },
    alphaMaeMedian: median(pick(perPhoto, 'alphaMae')),
    alphaMaeMax: Math.max(...pick(perPhoto, 'alphaMae')),
    colourMaeMedian: median(pick(perPhoto, 'colourMae')),
    colourMaeMax: Math.max(...pick(perPhoto, 'colourMae')),
    perPhoto,
  };
}

const rows: ReturnType<typeof summarise>[] = [];
for (const encoder of SWEEP ? [chosen, ...candidates] : [chosen]) {
  const perPhoto: PhotoFigures[] = [];
  for (const cutout of cutouts) {
    const cpu = process.cpuUsage();
    const started = performance.now();
    const compact = await encoder.encode(cutout.png);
    const encodeMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    const diff = differences(cutout.pixels, await rgba(compact));
    perPhoto.push({
      photo: cutout.name,
      pngBytes: cutout.png.length,
      compactBytes: compact.length,
      encodeMs: round(encodeMs),
      cpuMs: round((used.user + used.system) / 1000),
      alphaMae: round(diff.alpha, 5),
      colourMae: round(diff.colour, 5),
    });
  }
  rows.push(summarise(encoder.name, perPhoto));
}

const kb = (bytes: number) => `${round(bytes / 1000, 0)} KB`;
console.log('\nBytes per wall per photo (display size), median over the photos:');
console.table(
  rows.map((row) => ({
    encoder: row.encoder,
    PNG: kb(row.pngBytesMedian),
    compact: kb(row.compactBytesMedian),
    'ratio (median / all)': `${row.ratioMedian} / ${row.ratioTotal}`,
    'encode ms p50/p95': `${row.encodeMsMedian} / ${row.encodeMsP95}`,
    'CPU ms p50': row.cpuMsMedian,
    'long edge 1920: PNG / compact / CPU ms': `${kb(row.fullSize.pngBytesMedian)} / ${kb(row.fullSize.compactBytesMedian)} / ${row.fullSize.cpuMsMedian}`,
    'alpha MAE p50/max': `${row.alphaMaeMedian} / ${row.alphaMaeMax}`,
    'colour MAE p50/max': `${row.colourMaeMedian} / ${row.colourMaeMax}`,
  })),
);
const relay = rows[0]!;
const wallsMBps = (bytes: number) => round((bytes * 50 * 3) / 1e6);
const { fullSize } = relay;
console.log(
  `50 walls at 3 photos/s, medians of all ${relay.photos} photos: PNG ${wallsMBps(relay.pngBytesMedian)} MB/s, compact ${wallsMBps(relay.compactBytesMedian)} MB/s; of the ${fullSize.photos} at long edge 1920: PNG ${wallsMBps(fullSize.pngBytesMedian)} MB/s, compact ${wallsMBps(fullSize.compactBytesMedian)} MB/s. Encode CPU at 3 photos/s: ${round((relay.cpuMsMedian * 3) / 10, 0)} % of one core (${round((fullSize.cpuMsMedian * 3) / 10, 0)} % at 1920)`,
);
await writeResults('renditions', { displayMaxEdge: 1920, chosen: COMPACT_WEBP, rows });
