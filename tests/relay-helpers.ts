import { mkdtemp, rm } from 'node:fs/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { loadRelayConfig } from '../electron/config/relay-config.ts';
import { createEngine, type Engine } from '../electron/engine/index.ts';
import { createRelay, type Relay, type RelayServices } from '../electron/relay/app.ts';
import { createLogger } from '../electron/relay/logger.ts';

export const PIN = '4321';

export interface TestRelay {
  relay: Relay;
  url: string;
  wsUrl: string;
  dataDir: string;
  close(keepData?: boolean): Promise<void>;
}

/**
 * A real relay on a free port with its own data folder and the real model (unless `services`
 * chooses another engine, e.g. a gated stand-in around the real one).
 */
export async function startTestRelay(
  env: Record<string, string> = {},
  reuseDataDir?: string,
  services: Omit<RelayServices, 'logger'> = {},
): Promise<TestRelay> {
  const dataDir = reuseDataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'photo-relay-data-')));
  const config = loadRelayConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    EVENT_PIN: PIN,
    DATA_DIR: dataDir,
    PERF_LOG_SECONDS: '0',
    UPLOADS_PER_MINUTE: '10000',
    MODELS_DIR: process.env.MODELS_DIR ?? '',
    ...env,
  });
  const relay = await createRelay(config, { logger: createLogger('error'), ...services });
  const { port } = await relay.start();
  return {
    relay,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    dataDir,
    async close(keepData = false) {
      await relay.stop();
      if (!keepData) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface UploadOptions {
  pin?: string | null;
  description?: string;
  filename?: string;
  type?: string;
  headers?: Record<string, string>;
  /** Extra parts appended as-is. */
  extra?: [string, string | Blob, string?][];
  noImage?: boolean;
}

export async function upload(
  base: string,
  image: Uint8Array,
  options: UploadOptions = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const form = new FormData();
  if (!options.noImage) {
    form.append(
      'image',
      new Blob([image], { type: options.type ?? 'image/jpeg' }),
      options.filename ?? 'photo.jpg',
    );
  }
  if (options.description !== undefined) form.append('description', options.description);
  for (const [name, value, filename] of options.extra ?? []) {
    if (typeof value === 'string') form.append(name, value);
    else form.append(name, value, filename);
  }
  const pin = options.pin === undefined ? PIN : options.pin;
  const response = await fetch(`${base}/upload/`, {
    method: 'POST',
    body: form,
    headers: { ...(pin === null ? {} : { 'X-Event-Pin': pin }), ...options.headers },
  });
  return {
    status: response.status,
    body: (await response.json()) as Record<string, unknown>,
    headers: response.headers,
  };
}

export interface Display {
  socket: WebSocket;
  messages: string[];
  /** Resolves once `count` messages have arrived (or rejects after timeoutMs). */
  waitFor(count: number, timeoutMs?: number): Promise<string[]>;
  close(): void;
}

/** A real `ws` client; resolves when open, rejects with the HTTP status when refused. */
export function connectDisplay(
  wsUrl: string,
  query = `pin=${PIN}`,
  headers: Record<string, string> = {},
): Promise<Display> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${wsUrl}?${query}`, { headers });
    const messages: string[] = [];
    const waiters: (() => void)[] = [];
    socket.on('message', (data: Buffer) => {
      messages.push(data.toString('utf8'));
      for (const waiter of waiters.splice(0)) waiter();
    });
    socket.on('unexpected-response', (_req, res) => {
      reject(
        Object.assign(new Error(`refused with ${res.statusCode}`), { status: res.statusCode }),
      );
    });
    socket.on('error', reject);
    socket.on('open', () =>
      resolve({
        socket,
        messages,
        waitFor(count, timeoutMs = 30_000) {
          return new Promise((_resolve, _reject) => {
            const timer = setTimeout(
              () => _reject(new Error(`only ${messages.length} of ${count} messages arrived`)),
              timeoutMs,
            );
            const check = () => {
              if (messages.length >= count) {
                clearTimeout(timer);
                _resolve(messages);
              } else waiters.push(check);
            };
            check();
          });
        },
        close: () => socket.close(),
      }),
    );
  });
}

/** A port nothing listens on right now (for relays that must come back on the same port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface ServedRelay {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

/**
 * The relay as `npm run serve` runs it, in its own process (so it can be killed for real), on
 * 127.0.0.1 with the test PIN. `command` replaces the TypeScript entry (e.g. the compiled build).
 */
export function spawnRelay(env: Record<string, string>, command?: string[]): ServedRelay {
  const repoRoot = path.resolve(import.meta.dirname, '..');
  const child = spawn(
    process.execPath,
    command ?? ['--import', 'tsx', path.join(repoRoot, 'electron/serve.ts')],
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        HOST: '127.0.0.1',
        EVENT_PIN: PIN,
        PERF_LOG_SECONDS: '0',
        LOG_LEVEL: 'warning',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, url: `http://127.0.0.1:${env.PORT ?? '8000'}`, output: () => output, exited };
}

/** Resolves once /healthz answers 200; rejects if the process exits first or time runs out. */
export async function waitHealthy(served: ServedRelay, timeoutMs = 30_000): Promise<void> {
  const state = { exited: false };
  void served.exited.then(() => (state.exited = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (state.exited)
      throw new Error(`the relay exited before it became healthy:\n${served.output()}`);
    const ok = await fetch(`${served.url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`relay at ${served.url} did not become healthy`);
}

/** An HTTP answer read off a raw socket. */
export interface RawAnswer {
  status: number;
  /** The status line and headers, as sent. */
  head: string;
  json: { code?: string; message?: string; id?: string; status?: string };
}

/** The first complete answer in `text` (status line, headers, a Content-Length JSON body). */
export function parseRawAnswer(text: string): RawAnswer | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const head = text.slice(0, end);
  const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? NaN);
  const body = text.slice(end + 4);
  if (!(body.length >= length)) return undefined;
  return {
    status: Number(head.split(' ')[1]),
    head,
    json: JSON.parse(body.slice(0, length)) as RawAnswer['json'],
  };
}

export interface RawClient {
  socket: net.Socket;
  /** Everything received so far. */
  received(): string;
  /** The first answer (rejects if the socket closes before one arrived). */
  answer: Promise<RawAnswer>;
  /** Resolves when the socket has closed, whoever closed it. */
  closed: Promise<void>;
  write(bytes: string | Buffer): Promise<void>;
}

/**
 * A raw TCP client of the relay from `localAddress` (127.0.0.x: a different address each). With
 * allowHalfOpen, the relay's FIN does not end our side: the client holds the socket as long as
 * it likes, as a hostile one would.
 */
export async function rawClient(
  url: string,
  { localAddress, allowHalfOpen = false }: { localAddress?: string; allowHalfOpen?: boolean } = {},
): Promise<RawClient> {
  const { port } = new URL(url);
  const socket = net.connect({
    port: Number(port),
    host: '127.0.0.1',
    localAddress,
    allowHalfOpen,
  });
  socket.on('error', () => undefined);
  let text = '';
  const answer = new Promise<RawAnswer>((resolve, reject) => {
    socket.on('data', (data: Buffer) => {
      text += data.toString('latin1');
      const parsed = parseRawAnswer(text);
      if (parsed) resolve(parsed);
    });
    socket.once('close', () => reject(new Error(`closed without an answer: ${text}`)));
  });
  answer.catch(() => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('close', () => reject(new Error('closed before it connected')));
  });
  return {
    socket,
    received: () => text,
    answer,
    closed,
    write: (bytes) =>
      new Promise<void>((resolve, reject) =>
        socket.write(bytes, (error) => (error ? reject(error) : resolve())),
      ),
  };
}

/** Resolves true when `promise` settles within `ms`, false otherwise. */
export function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const settled = promise.then(
    () => true,
    () => true,
  );
  return Promise.race([settled, late]).finally(() => clearTimeout(timer));
}

/**
 * The real engine, but each segment() waits for a permit: tests hold photos in the engine (a busy
 * line) and let them go. Pass `createEngine` to startTestRelay's services.
 */
export function permitEngine() {
  let permits = 0;
  const waiting: (() => void)[] = [];
  const grant = () => {
    while (permits > 0 && waiting.length) {
      permits--;
      waiting.shift()!();
    }
  };
  return {
    permit(count = 1) {
      permits += count;
      grant();
    },
    createEngine: async (
      model: string,
      config: ReturnType<typeof loadRelayConfig>,
    ): Promise<Engine> => {
      const real = await createEngine({ model, modelsDir: config.modelsDir, threads: 1 });
      return Object.assign(Object.create(real) as Engine, {
        model: real.model,
        async segment(...args: Parameters<Engine['segment']>) {
          await new Promise<void>((resolve) => {
            waiting.push(resolve);
            grant();
          });
          return real.segment(...args);
        },
        dispose: () => {
          permits = Infinity;
          grant();
          return real.dispose();
        },
      });
    },
  };
}
