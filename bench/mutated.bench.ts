/**
 * `npm run bench:mutated`: hostile files. A deterministic mutator (seeded PRNG) over real photos
 * from ../shared/photos (and synthetic ones, so it runs anywhere) makes bit flips, byte-range
 * overwrites, truncations, corrupted SOI/SOF/IHDR/VP8 headers, wrong chunk lengths and huge
 * declared dimensions. The benchmark sends 2,000 of them to a relay in its own process (the one
 * `npm run serve` runs) and prints its RSS curve (start, after warm-up, end) and the outcome
 * counts; JSON to bench/results/. tests/mutated-images.test.ts uses the same mutator.
 */
import { writeResults } from './results.ts';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { ERROR_CATALOG, isErrorCode } from '../shared/errors.ts';
import { syntheticPhoto } from '../tests/helpers.ts';

// ---------------------------------------------------------------------------------------------
// The mutator

export interface Random {
  /** [0, 1) */
  next(): number;
  /** A whole number in [min, max]. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
}

/** mulberry32: tiny, fast and the same sequence for the same seed on every machine. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)]!,
  };
}

export type ImageFormat = 'jpeg' | 'png' | 'webp';

export interface BasePhoto {
  name: string;
  format: ImageFormat;
  bytes: Buffer;
}

const sharedPhotos = path.resolve(import.meta.dirname, '../../shared/photos');

/** Real photos of every kind the relay meets (EXIF-rotated, CMYK, grayscale, PNG, large). */
const REAL_SOURCES = [
  'people/fr_two_people_1126x661.jpg',
  'people/rembg_girl-1.jpg',
  'people/pd_concert_crowd_gray_400x267.jpg',
  'people/pd_astronaut_512.png',
  'people/u2net_Two_dancers.jpg',
  'objects/cc0_coffee_cup.png',
  'objects/cc0_cat_chelsea.png',
  'objects/pd_rocket.jpg',
  'exif-orientation/Portrait_6.jpg',
  'exif-orientation/Landscape_8.jpg',
  'edge-cases/sharp_cmyk_500x333.jpg',
  'rembg-reference/fixtures/car-1.jpg',
];

/**
 * The photos mutations start from, each as JPEG (baseline and progressive), PNG (plain and
 * interlaced) and WebP (lossy, lossless, with alpha), at most `maxEdge` on the long side so a
 * run of thousands stays short. EXIF is kept (orientation tags are part of what gets mutated).
 */
export async function mutationBases(
  options: { maxEdge?: number; realPhotos?: boolean } = {},
): Promise<{ bases: BasePhoto[]; real: number }> {
  const maxEdge = options.maxEdge ?? 1024;
  const sources: { name: string; bytes: Buffer }[] = [];
  if (options.realPhotos ?? true) {
    for (const relative of REAL_SOURCES) {
      const file = path.join(sharedPhotos, relative);
      if (existsSync(file))
        sources.push({ name: path.basename(relative), bytes: await readFile(file) });
    }
  }
  const real = sources.length;
  sources.push(
    { name: 'synthetic-640x480', bytes: await syntheticPhoto(640, 480, 'jpeg') },
    { name: 'synthetic-480x640', bytes: await syntheticPhoto(480, 640, 'png') },
    { name: 'synthetic-800x600', bytes: await syntheticPhoto(800, 600, 'webp') },
  );
  const bases: BasePhoto[] = [];
  for (const [index, source] of sources.entries()) {
    const resized = () =>
      sharp(source.bytes)
        .keepMetadata()
        .resize({ width: maxEdge, height: maxEdge, fit: 'inside', withoutEnlargement: true });
    const variant = index % 3;
    bases.push({
      name: `${source.name}.jpg`,
      format: 'jpeg',
      bytes: await resized()
        .jpeg({ quality: 88, progressive: variant === 1 })
        .toBuffer(),
    });
    bases.push({
      name: `${source.name}.png`,
      format: 'png',
      bytes: await resized()
        .png({ compressionLevel: 6, progressive: variant === 2 })
        .toBuffer(),
    });
    const webp = resized();
    bases.push({
      name: `${source.name}.webp`,
      format: 'webp',
      bytes: await (
        variant === 0
          ? webp.webp({ quality: 80 })
          : variant === 1
            ? webp.webp({ lossless: true, effort: 0 })
            : webp.ensureAlpha(0.9).webp({ quality: 80 })
      ).toBuffer(),
    });
  }
  return { bases, real };
}

interface Segment {
  /** Offset of the segment/chunk header. */
  offset: number;
  /** Where its payload starts. */
  data: number;
  length: number;
  tag: string;
}

/** JPEG marker segments up to and including SOS (the entropy-coded data follows). */
function jpegSegments(bytes: Uint8Array): Segment[] {
  const segments: Segment[] = [];
  let offset = 2;
  while (offset + 4 <= bytes.length) {
    if (bytes[offset] !== 0xff) break;
    let markerAt = offset + 1;
    while (bytes[markerAt] === 0xff && markerAt < bytes.length) markerAt++; // fill bytes
    const marker = bytes[markerAt]!;
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) break;
    const length = (bytes[markerAt + 1]! << 8) | bytes[markerAt + 2]!;
    segments.push({ offset: markerAt - 1, data: markerAt + 3, length, tag: marker.toString(16) });
    if (marker === 0xda || length < 2) break;
    offset = markerAt + 1 + length;
  }
  return segments;
}

