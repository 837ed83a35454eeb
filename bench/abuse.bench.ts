/**
 * `npm run bench:abuse`: a real relay process while 40 clients (40 addresses, 127.0.0.10–49 on
 * Linux) each send a 10 MB upload slowly (64 KB/s, for 100 s: under UPLOAD_TIMEOUT_SECONDS):
 * the relay's RSS over time against the bytes in flight, and the latency of a normal upload (the 1920×1080 photo, upload → answer after the
 * broadcast, median of 5) meanwhile, against the same upload with no abuse. Table printed, JSON
 * in bench/results/.
 */
import { writeResults } from './results.ts';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, spawnRelay, waitHealthy } from '../tests/relay-helpers.ts';
import { stagePhotos } from './photos.ts';

const CLIENTS = Number(process.env.BENCH_ABUSE_CLIENTS ?? 40);
const RATE = Number(process.env.BENCH_ABUSE_RATE ?? 64 * 1024); // bytes per second per client
const SECONDS = Number(process.env.BENCH_ABUSE_SECONDS ?? 100);
const DECLARED = 10 * 1024 * 1024;
const RUNS = 5;
const PIN = '2468';
const ADMIN_TOKEN = 'bench-admin-token-0123456789';
const BOUNDARY = 'abuse-bench-boundary';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (value: number, digits = 1) => Number(value.toFixed(digits));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

