/**
 * `npm run bench` (relay part): a real relay process, displays in another process, uploads from
 * this one. Upload → every display received (p50/p95) for a 12 MP and a 1920×1080 photo with 1, 10
 * and 100 displays; sustained photos/s with 20 concurrent uploaders on both protocols; RSS after
 * 50 and after BENCH_SOAK uploads with 10 displays. Table printed, JSON in bench/results/.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { modelsDir } from '../electron/config/paths.ts';
import { probeImage } from '../electron/engine/image-input.ts';
import { decodeModelInput } from '../electron/engine/pipeline.ts';
import { createSession } from '../electron/engine/session.ts';
import { buildInputTensor } from '../electron/engine/tensor.ts';
import { getModelSpec } from '../electron/models/manifest.ts';
import { freePort, spawnRelay, waitHealthy } from '../tests/relay-helpers.ts';
import { stagePhotos } from './photos.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const SOAK = Number(process.env.BENCH_SOAK ?? 1000);
const THROUGHPUT_SECONDS = Number(process.env.BENCH_THROUGHPUT_SECONDS ?? 20);
const PIN = '2468';
const ADMIN_TOKEN = 'bench-admin-token-0123456789';
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (value: number, digits = 1) => Number(value.toFixed(digits));
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

async function bareInference(bytes: Buffer): Promise<number> {
  const spec = getModelSpec('u2netp');
  const session = await createSession(
    path.join(modelsDir(), spec.file),
    Math.min(4, os.availableParallelism()),
  );
  const probed = await probeImage(bytes, 64e6);
  const input = buildInputTensor(
    await decodeModelInput(bytes, probed, spec.input, 64e6),
    spec.input,
  );
  const tensor = new ort.Tensor('float32', input, [1, 3, 320, 320]);
  await session.run({ [spec.input.name]: tensor });
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    await session.run({ [spec.input.name]: tensor });
    times.push(performance.now() - started);
  }
  await session.release();
  return percentile(times, 50);
}

class Swarm {
  private readonly child: ChildProcess;
  private readonly waiters = new Map<
    string,
    { count: number; resolve: (at: number) => void; times: number[] }
  >();

  constructor() {
    this.child = fork(path.join(import.meta.dirname, 'display-swarm.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (message: { received?: { key: string; at: number } }) => {
      if (!message.received) return;
      const waiter = this.waiters.get(message.received.key);
      if (!waiter) return;
      waiter.times.push(message.received.at);
      if (waiter.times.length === waiter.count) {
        this.waiters.delete(message.received.key);
        waiter.resolve(Math.max(...waiter.times));
      }
    });
  }

  connect(url: string, count: number, protocol: 1 | 2): Promise<void> {
    return new Promise((resolve) => {
      const onMessage = (message: { connected?: number }) => {
        if (message.connected) {
          this.child.off('message', onMessage);
          resolve();
        }
      };
      this.child.on('message', onMessage);
      this.child.send({ connect: { url, count, protocol } });
    });
  }

  /** Resolves with the time the last of `count` displays received the photo keyed `key`. */
  expect(key: string, count: number): Promise<number> {
    return new Promise((resolve) => this.waiters.set(key, { count, resolve, times: [] }));
  }

  async disconnect(): Promise<void> {
    await new Promise<void>((resolve) => {
      const onMessage = (message: { closed?: boolean }) => {
        if (message.closed) {
          this.child.off('message', onMessage);
          resolve();
        }
      };
      this.child.on('message', onMessage);
      this.child.send({ close: true });
    });
    await sleep(200);
  }

  kill(): void {
    this.child.kill();
  }
}

async function upload(
  base: string,
  bytes: Buffer,
  description: string,
): Promise<{ status: number; retryAfter: string | null }> {
  const form = new FormData();
  form.append('image', new Blob([bytes], { type: 'image/jpeg' }), 'bench.jpg');
  form.append('description', description);
  const response = await fetch(`${base}/upload/`, {
    method: 'POST',
    body: form,
    headers: { 'X-Event-Pin': PIN },
  });
  await response.arrayBuffer();
  return { status: response.status, retryAfter: response.headers.get('retry-after') };
}

async function relayRssMb(base: string): Promise<number> {
  const response = await fetch(`${base}/admin/api/metrics`, {
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, Host: 'localhost' },
  });
  const body = (await response.json()) as { memory: { rss: number } };
  return round(body.memory.rss / 1e6);
}

