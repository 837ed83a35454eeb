import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { CUTOUT_MODES, normaliseCutoutMode, type CutoutMode } from '../engine/quality.ts';
import { modelIds } from '../models/manifest.ts';
import { PIN_PATTERN } from '../photos/settings.ts';
import { modelsDir, userDataDir } from './paths.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface RelayConfig {
  port: number;
  host: string;
  corsOrigins: string[];
  /** ALLOWED_HOSTS: more Host names the relay answers to (lower case, without port). */
  allowedHosts: string[];
  logLevel: LogLevel;
  maxUploadBytes: number;
  /**
   * EVENT_PIN as the environment decides it: a PIN, null for `off`, undefined when unset (the
   * data folder's own PIN is used, made once at its first start; see photos/settings.ts).
   */
  eventPin: string | null | undefined;
  adminToken: string;
  dataDir: string;
  /** MIN_FREE_DISK_MB: uploads get 507 E_DISK_FULL below this much free space (0: off). */
  minFreeDiskBytes: number;
  modelsDir: string;
  model: string | undefined;
  threads: number | undefined;
  queueSize: number;
  maxPixels: number;
  /** DISPLAY_MAX_EDGE when set; otherwise the saved setting or its default. */
  displayMaxEdge: number | undefined;
  /** CUTOUT_MODE when set; otherwise the saved setting or its default. */
  cutoutMode: CutoutMode | undefined;
  uploadsPerMinute: number;
  perfLogSeconds: number;
  /** How long a stop waits for photos in line before leaving them queued for the next start. */
  shutdownGraceMs: number;
  heartbeatMs: number;
  /** A display with more than this waiting in its socket skips broadcasts until it catches up. */
  maxBufferedBytes: number;
  /** Caps against abuse (admission.ts; the README's "Limits under abuse"). */
  uploadsPerAddress: number;
  uploadsTotal: number;
  socketsPerAddress: number;
  socketsTotal: number;
  /** HEADERS_TIMEOUT_SECONDS: a connection's request headers must have arrived within this. */
  headersTimeoutMs: number;
  /** CONNECTIONS_PER_ADDRESS: open TCP connections per address (beyond: closed at once). */
  connectionsPerAddress: number;
  /** CONNECTIONS_TOTAL: open TCP connections in all (the server's maxConnections). */
  connectionsTotal: number;
  /** An upload that sends no byte for this long is answered 408 and dropped. */
  uploadIdleMs: number;
  /** The longest an upload's body may take to arrive. */
  uploadTimeoutMs: number;
  /** FULL_RENDER_CACHE_MB: disk kept for the operator's full-size renders (oldest deleted first). */
  fullRenderCacheBytes: number;
  /** Several machines (cluster/): the event shared through this Redis; undefined = on its own. */
  redisUrl: string | undefined;
  /** Key prefix in Redis, so one Redis can hold several events. */
  redisPrefix: string;
  /** Whether this relay also runs an inference worker for the shared queue. */
  localWorker: boolean;
  /** Where the other machines reach this relay; by default its first LAN address. */
  publicUrl: string | undefined;
}

const LOG_LEVELS: Record<string, LogLevel> = {
  debug: 'debug',
  info: 'info',
  warning: 'warn',
  warn: 'warn',
  error: 'error',
};

export const integer = (name: string, min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `${name} must be a whole number`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `${name} must be between ${min} and ${max}`);

/** A DNS name (labels of letters, digits, hyphens), an IPv4 address or a bracketed IPv6 one. */
const HOST_NAME =
  /^(?:\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*)$/;

/**
 * The variables a relay and a `photo-relay worker` read alike (cli/worker.ts): one rule each.
 */
export const sharedEnv = {
  LOG_LEVEL: z
    .string()
    .default('INFO')
    .transform((value) => value.trim().toLowerCase())
    .refine((value) => value in LOG_LEVELS, 'LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR')
    .transform((value) => LOG_LEVELS[value]!),
  MODELS_DIR: z.string().trim().min(1, 'MODELS_DIR must not be empty').optional(),
  MODEL: z
    .string()
    .trim()
    .refine((id) => modelIds().includes(id), `MODEL must be one of: ${modelIds().join(', ')}`)
    .optional(),
  THREADS: integer('THREADS', 1, 64).optional(),
  MAX_PIXELS: integer('MAX_PIXELS', 1_000_000, 268_000_000).default(64_000_000),
  REDIS_URL: z
    .string()
    .trim()
    .regex(/^rediss?:\/\/\S+$/, 'REDIS_URL must look like redis://host:6379 (or rediss://)')
    .refine(
      redisReachableSafely,
      'REDIS_URL points at another machine without a password: whoever reaches that Redis holds the event (its PIN, its secret, photos for every wall). Set requirepass in its redis.conf and give it here (redis://:PASSWORD@host:6379), or use a Redis on this machine (redis://127.0.0.1:6379)',
    )
    .optional(),
  REDIS_PREFIX: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'REDIS_PREFIX must be 1–64 letters, digits, . _ or -')
    .default('photo-relay'),
};

