import { EventEmitter } from 'node:events';
import { Redis, type RedisOptions } from 'ioredis';
import type { RedisState } from '../../shared/cluster.ts';

/** A Redis URL fit to show: any password replaced by `***`. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis://***';
  }
}

/** Every key of one event lives under `<prefix>:`; one Redis may hold several events. */
export function eventKeys(prefix: string) {
  return {
    /** The event's shared log (a Redis stream): photos, moderation, settings, walls. */
    log: `${prefix}:log`,
    /** The shared settings (JSON), for a relay that joins after they were set. */
    settings: `${prefix}:settings`,
    /** The secret relays and workers show each other on the cluster routes. */
    secret: `${prefix}:secret`,
    relays: `${prefix}:relays`,
    workers: `${prefix}:workers`,
    /** A worker's result for a job, until its relay has read it. */
    result: (jobId: string) => `${prefix}:result:${jobId}`,
    /** BullMQ's own prefix for the inference queue. */
    bull: `${prefix}:bull`,
  };
}

export type EventKeys = ReturnType<typeof eventKeys>;

/** Reconnects forever, quickly at first, then every 2 s: Redis coming back is normal. */
const retryStrategy = (attempt: number) => Math.min(100 * attempt, 2000);

/**
 * One process's way to Redis: the state the dashboard shows (connected / connecting / down, since
 * when, the last error) and fresh connections for the parts that block (stream reads, BullMQ).
 * Commands fail at once while Redis is away (no offline queue), so callers fall back to working
 * on their own instead of hanging.
 */
export class RedisLink extends EventEmitter<{ up: []; down: [] }> {
  readonly client: Redis;
  private stateNow: RedisState = 'connecting';
  private sinceNow = new Date().toISOString();
  private lastErrorNow: string | null = null;
  private readonly extra = new Set<Redis>();

  constructor(readonly url: string) {
    super();
    this.client = new Redis(url, this.options({ enableOfflineQueue: false }));
    this.client.on('ready', () => this.set('connected'));
    this.client.on('error', (error: Error) => {
      this.lastErrorNow = error.message;
    });
    this.client.on('close', () => this.set(this.stateNow === 'connected' ? 'down' : this.stateNow));
    this.client.on('reconnecting', () => {
      if (this.stateNow !== 'connected') this.set('down');
    });
  }

  /** Options for a connection of this link; BullMQ workers need maxRetriesPerRequest null. */
  options(extra: RedisOptions = {}): RedisOptions {
    return { retryStrategy, maxRetriesPerRequest: null, connectionName: 'photo-relay', ...extra };
  }

  /** A connection of its own (blocking reads must not hold up commands). */
  connection(extra: RedisOptions = {}): Redis {
    const connection = new Redis(this.url, this.options(extra));
    connection.on('error', () => undefined); // the main client reports the state
    this.extra.add(connection);
    return connection;
  }

  get up(): boolean {
    return this.stateNow === 'connected';
  }

  state() {
    return {
      url: redactRedisUrl(this.url),
      state: this.stateNow,
      since: this.sinceNow,
      lastError: this.lastErrorNow,
    };
  }

  /** Resolves once Redis answers (at once when it does now). */
  ready(): Promise<void> {
    if (this.up) return Promise.resolve();
    return new Promise((resolve) => this.once('up', resolve));
  }

  private set(state: RedisState): void {
    if (state === this.stateNow) return;
    this.stateNow = state;
    this.sinceNow = new Date().toISOString();
    if (state === 'connected') this.emit('up');
    else this.emit('down');
  }

  close(): void {
    for (const connection of this.extra) connection.disconnect();
    this.extra.clear();
    this.client.disconnect();
  }
}
