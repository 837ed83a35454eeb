/**
 * `npm run bench:cluster`: several machines through Redis (issue 12), all real processes on
 * loopback: a redis-server of its own, relays, `photo-relay worker`s, walls in separate processes
 * (display-swarm.ts).
 *
 * 1. Photos/s for a batch of BENCH_BATCH real photos uploaded at once (first send → last 200):
 *    one relay on its own (no REDIS_URL, THREADS=2) as the baseline, then a relay with
 *    LOCAL_WORKER=0 and 1, then 2 workers with THREADS=1 each. Median upload → 200 per photo.
 * 2. Upload → every wall received, for BENCH_WALLS walls on one relay against the same walls
 *    split over 2 relays (upload to the first; the second fetches the cut-out from it), one photo
 *    at a time, BENCH_RUNS runs: p50/p95/max across walls, median over runs. Protocol 1 (the
 *    base64 PNG in the message) and protocol 2 (the notice only: the swarm does not then fetch
 *    the image, so that row is the notice's latency, not the bytes').
 * 3. Redis's own cost: commands, bytes in/out and memory per photo, the shared log's length.
 *
 * Table printed, JSON in bench/results/. The machine is shared and has 2 cores: every figure is
 * from one run and noisy.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import {
  spawnClusterRelay,
  spawnWorker,
  startRedis,
  stopProcess,
  waitWorkerReady,
  workerHealth,
  type ServedWorker,
  type TestRedis,
} from '../tests/cluster-helpers.ts';
import { PIN } from '../tests/relay-helpers.ts';
import { batchPhotos, stagePhotos, type BenchPhoto } from './photos.ts';
import { writeResults } from './results.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 6);
const BATCH = Number(process.env.BENCH_BATCH ?? 20);
const WALLS = Number(process.env.BENCH_WALLS ?? 200);
const PROTOCOL_2 = process.env.BENCH_PROTOCOL_2 !== '0';
const WALL_TIMEOUT_MS = 120_000;

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (value: number, digits = 1) => Number(value.toFixed(digits));
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  ]!;
};
const median = (values: number[]) => percentile(values, 50);

/** Limits raised so one address (this process, the swarms) may do what a room of devices does. */
const RELAY_LIMITS = {
  UPLOADS_PER_MINUTE: '100000',
  UPLOADS_PER_ADDRESS: '1000',
  UPLOADS_TOTAL: '10000',
  QUEUE_SIZE: '10000',
  WS_PER_ADDRESS: '100000',
  WS_TOTAL: '100000',
  CONNECTIONS_PER_ADDRESS: '100000',
  CONNECTIONS_TOTAL: '1000000',
};

// Everything started, so that every exit path stops it.
const processes: { child: ChildProcess; exited: Promise<unknown> }[] = [];
const swarms: Swarm[] = [];
const redisServers: TestRedis[] = [];
const clients: Redis[] = [];
const dirs: string[] = [];

/** display-swarm.ts in a process of its own; every wall's arrival time kept per photo. */
class Swarm {
  private readonly child: ChildProcess;
  private readonly arrivals = new Map<string, number[]>();
  private readonly waiters = new Map<string, { count: number; resolve: () => void }>();
  private errors = 0;

