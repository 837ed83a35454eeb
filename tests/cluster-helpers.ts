import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { freePort, PIN, spawnRelay, waitHealthy, type ServedRelay } from './relay-helpers.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');

/** Why Redis tests cannot run here, or undefined (Debian's redis-server, installed by .ci/run). */
export function redisMissingReason(): string | undefined {
  if (!existsSync('/usr/bin/redis-server') && spawnSync('redis-server', ['--version']).error)
    return 'redis-server is not installed (apt-get install redis-server; .ci/run does it)';
  return undefined;
}

export interface TestRedis {
  port: number;
  url: string;
  /** Stops it (SIGKILL: as a crash or a pulled cable would). */
  kill(): Promise<void>;
  /** Starts it again on the same port and folder (its append-only file kept, as in production). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A redis-server of the test's own on a free port, persisting to `dir` (never a system one). */
export async function startRedis(dir: string): Promise<TestRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--save',
        '',
      ],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const ping = spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' });
      if (ping.stdout.trim() === 'PONG') return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`redis-server on port ${port} did not start`);
  };
  const kill = async () => {
    const running = child;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await exited;
  };
  await launch();
  return { port, url: `redis://127.0.0.1:${port}`, kill, restart: launch, stop: kill };
}

export interface ServedWorker {
  child: ChildProcess;
  health: string;
  output: () => string;
  exited: Promise<number | null>;
}

/** `photo-relay worker` in its own process (so it can be killed for real). */
export async function spawnWorker(env: Record<string, string>): Promise<ServedWorker> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/photo-relay.mjs'), 'worker'], {
    cwd: repoRoot,
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warning', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, health: `http://127.0.0.1:${port}/healthz`, output: () => output, exited };
}

/** The worker's /healthz once it answers. */
export async function workerHealth(
  worker: ServedWorker,
): Promise<{ role: string; running: number; done: number; redis: string }> {
  const response = await fetch(worker.health);
  return (await response.json()) as { role: string; running: number; done: number; redis: string };
}

export async function waitWorkerReady(worker: ServedWorker, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (worker.child.exitCode !== null)
      throw new Error(`the worker exited before it was ready:\n${worker.output()}`);
    const health = await workerHealth(worker).catch(() => undefined);
    if (health?.redis === 'connected') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`worker did not become ready:\n${worker.output()}`);
}

export async function stopProcess(served: { child: ChildProcess; exited: Promise<unknown> }) {
  if (served.child.exitCode === null && served.child.signalCode === null) {
    served.child.kill('SIGTERM');
    const timer = setTimeout(() => served.child.kill('SIGKILL'), 10_000);
    await served.exited;
    clearTimeout(timer);
  }
}

export type ClusterRelayProcess = ServedRelay & { port: number; adminToken: string };

/** A relay process of a shared event. */
export async function spawnClusterRelay(env: Record<string, string>): Promise<ClusterRelayProcess> {
  const port = await freePort();
  const adminToken = `cluster-admin-token-${port}-0123456789`;
  const served = spawnRelay({
    PORT: String(port),
    ADMIN_TOKEN: adminToken,
    UPLOADS_PER_MINUTE: '10000',
    EVENT_PIN: PIN,
    ...env,
  });
  await waitHealthy(served, 60_000);
  return Object.assign(served, { port, adminToken });
}

export async function admin<T>(
  relay: { url: string; adminToken: string },
  route: string,
  init: RequestInit = {},
): Promise<T> {
  const response = await fetch(`${relay.url}/admin/api${route}`, {
    ...init,
    headers: {
      Authorization: `Bearer ${relay.adminToken}`,
      ...(init.headers as Record<string, string> | undefined),
    },
  });
  if (!response.ok)
    throw new Error(`${route} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

/** Waits until `check` holds (checked every 100 ms); fails naming `what` after `timeoutMs`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Two relays of one event: A starts it (its PIN becomes the event's), B joins it without a PIN
 * of its own; returns once B has taken the event PIN.
 */
export async function startTwoRelays(
  dir: string,
  env: Record<string, string>,
): Promise<[ClusterRelayProcess, ClusterRelayProcess]> {
  const relayA = await spawnClusterRelay({ ...env, DATA_DIR: path.join(dir, 'a') });
  const relayB = await spawnClusterRelay({ ...env, DATA_DIR: path.join(dir, 'b'), EVENT_PIN: '' });
  await until(
    async () =>
      (await fetch(`${relayB.url}/api/join`, { headers: { 'X-Event-Pin': PIN } })).status === 200,
    'B to take the event PIN',
    20_000,
  );
  return [relayA, relayB];
}

/** A finished photo as a shared-log entry describes it (cluster/shared-messages.ts). */
export function sharedPhotoEntry(overrides: Record<string, unknown> = {}) {
  return {
    id: randomUUID(),
    timestamp: new Date().toISOString(),
    description: 'a photo',
    originalFilename: 'a.jpg',
    inputFormat: 'jpeg',
    processingTime: 10,
    width: 100,
    height: 100,
    hidden: false,
    approved: true,
    ...overrides,
  };
}