const photos = await stagePhotos();
const [phone, hd] = photos;
console.log('measuring bare inference…');
const bare = await bareInference(phone!.bytes);

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-bench-'));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const relay = spawnRelay({
  PORT: String(port),
  EVENT_PIN: PIN,
  ADMIN_TOKEN,
  DATA_DIR: dataDir,
  LOG_LEVEL: 'ERROR',
  UPLOADS_PER_MINUTE: '100000',
});
const swarm = new Swarm();
try {
  await waitHealthy(relay);
  const wsUrl = `ws://127.0.0.1:${port}/ws?pin=${PIN}`;

  // Latency: upload → every display received, original protocol.
  const latency: Record<string, unknown>[] = [];
  let connected = 0;
  for (const displays of [1, 10, 100]) {
    await swarm.connect(wsUrl, displays - connected, 1);
    connected = displays;
    for (const photo of [phone!, hd!]) {
      await upload(base, photo.bytes, `warm-${displays}-${photo.name}`);
      const samples: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const key = `lat-${displays}-${photo.name}-${i}`;
        const received = swarm.expect(key, displays);
        const started = now();
        const { status } = await upload(base, photo.bytes, key);
        if (status !== 200) throw new Error(`upload answered ${status}`);
        samples.push((await received) - started);
      }
      const p50 = percentile(samples, 50);
      latency.push({
        photo: photo.name,
        displays,
        'p50 ms': round(p50),
        'p95 ms': round(percentile(samples, 95)),
        'p50 / bare': round(p50 / bare, 2),
        target:
          photo.name === '12mp-phone'
            ? displays === 1
              ? '≤ 1.8'
              : displays === 100
                ? '≤ 2.2'
                : ''
            : '',
      });
    }
  }
  await swarm.disconnect();

  // Throughput: 20 concurrent uploaders for a while, 10 displays, each protocol.
  const throughput: Record<string, unknown>[] = [];
  for (const protocol of [1, 2] as const) {
    await swarm.connect(protocol === 1 ? wsUrl : `${wsUrl}&protocol=2`, 10, protocol);
    const counts = { ok: 0, busy: 0, other: 0, busyWithoutRetryAfter: 0 };
    const deadline = Date.now() + THROUGHPUT_SECONDS * 1000;
    let n = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (Date.now() < deadline) {
          const result = await upload(base, hd!.bytes, `tp-${protocol}-${n++}`);
          if (result.status === 200) counts.ok++;
          else if (result.status === 503) {
            counts.busy++;
            if (!result.retryAfter) counts.busyWithoutRetryAfter++;
            await sleep(250); // a real client honours Retry-After; a short wait keeps pressure on
          } else counts.other++;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    throughput.push({
      protocol: protocol === 1 ? 'original' : 'protocol 2',
      uploaders: 20,
      seconds: round(seconds),
      'photos/s': round(counts.ok / seconds, 2),
      target: round(0.75 * (1000 / bare), 2),
      '200': counts.ok,
      '503': counts.busy,
      'other statuses': counts.other,
      '503 without Retry-After': counts.busyWithoutRetryAfter,
    });
    await swarm.disconnect();
  }

  // Soak: RSS after 50 and after SOAK uploads with 10 displays.
  await swarm.connect(wsUrl, 10, 1);
  const small = await sharp(hd!.bytes).resize(640).jpeg().toBuffer();
  const rssStart = await relayRssMb(base);
  let rssAt50 = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: 3 }, async () => {
      while (done < SOAK) {
        const i = done++;
        const result = await upload(base, small, `soak-${i}`);
        if (result.status === 503) await sleep(200);
        if (i === 50) rssAt50 = await relayRssMb(base);
        if (i > 0 && i % 100 === 0) process.stderr.write(`soak ${i}/${SOAK}\r`);
      }
    }),
  );
  const rssEnd = await relayRssMb(base);
  const memory = {
    'RSS at start MB': rssStart,
    'RSS after 50 MB': rssAt50,
    [`RSS after ${SOAK} MB`]: rssEnd,
    ratio: round(rssEnd / rssAt50, 2),
    target: '≤ 1.2',
  };

  console.log(
    `\nRelay benchmark — ${os.cpus().length} cores, u2netp, bare inference ${round(bare)} ms (median of ${RUNS}), ${RUNS} uploads per row\n`,
  );
  console.log(
    'Upload → every display received (original protocol, displays in a separate process):',
  );
  console.table(latency);
  console.log(
    '\nSustained throughput, 20 concurrent uploaders of the 1920×1080 photo, 10 displays:',
  );
  console.table(throughput);
  console.log(`\nMemory of the relay process, 640 px uploads, 3 at a time, 10 displays:`);
  console.table([memory]);

  const resultsDir = path.join(import.meta.dirname, 'results');
  await mkdir(resultsDir, { recursive: true });
  const file = path.join(
    resultsDir,
    `relay-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
  );
  await writeFile(
    file,
    JSON.stringify(
      {
        when: new Date().toISOString(),
        cores: os.cpus().length,
        bareInferenceMs: bare,
        runs: RUNS,
        latency,
        throughput,
        memory,
      },
      null,
      2,
    ),
  );
  console.log(`\nJSON written to ${path.relative(process.cwd(), file)}`);
} finally {
  swarm.kill();
  relay.child.kill('SIGTERM');
  await relay.exited;
  await rm(dataDir, { recursive: true, force: true });
}