  constructor() {
    this.child = fork(path.join(import.meta.dirname, 'display-swarm.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    swarms.push(this);
    this.child.on(
      'message',
      (message: { received?: { key: string; at: number }; error?: string }) => {
        if (message.error) this.errors++;
        if (!message.received) return;
        const { key, at } = message.received;
        const times = this.arrivals.get(key) ?? [];
        times.push(at);
        this.arrivals.set(key, times);
        const waiter = this.waiters.get(key);
        if (waiter && times.length >= waiter.count) {
          this.waiters.delete(key);
          waiter.resolve();
        }
      },
    );
  }

  connect(url: string, count: number, protocol: 1 | 2): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`${count} walls did not all open on ${url} (${this.errors} errors)`)),
        60_000,
      );
      const onMessage = (message: { connected?: number }) => {
        if (message.connected) {
          clearTimeout(timer);
          this.child.off('message', onMessage);
          resolve();
        }
      };
      this.child.on('message', onMessage);
      this.child.send({ connect: { url, count, protocol } });
    });
  }

  /** Every arrival time of the photo `key` once `count` walls have it. */
  async arrived(key: string, count: number): Promise<number[]> {
    if ((this.arrivals.get(key)?.length ?? 0) < count) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.waiters.delete(key);
          reject(
            new Error(
              `only ${this.arrivals.get(key)?.length ?? 0} of ${count} walls got ${key} within ${WALL_TIMEOUT_MS / 1000} s`,
            ),
          );
        }, WALL_TIMEOUT_MS);
        this.waiters.set(key, {
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    }
    return this.arrivals.get(key)!;
  }

  /** How many arrivals of `key` so far (a wall getting it twice would show here). */
  count(key: string): number {
    return this.arrivals.get(key)?.length ?? 0;
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
    await sleep(300);
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

async function upload(base: string, photo: BenchPhoto, description: string) {
  const form = new FormData();
  form.append('image', new Blob([photo.bytes], { type: 'image/jpeg' }), photo.name);
  form.append('description', description);
  const response = await fetch(`${base}/upload/`, {
    method: 'POST',
    body: form,
    headers: { 'X-Event-Pin': PIN },
  });
  const body = (await response.json().catch(() => ({}))) as { id?: string; error?: string };
  return { status: response.status, body };
}

type Relay = Awaited<ReturnType<typeof spawnClusterRelay>>;

async function relay(env: Record<string, string>, name: string): Promise<Relay> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `photo-relay-bench-${name}-`));
  dirs.push(dir);
  const served = await spawnClusterRelay({ ...RELAY_LIMITS, DATA_DIR: dir, ...env });
  processes.push(served);
  return served;
}

async function worker(env: Record<string, string>): Promise<ServedWorker> {
  const served = await spawnWorker(env);
  processes.push(served);
  await waitWorkerReady(served);
  return served;
}

/** INFO as numbers (the fields this benchmark reads). */
async function info(client: Redis): Promise<Record<string, number>> {
  const text = await client.info();
  const fields: Record<string, number> = {};
  for (const line of text.split('\r\n')) {
    const [key, value] = line.split(':');
    if (key && value !== undefined && /^-?\d+(\.\d+)?$/.test(value)) fields[key] = Number(value);
  }
  return fields;
}

/** Redis commands per second while nothing is uploaded (heartbeats, blocked reads, stall checks). */
async function idleCommandRate(client: Redis, seconds = 4): Promise<number> {
  const before = await info(client);
  await sleep(seconds * 1000);
  const after = await info(client);
  // The INFO call itself counts as one.
  return (after.total_commands_processed! - before.total_commands_processed! - 1) / seconds;
}

interface BatchResult {
  setup: string;
  'photos/s': number;
  seconds: number;
  'median upload→200 ms': number;
  'max upload→200 ms': number;
  ok: number;
  'other statuses': string;
  'jobs per worker': string;
}

/** BATCH photos uploaded at once; photos/s from the first send to the last 200. */
async function batch(
  setup: string,
  base: string,
  photos: BenchPhoto[],
  workers: ServedWorker[],
  tag: string,
): Promise<BatchResult> {
  const doneBefore = await Promise.all(workers.map(async (w) => (await workerHealth(w)).done));
  const started = now();
  const answers = await Promise.all(
    photos.map(async (photo, i) => {
      const sent = now();
      const answer = await upload(base, photo, `${tag}-${i}`);
      return { ...answer, ms: now() - sent, at: now() };
    }),
  );
  const ok = answers.filter((answer) => answer.status === 200);
  const last = Math.max(...ok.map((answer) => answer.at));
  const seconds = (last - started) / 1000;
  const others = answers
    .filter((answer) => answer.status !== 200)
    .map((answer) => `${answer.status} ${answer.body.error ?? ''}`.trim());
  const doneAfter = await Promise.all(workers.map(async (w) => (await workerHealth(w)).done));
  return {
    setup,
    'photos/s': round(ok.length / seconds, 2),
    seconds: round(seconds, 1),
    'median upload→200 ms': round(median(ok.map((answer) => answer.ms)), 0),
    'max upload→200 ms': round(Math.max(...ok.map((answer) => answer.ms)), 0),
    ok: ok.length,
    'other statuses': others.join(', ') || '—',
    'jobs per worker': workers.length
      ? doneAfter.map((done, i) => done - doneBefore[i]!).join(' + ')
      : 'in the relay',
  };
}