function pngChunks(bytes: Uint8Array): Segment[] {
  const chunks: Segment[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 8;
  while (offset + 8 <= bytes.length) {
    const length = view.getUint32(offset);
    const tag = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8));
    chunks.push({ offset, data: offset + 8, length, tag });
    if (tag === 'IEND') break;
    offset += 12 + length;
  }
  return chunks;
}

function webpChunks(bytes: Uint8Array): Segment[] {
  const chunks: Segment[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 12;
  while (offset + 8 <= bytes.length) {
    const length = view.getUint32(offset + 4, true);
    const tag = String.fromCharCode(...bytes.subarray(offset, offset + 4));
    chunks.push({ offset, data: offset + 8, length, tag });
    offset += 8 + length + (length & 1);
  }
  return chunks;
}

function segmentsOf(bytes: Uint8Array, format: ImageFormat): Segment[] {
  if (format === 'jpeg') return jpegSegments(bytes);
  if (format === 'png') return pngChunks(bytes);
  return webpChunks(bytes);
}

const isSof = (tag: string) => /^c[0-35-79a-bd-f]$/.test(tag);

/** Recomputes a PNG chunk's CRC, so a decoder believes the (mutated) chunk. */
function fixPngCrc(bytes: Uint8Array, chunk: Segment): void {
  const end = chunk.data + chunk.length;
  if (end + 4 > bytes.length) return;
  const crc = crc32(bytes.subarray(chunk.offset + 4, end));
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(end, crc >>> 0);
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export const MUTATION_KINDS = [
  'bit-flips',
  'overwrite',
  'truncate',
  'header',
  'chunk-length',
  'huge-dimensions',
  'stacked',
] as const;
export type MutationKind = (typeof MUTATION_KINDS)[number];

/** Relative frequency of each kind (stacked combines 2–4 of the others). */
const WEIGHTS: Record<MutationKind, number> = {
  'bit-flips': 20,
  overwrite: 15,
  truncate: 20,
  header: 15,
  'chunk-length': 10,
  'huge-dimensions': 10,
  stacked: 10,
};

type Mutate = (bytes: Uint8Array, format: ImageFormat, r: Random) => Uint8Array;

const bitFlips: Mutate = (bytes, _format, r) => {
  const flips = r.pick([1, 1, 2, 4, 8, 32, 128]);
  for (let i = 0; i < flips; i++) {
    // Half in the first 2 KB, where the headers are; half anywhere.
    const limit = r.next() < 0.5 ? Math.min(2048, bytes.length) : bytes.length;
    bytes[r.int(0, limit - 1)]! ^= 1 << r.int(0, 7);
  }
  return bytes;
};

const overwrite: Mutate = (bytes, _format, r) => {
  const length = r.int(1, Math.min(r.pick([16, 512, 8192]), bytes.length));
  const start = r.int(0, bytes.length - length);
  const fill = r.pick(['random', 'zero', 'ff'] as const);
  for (let i = start; i < start + length; i++) {
    bytes[i] = fill === 'zero' ? 0 : fill === 'ff' ? 0xff : r.int(0, 255);
  }
  return bytes;
};

const truncate: Mutate = (bytes, _format, r) => {
  const limit = r.next() < 0.4 ? Math.min(2048, bytes.length - 1) : bytes.length - 1;
  return bytes.subarray(0, r.int(1, Math.max(1, limit)));
};

const header: Mutate = (bytes, format, r) => {
  const segments = segmentsOf(bytes, format);
  if (format === 'jpeg') {
    const sof = segments.find((s) => isSof(s.tag));
    const choice = r.int(0, 4);
    if (choice === 0 || !sof) {
      bytes[r.int(0, 1)] = r.int(0, 255); // SOI
    } else if (choice === 1) {
      bytes[sof.data] = r.pick([0, 1, 7, 9, 12, 16, 255]); // sample precision
    } else if (choice === 2) {
      bytes[sof.data + 5] = r.pick([0, 2, 5, 255]); // component count
    } else if (choice === 3) {
      // A component's sampling factors or quantisation table.
      const component = sof.data + 6 + 3 * r.int(0, 2);
      if (component + 2 < bytes.length) bytes[component + r.int(1, 2)] = r.int(0, 255);
    } else {
      // The payload of another table (DQT, DHT, SOS, APPn).
      const segment = r.pick(segments);
      const end = Math.min(bytes.length, segment.data + Math.max(0, segment.length - 2));
      for (let i = segment.data; i < end; i++) if (r.next() < 0.3) bytes[i] = r.int(0, 255);
    }
  } else if (format === 'png') {
    const ihdr = segments.find((s) => s.tag === 'IHDR');
    const choice = r.int(0, 3);
    if (choice === 0 || !ihdr) {
      bytes[r.int(0, 7)] = r.int(0, 255); // signature
    } else {
      if (choice === 1) bytes[ihdr.data + 8] = r.pick([0, 3, 7, 17, 255]); // bit depth
      if (choice === 2) bytes[ihdr.data + 9] = r.pick([1, 5, 7, 255]); // colour type
      if (choice === 3) bytes[ihdr.data + 10 + r.int(0, 2)] = r.int(1, 255); // method/interlace
      if (r.next() < 0.7) fixPngCrc(bytes, ihdr);
    }
  } else {
    const first = segments[0];
    const choice = r.int(0, 3);
    if (choice === 0 || !first) {
      bytes[r.pick([0, 1, 2, 3, 8, 9, 10, 11])] = r.int(0, 255); // RIFF / WEBP
    } else if (choice === 1) {
      bytes[first.offset + r.int(0, 3)] = r.int(0, 255); // chunk fourcc
    } else {
      const vp8 = segments.find((s) => s.tag === 'VP8 ' || s.tag === 'VP8L') ?? first;
      if (vp8.tag === 'VP8L')
        bytes[vp8.data] = r.int(0, 255); // signature 0x2f
      else bytes[vp8.data + r.int(0, 5)] = r.int(0, 255); // frame tag / start code
    }
  }
  return bytes;
};

const chunkLength: Mutate = (bytes, format, r) => {
  const segments = segmentsOf(bytes, format);
  if (segments.length === 0) return overwrite(bytes, format, r);
  const segment = r.pick(segments);
  const data = view(bytes);
  if (format === 'jpeg') {
    const value = r.pick([
      0,
      1,
      2,
      segment.length + 1,
      segment.length - 1,
      r.int(0, 0xffff),
      0xffff,
    ]);
    data.setUint16(segment.offset + 2, Math.max(0, Math.min(0xffff, value)));
  } else if (format === 'png') {
    const value = r.pick([
      0,
      segment.length + 1,
      segment.length - 1,
      r.int(0, 1 << 24),
      0x7fffffff,
      0xffffffff,
    ]);
    data.setUint32(segment.offset, Math.max(0, value) >>> 0);
  } else if (r.next() < 0.3) {
    data.setUint32(4, r.pick([0, 4, bytes.length, bytes.length * 4, 0xffffffff]) >>> 0, true); // RIFF
  } else {
    const value = r.pick([
      0,
      1,
      segment.length + 1,
      segment.length - 2,
      r.int(0, 1 << 24),
      0xffffffff,
    ]);
    data.setUint32(segment.offset + 4, Math.max(0, value) >>> 0, true);
  }
  return bytes;
};

/** Declared sizes: over any limit, zero, and just under the 64 MP default (a bomb that passes). */
const hugeDimensions: Mutate = (bytes, format, r) => {
  const segments = segmentsOf(bytes, format);
  const data = view(bytes);
  const [width, height] = r.pick([
    [65535, 65535],
    [0, 1000],
    [8000, 7999],
    [16383, 3000],
    [r.int(2000, 8000), r.int(2000, 8000)],
  ] as const);
  if (format === 'jpeg') {
    const sof = segments.find((s) => isSof(s.tag));
    if (!sof || sof.data + 5 > bytes.length) return overwrite(bytes, format, r);
    data.setUint16(sof.data + 1, Math.min(height, 0xffff));
    data.setUint16(sof.data + 3, Math.min(width, 0xffff));
  } else if (format === 'png') {
    const ihdr = segments.find((s) => s.tag === 'IHDR');
    if (!ihdr) return overwrite(bytes, format, r);
    const huge = r.next() < 0.2;
    data.setUint32(ihdr.data, huge ? 0x7fffffff : width);
    data.setUint32(ihdr.data + 4, huge ? 100_000 : height);
    if (r.next() < 0.85) fixPngCrc(bytes, ihdr);
  } else {
    const clamp = (value: number, bits: number) => Math.max(1, Math.min(value, 2 ** bits)) - 1;
    for (const chunk of segments) {
      if (chunk.tag === 'VP8X' && chunk.data + 10 <= bytes.length) {
        const w = clamp(width * 4, 24);
        const h = clamp(height * 4, 24);
        bytes.set(
          [w & 0xff, (w >> 8) & 0xff, w >> 16, h & 0xff, (h >> 8) & 0xff, h >> 16],
          chunk.data + 4,
        );
      } else if (chunk.tag === 'VP8 ' && chunk.data + 10 <= bytes.length) {
        data.setUint16(chunk.data + 6, clamp(width + 1, 14), true);
        data.setUint16(chunk.data + 8, clamp(height + 1, 14), true);
      } else if (chunk.tag === 'VP8L' && chunk.data + 5 <= bytes.length) {
        const packed = data.getUint32(chunk.data + 1, true);
        const rest = packed & 0xf0000000;
        const value = (rest | (clamp(height, 14) << 14) | clamp(width, 14)) >>> 0;
        data.setUint32(chunk.data + 1, value, true);
      }
    }
  }
  return bytes;
};

const SIMPLE: Record<Exclude<MutationKind, 'stacked'>, Mutate> = {
  'bit-flips': bitFlips,
  overwrite,
  truncate,
  header,
  'chunk-length': chunkLength,
  'huge-dimensions': hugeDimensions,
};

export interface Mutation {
  index: number;
  kind: MutationKind;
  base: string;
  format: ImageFormat;
  bytes: Uint8Array;
}

function pickKind(r: Random): MutationKind {
  const total = MUTATION_KINDS.reduce((sum, kind) => sum + WEIGHTS[kind], 0);
  let roll = r.next() * total;
  for (const kind of MUTATION_KINDS) {
    roll -= WEIGHTS[kind];
    if (roll < 0) return kind;
  }
  return 'bit-flips';
}

/** `count` mutations of `bases`, the same ones for the same seed. */
export function* mutations(bases: BasePhoto[], count: number, seed = 1): Generator<Mutation> {
  const r = seededRandom(seed);
  for (let index = 0; index < count; index++) {
    const base = r.pick(bases);
    const kind = pickKind(r);
    let bytes: Uint8Array = Uint8Array.from(base.bytes);
    if (kind === 'stacked') {
      const simple = Object.values(SIMPLE);
      const steps = r.int(2, 4);
      for (let i = 0; i < steps && bytes.length > 0; i++)
        bytes = r.pick(simple)(bytes, base.format, r);
    } else {
      bytes = SIMPLE[kind](bytes, base.format, r);
    }
    yield { index, kind, base: base.name, format: base.format, bytes };
  }
}

// ---------------------------------------------------------------------------------------------
// Outcomes

/** A 200, or a 4xx that is the catalog's status for the code in the body. */
export function isAcceptedAnswer(status: number, code: unknown): boolean {
  if (status === 200) return true;
  return (
    status >= 400 && status < 500 && isErrorCode(code) && ERROR_CATALOG[code].status === status
  );
}

export interface OutcomeTally {
  /** `200`, `422 E_CORRUPT_IMAGE`, …, or `timeout` / `network error`. */
  byAnswer: Record<string, number>;
  byKind: Record<string, Record<string, number>>;
  /** Everything that was neither 200 nor a catalog 4xx (the first 20). */
  unexpected: { index: number; kind: string; base: string; answer: string; message?: string }[];
  unexpectedCount: number;
}

export function newTally(): OutcomeTally {
  return { byAnswer: {}, byKind: {}, unexpected: [], unexpectedCount: 0 };
}

export function record(
  tally: OutcomeTally,
  mutation: Mutation,
  answer: { status?: number; code?: unknown; message?: unknown; failure?: string },
): void {
  const label =
    answer.failure ?? `${answer.status}${answer.status === 200 ? '' : ` ${String(answer.code)}`}`;
  tally.byAnswer[label] = (tally.byAnswer[label] ?? 0) + 1;
  const kind = (tally.byKind[mutation.kind] ??= {});
  kind[label] = (kind[label] ?? 0) + 1;
  if (answer.failure || !isAcceptedAnswer(answer.status ?? 0, answer.code)) {
    tally.unexpectedCount++;
    if (tally.unexpected.length < 20) {
      tally.unexpected.push({
        index: mutation.index,
        kind: mutation.kind,
        base: mutation.base,
        answer: label,
        message: typeof answer.message === 'string' ? answer.message : undefined,
      });
    }
  }
}

const FILE_NAMES: Record<ImageFormat, [string, string]> = {
  jpeg: ['photo.jpg', 'image/jpeg'],
  png: ['photo.png', 'image/png'],
  webp: ['photo.webp', 'image/webp'],
};

/** One upload as a phone sends it; a hang (no answer in `timeoutMs`) is an outcome too. */
export async function sendMutation(
  base: string,
  pin: string,
  mutation: Mutation,
  timeoutMs = 60_000,
): Promise<{ status?: number; code?: unknown; message?: unknown; failure?: string }> {
  const [filename, type] = FILE_NAMES[mutation.format];
  const form = new FormData();
  form.append('image', new Blob([mutation.bytes], { type }), filename);
  try {
    const response = await fetch(`${base}/upload/`, {
      method: 'POST',
      body: form,
      headers: { 'X-Event-Pin': pin },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    let body: { code?: unknown; message?: unknown } = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      return { status: response.status, failure: `${response.status} not JSON` };
    }
    return { status: response.status, code: body.code, message: body.message };
  } catch (error) {
    const name = error instanceof Error ? error.name : '';
    return { failure: name === 'TimeoutError' ? 'timeout' : `network error (${String(error)})` };
  }
}

// ---------------------------------------------------------------------------------------------
// The benchmark

const COUNT = Number(process.env.MUTATED_COUNT ?? 2000);
const WARM_UP = Number(process.env.MUTATED_WARMUP ?? 200);
const BATCH = Number(process.env.MUTATED_BATCH ?? 100);
const SEED = Number(process.env.MUTATED_SEED ?? 1);
/** Uploads in flight at once: two keep the engine's two slots (decode beside inference) busy. */
const CONCURRENCY = Number(process.env.MUTATED_CONCURRENCY ?? 2);

interface RssPoint {
  after: number;
  rssMb: number;
  /** The relay's JS heap: what of the RSS is JavaScript objects rather than native memory. */
  heapMb: number;
}

async function runBenchmark(): Promise<void> {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const os = await import('node:os');
  const { freePort, PIN, spawnRelay, waitHealthy } = await import('../tests/relay-helpers.ts');

  const { bases, real } = await mutationBases();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-mutated-'));
  const port = await freePort();
  const adminToken = 'mutated-bench-admin-token-0123456789';
  const served = spawnRelay({
    PORT: String(port),
    DATA_DIR: dataDir,
    ADMIN_TOKEN: adminToken,
    UPLOADS_PER_MINUTE: '100000',
    MIN_FREE_DISK_MB: '0',
    LOG_LEVEL: 'error',
    ...(process.env.MODELS_DIR ? { MODELS_DIR: process.env.MODELS_DIR } : {}),
  });
  let exitCode: number | null | undefined;
  void served.exited.then((code) => (exitCode = code));
  const relayMemory = async (after: number): Promise<RssPoint> => {
    const response = await fetch(`${served.url}/admin/api/metrics`, {
      headers: { Authorization: `Bearer ${adminToken}` },
    });
    const metrics = (await response.json()) as { memory: { rss: number; heapUsed: number } };
    return {
      after,
      rssMb: Math.round(metrics.memory.rss / 1e6),
      heapMb: Math.round(metrics.memory.heapUsed / 1e6),
    };
  };

  const tally = newTally();
  const curve: RssPoint[] = [];
  const started = performance.now();
  try {
    await waitHealthy(served, 60_000);
    curve.push(await relayMemory(0));
    const pending = mutations(bases, COUNT, SEED);
    let done = 0;
    let nextSample = Math.min(BATCH, WARM_UP);
    const worker = async () => {
      for (let next = pending.next(); !next.done; next = pending.next()) {
        const mutation = next.value;
        record(tally, mutation, await sendMutation(served.url, PIN, mutation));
        done++;
        if (exitCode !== undefined) throw new Error(`the relay exited (code ${exitCode})`);
        if (done >= nextSample) {
          nextSample += BATCH;
          curve.push(await relayMemory(done));
          process.stdout.write(
            `\r${done}/${COUNT} inputs, relay RSS ${curve.at(-1)!.rssMb} MB, unexpected ${tally.unexpectedCount}   `,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    if (curve.at(-1)!.after !== done) curve.push(await relayMemory(done));
  } finally {
    served.child.kill('SIGTERM');
    await served.exited;
    await rm(dataDir, { recursive: true, force: true });
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write('\n');

  const at = (after: number) => curve.find((point) => point.after >= after) ?? curve.at(-1)!;
  const warm = at(WARM_UP);
  const end = curve.at(-1)!;
  const afterWarmUp = curve.filter((point) => point.after >= WARM_UP).map((p) => p.rssMb);
  const summary = {
    startMb: curve[0]!.rssMb,
    afterWarmUpMb: warm.rssMb,
    endMb: end.rssMb,
    maxAfterWarmUpMb: Math.max(...afterWarmUp),
    growthAfterWarmUpMb: end.rssMb - warm.rssMb,
    heapAfterWarmUpMb: warm.heapMb,
    heapEndMb: end.heapMb,
  };
  console.log(
    `\nMutated images — ${COUNT} inputs (seed ${SEED}, ${bases.length} bases from ${real} real photos + 3 synthetic, ×3 formats), ${CONCURRENCY} at a time, ${Math.round(seconds)} s\n`,
  );
  console.log(
    `Relay RSS: start ${summary.startMb} MB, after warm-up (${warm.after}) ${summary.afterWarmUpMb} MB, end (${end.after}) ${summary.endMb} MB; growth after warm-up ${summary.growthAfterWarmUpMb} MB, max after warm-up ${summary.maxAfterWarmUpMb} MB`,
  );
  console.log(`Curve (inputs → MB): ${curve.map((p) => `${p.after}→${p.rssMb}`).join(' ')}`);
  console.log(
    `JS heap: ${summary.heapAfterWarmUpMb} MB after warm-up, ${summary.heapEndMb} MB at the end`,
  );
  console.log('\nAnswers:');
  console.table(tally.byAnswer);
  console.log('By mutation:');
  console.table(tally.byKind);
  console.log(
    tally.unexpectedCount === 0
      ? 'Every answer was 200 or a catalog 4xx.'
      : `${tally.unexpectedCount} answers were neither 200 nor a catalog 4xx:`,
  );
  if (tally.unexpectedCount > 0) console.table(tally.unexpected);

  await writeResults('mutated', {
    count: COUNT,
    warmUp: WARM_UP,
    batch: BATCH,
    seed: SEED,
    concurrency: CONCURRENCY,
    seconds: Math.round(seconds),
    bases: bases.map((b) => ({ name: b.name, bytes: b.bytes.length })),
    rss: summary,
    curve,
    answers: tally.byAnswer,
    byKind: tally.byKind,
    unexpectedCount: tally.unexpectedCount,
    unexpected: tally.unexpected,
  });
  if (tally.unexpectedCount > 0) process.exitCode = 1;
}

// Run only as the benchmark itself; the test imports the mutator above.
if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  await runBenchmark();
}