/** Whether this machine answers on 127.0.0.x besides 127.0.0.1 (Linux: all of 127/8). */
async function extraLoopback(): Promise<boolean> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const ok = await new Promise<boolean>((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
  await new Promise((resolve) => server.close(resolve));
  return ok;
}

const formHead = Buffer.from(
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n` +
    'Content-Type: image/jpeg\r\n\r\n',
);

function upload(base: string, localAddress: string, photo: Buffer): Promise<number> {
  const body = Buffer.concat([formHead, photo, Buffer.from(`\r\n--${BOUNDARY}--\r\n`)]);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const request = http.request(
      `${base}/upload/`,
      {
        method: 'POST',
        localAddress,
        agent: false,
        headers: {
          'X-Event-Pin': PIN,
          'Content-Type': `multipart/form-data; boundary=${BOUNDARY}`,
          'Content-Length': body.length,
        },
      },
      (response) => {
        response.resume();
        response.on('end', () => {
          if (response.statusCode !== 200)
            reject(new Error(`the normal upload answered ${response.statusCode}`));
          else resolve(performance.now() - started);
        });
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** A 10 MB upload sent at RATE from `localAddress`; counts what it sent and what it was told. */
function slowClient(port: number, localAddress: string) {
  const state = { sent: 0, answer: undefined as string | undefined, closed: false };
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  socket.on('error', () => undefined);
  socket.on('data', (data: Buffer) => (state.answer ??= data.toString().split('\r\n')[0]));
  socket.on('close', () => (state.closed = true));
  const tickMs = 250;
  const chunk = Buffer.alloc(Math.round((RATE * tickMs) / 1000), 0x20);
  let timer: NodeJS.Timeout | undefined;
  socket.once('connect', () => {
    socket.write(
      `POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Event-Pin: ${PIN}\r\n` +
        `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${DECLARED}\r\n\r\n`,
    );
    socket.write(Buffer.concat([formHead, Buffer.from([0xff, 0xd8, 0xff, 0xe0])]));
    timer = setInterval(() => {
      if (socket.destroyed || state.sent + chunk.length > DECLARED - 1024) return;
      socket.write(chunk);
      state.sent += chunk.length;
    }, tickMs);
  });
  return {
    state,
    stop() {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

async function relayRssMb(base: string): Promise<number> {
  const response = await fetch(`${base}/admin/api/metrics`, {
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, Host: 'localhost' },
  });
  const body = (await response.json()) as { memory: { rss: number } };
  return round(body.memory.rss / 1e6);
}

const [, hd] = await stagePhotos();
const many = await extraLoopback();
const address = (i: number) => (many ? `127.0.0.${10 + i}` : '127.0.0.1');
const guest = many ? '127.0.0.2' : '127.0.0.1';
const dataDir = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-abuse-'));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const relay = spawnRelay({
  PORT: String(port),
  EVENT_PIN: PIN,
  ADMIN_TOKEN,
  DATA_DIR: dataDir,
  LOG_LEVEL: 'ERROR',
  UPLOADS_PER_MINUTE: '100000',
  // A body in flight holds a place in line (so a full line is refused before the body is read):
  // 40 slow bodies would fill the default 32 places and the normal upload would get 503, which
  // is the point of the check but not what this measures (memory and latency meanwhile).
  QUEUE_SIZE: '64',
  CUTOUT_MODE: 'fast',
});
try {
  await waitHealthy(relay);
  await upload(base, guest, hd!.bytes); // warm-up: the model's first run
  const quiet: number[] = [];
  for (let i = 0; i < RUNS; i++) quiet.push(await upload(base, guest, hd!.bytes));
  // The engine's memory settles after its runs: the baseline is the lowest of a few idle samples.
  const idle: number[] = [];
  for (let i = 0; i < 5; i++) {
    await sleep(1000);
    idle.push(await relayRssMb(base));
  }
  const idleRss = Math.min(...idle);

  console.log(
    `${CLIENTS} clients sending ${DECLARED / 1024 / 1024} MB at ${RATE / 1024} KB/s for ${SECONDS} s…`,
  );
  const clients = Array.from({ length: CLIENTS }, (_, i) => slowClient(port, address(i)));
  const samples: { s: number; rssMb: number; inFlightMb: number }[] = [];
  const started = performance.now();
  const inFlight = () => clients.reduce((sum, client) => sum + client.state.sent, 0) / 1e6;
  const sampler = setInterval(() => {
    void relayRssMb(base).then((rssMb) =>
      samples.push({
        s: round((performance.now() - started) / 1000, 0),
        rssMb,
        inFlightMb: round(inFlight()),
      }),
    );
  }, 1000);
  // Abuse alone first (no engine work to blur the memory figure), then the normal uploads.
  const aloneSeconds = Math.round(SECONDS * 0.6);
  await sleep(aloneSeconds * 1000);
  const aloneRss = await relayRssMb(base);
  const aloneMb = round(inFlight());
  const abused: number[] = [];
  for (let i = 0; i < RUNS; i++) abused.push(await upload(base, guest, hd!.bytes));
  const left = SECONDS * 1000 - (performance.now() - started);
  if (left > 0) await sleep(left);
  clearInterval(sampler);
  await sleep(1100);
  const refused = clients.filter((client) => client.state.answer).map((c) => c.state.answer);
  const sentMb = round(inFlight());
  for (const client of clients) client.stop();
  await sleep(1000);
  const afterRss = await relayRssMb(base);

  const peak = Math.max(...samples.map((sample) => sample.rssMb));
  const memory = {
    clients: CLIENTS,
    'rate KB/s': RATE / 1024,
    seconds: SECONDS,
    'received MB': sentMb,
    'idle RSS MB': idleRss,
    [`RSS at ${aloneSeconds} s MB`]: aloneRss,
    [`received at ${aloneSeconds} s MB`]: aloneMb,
    'peak RSS MB': peak,
    'RSS growth MB': round(peak - idleRss),
    'RSS after MB': afterRss,
    'answered early': refused.length,
  };
  const latency = {
    photo: hd!.name,
    'no abuse p50 ms': round(median(quiet)),
    'under abuse p50 ms': round(median(abused)),
    ratio: round(median(abused) / median(quiet), 2),
    'no abuse runs': quiet.map((ms) => round(ms, 0)).join(' '),
    'under abuse runs': abused.map((ms) => round(ms, 0)).join(' '),
  };
  console.log('\nRelay memory while the slow uploads stream in (RSS of the relay process):');
  console.table([memory]);
  console.log('\nRSS over time:');
  console.table(samples.filter((_, i) => i % 4 === 0 || i === samples.length - 1));
  console.log('\nA normal upload (upload → answer after the broadcast), median of 5:');
  console.table([latency]);

  await writeResults('abuse', {
    addresses: many ? CLIENTS : 1,
    photo: hd!.source,
    memory,
    latency,
    samples,
    answers: refused,
  });
} finally {
  relay.child.kill('SIGTERM');
  await relay.exited;
  await rm(dataDir, { recursive: true, force: true });
}