interface WallRow {
  setup: string;
  protocol: number;
  walls: number;
  runs: number;
  'p50 ms': number;
  'p95 ms': number;
  'max ms': number;
  'p50 on relay 1': number;
  'p50 on relay 2': number | string;
  'upload→200 ms': number;
  'deliveries not once': number;
}

/**
 * One photo at a time: upload to `base`, time to each wall. The walls of `groups` are the swarms
 * and how many walls each holds. Per run the percentiles across walls; the row is their median.
 */
async function wallRuns(
  setup: string,
  protocol: 1 | 2,
  base: string,
  photo: BenchPhoto,
  groups: { swarm: Swarm; count: number }[],
  tag: string,
): Promise<WallRow> {
  const total = groups.reduce((n, group) => n + group.count, 0);
  // One first, not measured: the relays' first broadcast to these sockets.
  await upload(base, photo, `${tag}-warm`);
  await Promise.all(groups.map((group) => group.swarm.arrived(`${tag}-warm`, group.count)));
  const per: { p50: number; p95: number; max: number; groupP50: number[]; uploadMs: number }[] = [];
  let notOnce = 0;
  for (let run = 0; run < RUNS; run++) {
    const key = `${tag}-${run}`;
    const started = now();
    const answer = await upload(base, photo, key);
    if (answer.status !== 200) throw new Error(`upload answered ${answer.status}`);
    const uploadMs = now() - started;
    const arrivals = await Promise.all(
      groups.map((group) => group.swarm.arrived(key, group.count)),
    );
    const all = arrivals.flat().map((at) => at - started);
    per.push({
      p50: percentile(all, 50),
      p95: percentile(all, 95),
      max: Math.max(...all),
      groupP50: arrivals.map((times) =>
        percentile(
          times.map((at) => at - started),
          50,
        ),
      ),
      uploadMs,
    });
    await sleep(500); // a duplicate would arrive within this
    notOnce += groups.reduce((n, group) => n + group.swarm.count(key), 0) - total;
  }
  return {
    setup,
    protocol,
    walls: total,
    runs: RUNS,
    'p50 ms': round(median(per.map((run) => run.p50)), 0),
    'p95 ms': round(median(per.map((run) => run.p95)), 0),
    'max ms': round(median(per.map((run) => run.max)), 0),
    'p50 on relay 1': round(median(per.map((run) => run.groupP50[0]!)), 0),
    'p50 on relay 2':
      groups.length > 1 && setup.includes('2 relays')
        ? round(median(per.map((run) => run.groupP50[1]!)), 0)
        : '—',
    'upload→200 ms': round(median(per.map((run) => run.uploadMs)), 0),
    'deliveries not once': notOnce,
  };
}

async function stopAll(): Promise<void> {
  for (const swarm of swarms.splice(0)) swarm.kill();
  for (const client of clients.splice(0)) client.disconnect();
  await Promise.allSettled(processes.splice(0).map(stopProcess));
  await Promise.allSettled(redisServers.splice(0).map((server) => server.stop()));
  await Promise.allSettled(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void stopAll().finally(() => process.exit(130));
  });
}

const wsUrl = (relay: Relay, protocol: 1 | 2) =>
  `ws://127.0.0.1:${relay.port}/ws?pin=${PIN}${protocol === 2 ? '&protocol=2&role=display' : ''}`;

/**
 * Walls on one relay, then split over two; per protocol. `swarmA` and `swarmB` hold half the
 * walls each (both on `first` for "one relay"), so the walls' side costs the same in both.
 */