/**
 * A Redis on this machine may run without a password (only this machine reaches it); one on
 * another machine needs one: the Wi-Fi guests are on can often reach it too (README, several
 * machines).
 */
export function redisReachableSafely(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const { hostname, password } = new URL(url);
  const loopback = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i.test(hostname);
  return loopback || password !== '';
}

const envSchema = z.object({
  ...sharedEnv,
  PORT: integer('PORT', 0, 65535).default(8000),
  HOST: z.string().trim().min(1, 'HOST must not be empty').default('0.0.0.0'),
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((value) =>
      value
        .split(',')
        .map((origin) => origin.trim())
        .filter(Boolean),
    )
    .refine(
      (origins) => origins.every((origin) => /^https?:\/\/[^/\s]+$/.test(origin)),
      'CORS_ORIGINS must be a comma list of origins like http://192.168.1.20:5173 (no paths)',
    ),
  ALLOWED_HOSTS: z
    .string()
    .default('')
    .transform((value) =>
      value
        .split(',')
        .map((name) => name.trim().toLowerCase().replace(/\.$/, ''))
        .filter(Boolean),
    )
    .refine(
      (names) => names.every((name) => HOST_NAME.test(name)),
      'ALLOWED_HOSTS must be a comma list of host names or addresses like photo-relay.lan, 10.0.0.5 or [fd00::5] (no scheme, port or path)',
    ),
  MAX_UPLOAD_SIZE: z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, 'MAX_UPLOAD_SIZE must be a number of megabytes')
    .transform(Number)
    .refine((mb) => mb > 0 && mb <= 200, 'MAX_UPLOAD_SIZE must be between 0 and 200 (MB)')
    .default(10),
  EVENT_PIN: z
    .string()
    .trim()
    .refine(
      (pin) => pin.toLowerCase() === 'off' || PIN_PATTERN.test(pin),
      'EVENT_PIN must be 4–32 letters or digits, or "off"',
    )
    .optional(),
  ADMIN_TOKEN: z.string().trim().min(16, 'ADMIN_TOKEN must be at least 16 characters').optional(),
  DATA_DIR: z.string().trim().min(1, 'DATA_DIR must not be empty').optional(),
  MIN_FREE_DISK_MB: integer('MIN_FREE_DISK_MB', 0, 1_000_000_000).default(500),
  QUEUE_SIZE: integer('QUEUE_SIZE', 1, 10_000).default(32),
  DISPLAY_MAX_EDGE: integer('DISPLAY_MAX_EDGE', 256, 8192).optional(),
  CUTOUT_MODE: z.preprocess(
    normaliseCutoutMode,
    z
      .enum(CUTOUT_MODES, { error: `CUTOUT_MODE must be one of: ${CUTOUT_MODES.join(', ')}` })
      .optional(),
  ),
  UPLOADS_PER_MINUTE: integer('UPLOADS_PER_MINUTE', 1, 100_000).default(60),
  PERF_LOG_SECONDS: integer('PERF_LOG_SECONDS', 0, 86_400).default(60),
  SHUTDOWN_GRACE_SECONDS: integer('SHUTDOWN_GRACE_SECONDS', 0, 600).default(10),
  WS_HEARTBEAT_SECONDS: integer('WS_HEARTBEAT_SECONDS', 1, 3600).default(15),
  WS_MAX_BUFFERED_MB: integer('WS_MAX_BUFFERED_MB', 1, 1024).default(16),
  UPLOADS_PER_ADDRESS: integer('UPLOADS_PER_ADDRESS', 1, 1000).default(4),
  UPLOADS_TOTAL: integer('UPLOADS_TOTAL', 1, 10_000).default(64),
  WS_PER_ADDRESS: integer('WS_PER_ADDRESS', 1, 100_000).default(20),
  WS_TOTAL: integer('WS_TOTAL', 1, 100_000).default(2000),
  HEADERS_TIMEOUT_SECONDS: integer('HEADERS_TIMEOUT_SECONDS', 1, 600).default(20),
  CONNECTIONS_PER_ADDRESS: integer('CONNECTIONS_PER_ADDRESS', 1, 100_000).default(64),
  CONNECTIONS_TOTAL: integer('CONNECTIONS_TOTAL', 1, 1_000_000).default(4096),
  UPLOAD_IDLE_SECONDS: integer('UPLOAD_IDLE_SECONDS', 1, 600).default(15),
  UPLOAD_TIMEOUT_SECONDS: integer('UPLOAD_TIMEOUT_SECONDS', 10, 3600).default(120),
  FULL_RENDER_CACHE_MB: integer('FULL_RENDER_CACHE_MB', 0, 1_000_000).default(500),
  LOCAL_WORKER: z
    .enum(['0', '1', 'true', 'false', 'yes', 'no'], {
      error: 'LOCAL_WORKER must be 1 (the default) or 0',
    })
    .default('1'),
  PUBLIC_URL: z
    .string()
    .trim()
    .regex(/^https?:\/\/[^/\s]+$/, 'PUBLIC_URL must look like http://192.168.1.20:8000')
    .optional(),
});

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`Invalid environment:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/**
 * Reads the relay's settings from the environment. Every bad variable is reported at once, by
 * name, so the operator fixes them in one go; nothing listens until they are right.
 */
export function loadRelayConfig(env: NodeJS.ProcessEnv = process.env): RelayConfig {
  const known = Object.keys(envSchema.shape);
  // Empty strings are treated as unset, as shells and .env files often produce them.
  const input = Object.fromEntries(
    known.filter((key) => env[key] !== undefined && env[key] !== '').map((key) => [key, env[key]]),
  );
  const parsed = envSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? '');
        const value = env[name];
        return `${name}=${JSON.stringify(value)}: ${issue.message}`;
      }),
    );
  }
  const values = parsed.data;
  const pinOff = values.EVENT_PIN?.toLowerCase() === 'off';
  return {
    port: values.PORT,
    host: values.HOST,
    corsOrigins: values.CORS_ORIGINS,
    allowedHosts: values.ALLOWED_HOSTS,
    logLevel: values.LOG_LEVEL,
    maxUploadBytes: Math.round(values.MAX_UPLOAD_SIZE * 1024 * 1024),
    eventPin: pinOff ? null : values.EVENT_PIN,
    adminToken: values.ADMIN_TOKEN ?? randomBytes(24).toString('base64url'),
    dataDir: path.resolve(values.DATA_DIR ?? path.join(userDataDir(), 'data')),
    minFreeDiskBytes: values.MIN_FREE_DISK_MB * 1024 * 1024,
    modelsDir: values.MODELS_DIR ? path.resolve(values.MODELS_DIR) : modelsDir(env),
    model: values.MODEL,
    threads: values.THREADS,
    queueSize: values.QUEUE_SIZE,
    maxPixels: values.MAX_PIXELS,
    displayMaxEdge: values.DISPLAY_MAX_EDGE,
    cutoutMode: values.CUTOUT_MODE,
    uploadsPerMinute: values.UPLOADS_PER_MINUTE,
    perfLogSeconds: values.PERF_LOG_SECONDS,
    shutdownGraceMs: values.SHUTDOWN_GRACE_SECONDS * 1000,
    heartbeatMs: values.WS_HEARTBEAT_SECONDS * 1000,
    maxBufferedBytes: values.WS_MAX_BUFFERED_MB * 1024 * 1024,
    uploadsPerAddress: values.UPLOADS_PER_ADDRESS,
    uploadsTotal: values.UPLOADS_TOTAL,
    socketsPerAddress: values.WS_PER_ADDRESS,
    socketsTotal: values.WS_TOTAL,
    headersTimeoutMs: values.HEADERS_TIMEOUT_SECONDS * 1000,
    connectionsPerAddress: values.CONNECTIONS_PER_ADDRESS,
    connectionsTotal: values.CONNECTIONS_TOTAL,
    uploadIdleMs: values.UPLOAD_IDLE_SECONDS * 1000,
    uploadTimeoutMs: values.UPLOAD_TIMEOUT_SECONDS * 1000,
    fullRenderCacheBytes: values.FULL_RENDER_CACHE_MB * 1024 * 1024,
    redisUrl: values.REDIS_URL,
    redisPrefix: values.REDIS_PREFIX,
    localWorker: ['1', 'true', 'yes'].includes(values.LOCAL_WORKER),
    publicUrl: values.PUBLIC_URL,
  };
}
