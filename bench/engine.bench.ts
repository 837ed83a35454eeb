/**
 * `npm run bench`: per model and thread count, the median time of each engine stage on three
 * photo sizes, end to end, against bare inference measured in the same run; batch throughput;
 * peak RSS. Prints a table and writes JSON to bench/results/.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { createEngine } from '../electron/engine/index.ts';
import { probeImage } from '../electron/engine/image-input.ts';
import { decodeModelInput } from '../electron/engine/pipeline.ts';
import { createSession } from '../electron/engine/session.ts';
import { buildInputTensor } from '../electron/engine/tensor.ts';
import { modelsDir } from '../electron/config/paths.ts';
import { loadManifest } from '../electron/models/manifest.ts';
import { checkModel } from '../electron/models/model-files.ts';
import { batchPhotos, stagePhotos } from './photos.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const BATCH = Number(process.env.BENCH_BATCH ?? 12);
const DISPLAY_EDGE = 1920;
const THREADS = (process.env.BENCH_THREADS ?? '1,2').split(',').map(Number);

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};
const round = (value: number, digits = 1) => Number(value.toFixed(digits));

async function bareInference(
  modelPath: string,
  threads: number,
  input: Float32Array,
  dims: number[],
  name: string,
) {
  const session = await createSession(modelPath, threads);
  const tensor = new ort.Tensor('float32', input, dims);
  await session.run({ [name]: tensor });
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    await session.run({ [name]: tensor });
    times.push(performance.now() - started);
  }
  await session.release();
  return median(times);
}

interface StageRow {
  model: string;
  threads: number;
  photo: string;
  decodeMs: number;
  inferenceMs: number;
  maskMs: number;
  waitMs: number;
  composeMs: number;
  encodeMs: number;
  endToEndMs: number;
  bareInferenceMs: number;
  ratio: number;
  outputSize: string;
  pngBytes: number;
}

const stagePhotoSet = await stagePhotos();
const batch = await batchPhotos(BATCH);
const dir = modelsDir();
const rows: StageRow[] = [];
const throughput: {
  model: string;
  threads: number;
  photos: number;
  photosPerSecond: number;
  target: number;
  bareInferenceMs: number;
}[] = [];

for (const spec of loadManifest().models) {
  if ((await checkModel(dir, spec, false)).state !== 'ok') {
    console.warn(`skipping ${spec.id}: not installed in ${dir}`);
    continue;
  }
  const modelPath = path.join(dir, spec.file);
  const phone = stagePhotoSet[0]!;
  const probed = await probeImage(phone.bytes, 64e6);
  const input = buildInputTensor(
    await decodeModelInput(phone.bytes, probed, spec.input, 64e6),
    spec.input,
  );
  const { width, height } = spec.input;
  const dims = spec.input.layout === 'NCHW' ? [1, 3, height, width] : [1, height, width, 3];

  for (const threads of THREADS) {
    const bare = await bareInference(modelPath, threads, input, dims, spec.input.name);
    const engine = await createEngine({ model: spec.id, threads });
    for (const photo of stagePhotoSet) {
      await engine.segment(photo.bytes, { maxEdge: DISPLAY_EDGE }); // warm-up
      const samples: { wall: number; result: Awaited<ReturnType<typeof engine.segment>> }[] = [];
      for (let i = 0; i < RUNS; i++) {
        const started = performance.now();
        const result = await engine.segment(photo.bytes, { maxEdge: DISPLAY_EDGE });
        samples.push({ wall: performance.now() - started, result });
      }
      const stage = (pick: (s: (typeof samples)[number]) => number) =>
        round(median(samples.map(pick)));
      const endToEnd = stage((s) => s.wall);
      const last = samples.at(-1)!.result;
      rows.push({
        model: spec.id,
        threads,
        photo: photo.name,
        decodeMs: stage((s) => s.result.timings.decodeMs),
        inferenceMs: stage((s) => s.result.timings.inferenceMs),
        maskMs: stage((s) => s.result.timings.maskMs),
        waitMs: stage((s) => s.result.timings.outputDecodeWaitMs),
        composeMs: stage((s) => s.result.timings.composeMs),
        encodeMs: stage((s) => s.result.timings.encodeMs),
        endToEndMs: endToEnd,
        bareInferenceMs: round(bare),
        ratio: round(endToEnd / bare, 2),
        outputSize: `${last.width}×${last.height}`,
        pngBytes: last.image.length,
      });
    }
    // Throughput: the whole batch submitted at once, as a busy event would.
    await engine.segment(batch[0]!.bytes, { maxEdge: DISPLAY_EDGE });
    const started = performance.now();
    await Promise.all(batch.map((photo) => engine.segment(photo.bytes, { maxEdge: DISPLAY_EDGE })));
    const seconds = (performance.now() - started) / 1000;
    throughput.push({
      model: spec.id,
      threads,
      photos: batch.length,
      photosPerSecond: round(batch.length / seconds, 2),
      target: round(0.8 * (1000 / bare), 2),
      bareInferenceMs: round(bare),
    });
    await engine.dispose();
  }
}

const run = promisify(execFile);
const probe = await run(
  process.execPath,
  ['--import', 'tsx', path.join(import.meta.dirname, 'rss-probe.ts'), '2'],
  {
    cwd: path.resolve(import.meta.dirname, '..'),
  },
);
const memory = JSON.parse(probe.stdout.trim().split('\n').at(-1)!) as Record<
  string,
  number | string
>;

console.log(
  `\nEngine benchmark — ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'cpu'}), medians of ${RUNS} runs, display long edge ${DISPLAY_EDGE}\n`,
);
console.table(
  rows.map((row) => ({
    model: row.model,
    thr: row.threads,
    photo: row.photo,
    'decode→model in': row.decodeMs,
    inference: row.inferenceMs,
    mask: row.maskMs,
    'wait out-decode': row.waitMs,
    'upscale+compose': row.composeMs,
    encode: row.encodeMs,
    'end-to-end': row.endToEndMs,
    'bare infer': row.bareInferenceMs,
    'e2e/bare': row.ratio,
    out: row.outputSize,
    'PNG KB': Math.round(row.pngBytes / 1024),
  })),
);
console.log('\nBatch throughput (whole batch submitted at once):');
console.table(throughput);
console.log(
  '\nMemory and full-resolution export (u2netp, 2 threads, 12 MP phone JPEG, separate process):',
);
console.table([memory]);

const phoneRow = rows.find(
  (r) => r.model === 'u2netp' && r.threads === 2 && r.photo === '12mp-phone',
);
const phoneThroughput = throughput.find((t) => t.model === 'u2netp' && t.threads === 2);
const targets = {
  'e2e 12 MP display ≤ 1.5 × bare u2netp (2 threads)': phoneRow
    ? `${phoneRow.ratio}× ${phoneRow.ratio <= 1.5 ? 'PASS' : 'MISS'}`
    : 'n/a',
  'batch ≥ 0.8 × 1/bare (u2netp, 2 threads)': phoneThroughput
    ? `${phoneThroughput.photosPerSecond}/s vs ${phoneThroughput.target}/s ${phoneThroughput.photosPerSecond >= phoneThroughput.target ? 'PASS' : 'MISS'}`
    : 'n/a',
  'peak RSS 12 MP ≤ 400 MB': `${round(Number(memory.displayPeakMb))} MB display, ${round(Number(memory.fullPeakMb))} MB with full-res ${Number(memory.displayPeakMb) <= 400 ? 'PASS' : 'MISS'}`,
  'display PNG ≤ 3 MB as base64': `${round(Number(memory.displayBase64Bytes) / 1e6, 2)} MB ${Number(memory.displayBase64Bytes) <= 3e6 ? 'PASS' : 'MISS'}`,
};
console.log('\nTargets:');
for (const [name, value] of Object.entries(targets)) console.log(`  ${name}: ${value}`);

const resultsDir = path.join(import.meta.dirname, 'results');
await mkdir(resultsDir, { recursive: true });
const file = path.join(resultsDir, `engine-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
await writeFile(
  file,
  JSON.stringify(
    {
      when: new Date().toISOString(),
      machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version },
      runs: RUNS,
      displayEdge: DISPLAY_EDGE,
      photos: stagePhotoSet.map((p) => ({ name: p.name, source: p.source })),
      batch: batch.map((p) => p.source),
      stages: rows,
      throughput,
      memory,
      targets,
    },
    null,
    2,
  ),
);
console.log(`\nJSON written to ${path.relative(process.cwd(), file)}`);