async function wallScenarios(
  label: string,
  first: Relay,
  second: Relay | undefined,
  photo: BenchPhoto,
): Promise<WallRow[]> {
  const rows: WallRow[] = [];
  const half = Math.floor(WALLS / 2);
  const [swarmA, swarmB] = [new Swarm(), new Swarm()];
  for (const protocol of PROTOCOL_2 ? ([1, 2] as const) : ([1] as const)) {
    await swarmA.connect(wsUrl(first, protocol), half, protocol);
    await swarmB.connect(wsUrl(first, protocol), WALLS - half, protocol);
    const groups = [
      { swarm: swarmA, count: half },
      { swarm: swarmB, count: WALLS - half },
    ];
    rows.push(
      await wallRuns(
        `${label}, 1 relay`,
        protocol,
        first.url,
        photo,
        groups,
        `${label}-one-${protocol}`,
      ),
    );
    if (second) {
      await swarmB.disconnect();
      await swarmB.connect(wsUrl(second, protocol), WALLS - half, protocol);
      rows.push(
        await wallRuns(
          `${label}, 2 relays`,
          protocol,
          first.url,
          photo,
          groups,
          `${label}-two-${protocol}`,
        ),
      );
    }
    await swarmA.disconnect();
    await swarmB.disconnect();
  }
  swarmA.kill();
  swarmB.kill();
  return rows;
}

