import http from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { InferenceWorker, fetchOriginal } from '../cluster/inference.ts';
import { keepPresence } from '../cluster/presence.ts';
import { RedisLink, eventKeys } from '../cluster/redis-link.ts';
import { modelsDir } from '../config/paths.ts';
import { integer, sharedEnv } from '../config/relay-config.ts';
import { createEngine } from '../engine/index.ts';
import { createLogger } from '../relay/logger.ts';
import { createMetrics } from '../relay/metrics.ts';
import { UsageError } from './usage.ts';

const workerEnv = z.object({
  ...sharedEnv,
  REDIS_URL: sharedEnv.REDIS_URL.unwrap(),
  /** Jobs at once: 2 lets one photo decode while the other is inferred. */
  WORKER_CONCURRENCY: integer('WORKER_CONCURRENCY', 1, 32).default(2),
  /** /healthz and /metrics (0: a free port; `off`: none). Loopback unless HOST says otherwise. */
  PORT: z.union([z.literal('off'), integer('PORT', 0, 65535)]).default(8001),
  HOST: z.string().trim().default('127.0.0.1'),
});

/**
 * `photo-relay worker`: an inference worker for an event shared through Redis. It takes jobs
 * from the shared queue, fetches each original from the relay that accepted it, and leaves the
 * cut-out in Redis for that relay. Runs until SIGINT/SIGTERM; a worker killed mid-job loses
 * nothing (another worker takes the job again).
 */
export async function runWorker(args: string[], env = process.env): Promise<number> {
  if (args.length) throw new UsageError(`worker takes no arguments (got ${args.join(' ')}).`);
  const input = Object.fromEntries(
    Object.keys(workerEnv.shape)
      .filter((key) => env[key] !== undefined && env[key] !== '')
      .map((key) => [key, env[key]]),
  );
  if (!input.REDIS_URL)
    throw new UsageError('REDIS_URL is required: the Redis the event shares (redis://host:6379).');
  const parsed = workerEnv.safeParse(input);
  if (!parsed.success) {
    throw new UsageError(
      `Invalid environment:\n${parsed.error.issues.map((issue) => `  - ${String(issue.path[0])}: ${issue.message}`).join('\n')}`,
    );
  }
  const config = parsed.data;
  const logger = createLogger(config.LOG_LEVEL);
  const metrics = createMetrics('worker');
  const engine = await createEngine({
    model: config.MODEL,
    modelsDir: config.MODELS_DIR ?? modelsDir(env),
    threads: config.THREADS,
    maxPixels: config.MAX_PIXELS,
    maxQueue: 100_000,
  });
  const link = new RedisLink(config.REDIS_URL);
  const keys = eventKeys(config.REDIS_PREFIX);
  // Read per job, not kept: a Redis rebuilt from nothing gets a new secret from the first relay.
  const readSecret = async () => {
    const secret = await link.client.get(keys.secret);
    if (!secret) throw new Error('no relay has joined this event yet (no event secret in Redis)');
    return secret;
  };
  const worker = new InferenceWorker(link, keys, engine, fetchOriginal(readSecret), {
    concurrency: config.WORKER_CONCURRENCY,
  });
  const startedAt = new Date().toISOString();
  const threads = config.THREADS ?? Math.min(4, os.availableParallelism());
  const leave = keepPresence(link, keys.workers, worker.id, () => ({
    host: os.hostname(),
    kind: 'remote',
    threads,
    model: engine.model.id,
    startedAt,
    ...worker.counters,
  }));
  link.on('down', () =>
    logger.warn({ event: 'worker.redis-down', err: link.state().lastError }, 'Redis is away'),
  );
  link.on('up', () => logger.info({ event: 'worker.redis-up' }, 'Redis reached: taking jobs'));

  const server = http.createServer((req, res) => {
    if (req.url === '/healthz') {
      res.setHeader('Content-Type', 'application/json');
      res.end(
        JSON.stringify({
          status: 'ok',
          role: 'worker',
          id: worker.id,
          redis: link.state().state,
          model: engine.model.id,
          threads,
          ...worker.counters,
        }),
      );
    } else if (req.url === '/metrics') {
      void metrics.registry.metrics().then((text) => {
        res.setHeader('Content-Type', metrics.registry.contentType);
        res.end(text);
      });
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  if (config.PORT !== 'off') {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.PORT as number, config.HOST, () => resolve());
    });
  }
  const port = server.listening ? (server.address() as AddressInfo).port : null;
  logger.info(
    {
      event: 'worker.started',
      id: worker.id,
      model: engine.model.id,
      threads,
      concurrency: config.WORKER_CONCURRENCY,
      redis: link.state().url,
      health: port === null ? null : `http://${config.HOST}:${port}/healthz`,
    },
    'inference worker started',
  );

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  logger.info({ event: 'worker.stopping' }, 'finishing the jobs in hand');
  await worker.close();
  await leave();
  link.close();
  server.close();
  await engine.dispose();
  return 0;
}