try {
  const photos = await batchPhotos(BATCH);
  const [, hd] = await stagePhotos();
  const warmPhotos = photos.slice(0, 4);
  console.log(
    `cluster benchmark: ${photos.length} photos per batch, ${WALLS} walls, ${RUNS} runs per wall row`,
  );

  // 1. On its own: the embedded default, THREADS=2.
  console.log('single relay (embedded, THREADS=2)…');
  const single = await relay({ THREADS: '2' }, 'single');
  await Promise.all(warmPhotos.map((photo, i) => upload(single.url, photo, `warm-single-${i}`)));
  const throughput: BatchResult[] = [
    await batch('1 relay on its own, THREADS=2', single.url, photos, [], 'batch-single'),
  ];
  console.log('  walls…');
  const walls: WallRow[] = await wallScenarios('on its own', single, undefined, hd!);
  await stopProcess(single);

  // 2. Through Redis: relay with LOCAL_WORKER=0, 1 then 2 workers with THREADS=1.
  console.log('redis + relay (LOCAL_WORKER=0) + workers (THREADS=1)…');
  const redisDir = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-bench-redis-'));
  dirs.push(redisDir);
  const redis = await startRedis(redisDir);
  redisServers.push(redis);
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  clients.push(client);
  const prefix = 'bench-event';
  const env = { REDIS_URL: redis.url, REDIS_PREFIX: prefix, LOCAL_WORKER: '0', THREADS: '1' };
  const relayA = await relay(env, 'a');
  const workers = [await worker(env)];
  await Promise.all(warmPhotos.map((photo, i) => upload(relayA.url, photo, `warm-w1-${i}`)));

  const idle = await idleCommandRate(client);
  const before = await info(client);
  let peakMemory = before.used_memory!;
  const sampling = { on: true };
  const sampler = (async () => {
    while (sampling.on) {
      peakMemory = Math.max(peakMemory, (await info(client)).used_memory!);
      await sleep(50);
    }
  })();
  const batchStarted = now();
  throughput.push(
    await batch('Redis, 1 worker THREADS=1', relayA.url, photos, workers, 'batch-w1'),
  );
  const batchSeconds = (now() - batchStarted) / 1000;
  sampling.on = false;
  await sampler;
  const after = await info(client);
  await sleep(1000);
  const settled = await info(client);
  const resultKeysLeft = (await client.keys(`${prefix}:result:*`)).length;
  const ok = throughput.at(-1)!.ok;
  // INFO calls of the sampler are among the commands counted: taken out with the idle rate.
  const samplerCalls = Math.round(batchSeconds / 0.05);
  const redisCost = {
    photos: ok,
    'idle commands/s': round(idle, 1),
    'commands per photo': round(
      (after.total_commands_processed! -
        before.total_commands_processed! -
        idle * batchSeconds -
        samplerCalls) /
        ok,
      0,
    ),
    'bytes into Redis per photo': Math.round(
      (after.total_net_input_bytes! - before.total_net_input_bytes!) / ok,
    ),
    'bytes out of Redis per photo': Math.round(
      (after.total_net_output_bytes! - before.total_net_output_bytes!) / ok,
    ),
    'used_memory before MB': round(before.used_memory! / 1e6, 2),
    'used_memory peak during batch MB': round(peakMemory / 1e6, 2),
    'used_memory after MB': round(after.used_memory! / 1e6, 2),
    'used_memory 1 s later MB': round(settled.used_memory! / 1e6, 2),
    'kept per photo 1 s later bytes': Math.round((settled.used_memory! - before.used_memory!) / ok),
    'result keys left': resultKeysLeft,
  };

  workers.push(await worker(env));
  await Promise.all(warmPhotos.map((photo, i) => upload(relayA.url, photo, `warm-w2-${i}`)));
  throughput.push(
    await batch('Redis, 2 workers THREADS=1', relayA.url, photos, workers, 'batch-w2'),
  );

  // Walls: 200 on relay A against 100 on A + 100 on B (uploads to A).
  console.log('  walls…');
  const relayB = await relay({ ...env, EVENT_PIN: '' }, 'b');
  const deadline = Date.now() + 20_000;
  while (
    (await fetch(`${relayB.url}/api/join`, { headers: { 'X-Event-Pin': PIN } })).status !== 200
  ) {
    if (Date.now() > deadline) throw new Error('relay B did not take the event PIN');
    await sleep(100);
  }
  walls.push(...(await wallScenarios('Redis, 2 workers', relayA, relayB, hd!)));

  const log = {
    'log entries (XLEN)': await client.xlen(`${prefix}:log`),
    'log MEMORY USAGE bytes': (await client.memory('USAGE', `${prefix}:log`)) ?? 0,
    'keys in Redis': await client.dbsize(),
    'used_memory at the end MB': round((await info(client)).used_memory! / 1e6, 2),
  };

  // Bytes per wall per photo: the PNG a wall gets (the wall photo's cut-out) and a WebP of it.
  const list = (await (
    await fetch(`${relayA.url}/admin/api/photos`, {
      headers: { Authorization: `Bearer ${relayA.adminToken}` },
    })
  ).json()) as { id: string; description: string }[];
  const wallPhoto = list.find((photo) => photo.description.endsWith('-one-1-0')) ?? list[0]!;
  const png = Buffer.from(
    await (
      await fetch(`${relayA.url}/api/photos/${wallPhoto.id}/cutout`, {
        headers: { 'X-Event-Pin': PIN },
      })
    ).arrayBuffer(),
  );
  const webpStarted = performance.now();
  const webp = await sharp(png).webp({ quality: 80, alphaQuality: 90 }).toBuffer();
  const pngMeta = await sharp(png).metadata();
  const bytesPerWall = {
    photo: hd!.source,
    'cut-out': `${pngMeta.width}×${pngMeta.height}`,
    'PNG bytes': png.length,
    'protocol 1 message bytes (base64)': Math.ceil(png.length / 3) * 4,
    'WebP q80/alpha 90 bytes': webp.length,
    'WebP / PNG': round(webp.length / png.length, 3),
    'WebP encode ms': round(performance.now() - webpStarted, 0),
  };

  console.log(
    `\nCluster benchmark — ${os.cpus().length} cores (shared, noisy), u2netp, one run; batch of ${ok} real photos uploaded at once\n`,
  );
  console.log('Throughput (first send → last 200):');
  console.table(throughput);
  console.log(
    `\nUpload → every wall received, ${hd!.source}, one photo at a time, median of ${RUNS} runs (p2: the notice only):`,
  );
  console.table(walls);
  console.log('\nRedis, during the 1-worker batch:');
  console.table([redisCost]);
  console.log('\nRedis at the end:');
  console.table([log]);
  console.log('\nBytes per wall per photo:');
  console.table([bytesPerWall]);

  await writeResults('cluster', {
    runs: RUNS,
    batch: ok,
    walls: WALLS,
    photos: photos.map((photo) => photo.source),
    throughput,
    wallLatency: walls,
    redisCost,
    redisAtEnd: log,
    bytesPerWall,
  });
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await stopAll();
}
