import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { EventSettings, Settings } from '../photos/settings.ts';
import type { PhotoRecord, PhotoStore, WallRow } from '../store/photo-store.ts';
import type { Logger } from '../relay/logger.ts';
import type { EventKeys, RedisLink } from './redis-link.ts';

/** A finished photo as the relay that accepted it tells the others. */
export type SharedPhoto = Pick<
  PhotoRecord,
  | 'id'
  | 'timestamp'
  | 'description'
  | 'originalFilename'
  | 'inputFormat'
  | 'processingTime'
  | 'width'
  | 'height'
  | 'hidden'
  | 'approved'
>;

/** The settings every relay of an event shares (each machine keeps its own model install). */
export type SharedSettings = Omit<EventSettings, 'model'>;

/** One entry of the event's shared log. `from` is the relay that wrote it. */
export type SharedMessage =
  | { type: 'photo'; from: string; url: string; photo: SharedPhoto }
  | { type: 'moderated'; from: string; id: string; hidden: boolean; approved: boolean }
  | { type: 'removed'; from: string; id: string }
  | { type: 'settings'; from: string; settings: SharedSettings }
  | { type: 'wall'; from: string; wall: WallRow }
  | { type: 'wallRevoked'; from: string; id: string };

/** What this relay does with what the others did (the processor, which also tells the walls). */
export interface SharedEventHandlers {
  /** A photo from another relay, its cut-out already fetched and stored: show it. */
  photoArrived(record: PhotoRecord, cutout: Buffer): void;
  moderated(id: string, state: { hidden: boolean; approved: boolean }): Promise<void>;
  removed(id: string): Promise<void>;
  /** The guest PIN changed elsewhere: close the sockets opened with the old one. */
  pinChanged(): void;
  /** A wall credential another relay issued (only its hash), or revoked. */
  wallIssued(row: WallRow): void;
  wallRevoked(id: string): void;
}

/** Stream entries kept: far more than one event's photos and moderation clicks. */
const LOG_MAX_ENTRIES = 200_000;
const LOG_POSITION = 'cluster.logPosition';

function sharedSettings(settings: EventSettings): SharedSettings {
  const { pin, background, displayMaxEdge, cutoutMode, approvalMode } = settings;
  return { pin, background, displayMaxEdge, cutoutMode, approvalMode };
}

/**
 * One event across relays, on a Redis stream (the shared log): each relay appends what it did
 * (a photo finished, a moderation click, a settings change) and reads what the others did, from
 * where it left off. Writes go through an outbox in the relay's SQLite first, so a change made
 * while Redis is away (or just before a kill -9) is shared once Redis is back; readers ignore
 * what they already have, so an entry written twice changes nothing.
 */
export class SharedEvent {
  private stopped = false;
  private flushing: Promise<void> | undefined;
  private applyingSettings = false;
  private reader: Redis | undefined;
  private readLoop: Promise<void> | undefined;
  private secretNow: string | undefined;

  constructor(
    private readonly deps: {
      link: RedisLink;
      keys: EventKeys;
      store: PhotoStore;
      settings: Settings;
      logger: Logger;
      self: { id: string; url: string };
      handlers: SharedEventHandlers;
      /** Fetches a finished photo's cut-out from the relay that has it (cluster-routes.ts). */
      fetchCutout(url: string, id: string): Promise<Buffer>;
    },
  ) {}

  start(): void {
    const { link, settings } = this.deps;
    link.on('up', () => void this.join());
    if (link.up) void this.join();
    settings.onChange((now) => {
      if (this.applyingSettings) return;
      // The log carries the change to the relays reading it; the key, to relays that join later.
      this.publish({ type: 'settings', from: this.deps.self.id, settings: sharedSettings(now) });
      void link.client
        .set(this.deps.keys.settings, JSON.stringify(sharedSettings(now)))
        .catch(() => undefined);
    });
    this.reader = link.connection();
    this.readLoop = this.read();
  }

  /** The secret of the cluster routes, once known (Redis has been reached at least once). */
  get secret(): string | undefined {
    return this.secretNow;
  }

  /** Shares a change: kept in the outbox, sent now if Redis is there. */
  publish(message: SharedMessage): void {
    this.deps.store.queueShared(message);
    void this.flush();
  }

  photoDone(record: PhotoRecord): void {
    this.publish({
      type: 'photo',
      from: this.deps.self.id,
      url: this.deps.self.url,
      photo: {
        id: record.id,
        timestamp: record.timestamp,
        description: record.description,
        originalFilename: record.originalFilename,
        inputFormat: record.inputFormat,
        processingTime: record.processingTime,
        width: record.width,
        height: record.height,
        hidden: record.hidden,
        approved: record.approved,
      },
    });
  }

  moderated(record: PhotoRecord): void {
    this.publish({
      type: 'moderated',
      from: this.deps.self.id,
      id: record.id,
      hidden: record.hidden,
      approved: record.approved,
    });
  }

  removed(id: string): void {
    this.publish({ type: 'removed', from: this.deps.self.id, id });
  }

  issued(wall: WallRow): void {
    this.publish({ type: 'wall', from: this.deps.self.id, wall });
  }

  revoked(id: string): void {
    this.publish({ type: 'wallRevoked', from: this.deps.self.id, id });
  }

  unshared(): number {
    return this.deps.store.countUnshared();
  }

  /**
   * On (re)connecting: the shared settings adopted (or this relay's, if it is the first), the
   * secret made or read, and what was kept while Redis was away sent.
   */
  private async join(): Promise<void> {
    const { link, keys, settings, logger } = this.deps;
    try {
      await link.client.set(keys.secret, randomSecret(), 'NX');
      this.secretNow = (await link.client.get(keys.secret)) ?? undefined;
      const mine = JSON.stringify(sharedSettings(settings.current()));
      // A change made here while Redis was away is the latest decision: it replaces the shared
      // one (the outbox then tells the others). Otherwise the event's settings are adopted.
      const changedWhileAway = this.deps.store
        .listUnshared(1_000_000)
        .some((row) => (row.message as SharedMessage).type === 'settings');
      const created = changedWhileAway
        ? await link.client.set(keys.settings, mine)
        : await link.client.set(keys.settings, mine, 'NX');
      if (!created) {
        const stored = await link.client.get(keys.settings);
        if (stored) this.applySettings(JSON.parse(stored) as SharedSettings);
      }
      logger.info({ event: 'cluster.joined', redis: link.state().url }, 'joined the shared event');
    } catch (error) {
      logger.warn({ event: 'cluster.join-failed', err: (error as Error).message }, 'join failed');
    }
    await this.flush();
  }

  private applySettings(shared: SharedSettings): void {
    const before = this.deps.settings.current();
    this.applyingSettings = true;
    try {
      this.deps.settings.applyShared({ ...shared, model: before.model });
    } finally {
      this.applyingSettings = false;
    }
    if (before.pin !== shared.pin) this.deps.handlers.pinChanged();
  }

  /** Sends the outbox in order, one flush at a time; stops where Redis stops answering. */
  private flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = (async () => {
      const { link, keys, store } = this.deps;
      // Not a line of it runs before `flushing` is set (its `finally` would clear it too early).
      await Promise.resolve();
      try {
        while (link.up && !this.stopped) {
          const rows = store.listUnshared(100);
          if (rows.length === 0) break;
          for (const row of rows) {
            await link.client.xadd(
              keys.log,
              'MAXLEN',
              '~',
              LOG_MAX_ENTRIES,
              '*',
              'm',
              JSON.stringify(row.message),
            );
            // Sent then killed before this line: sent again at the next start, and ignored then.
            store.markShared(row.seq);
          }
        }
      } catch {
        // Redis went away mid-flush: the rest waits in the outbox for the next `up`.
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  /** Reads the log from where this relay left off, for as long as the relay runs. */
  private async read(): Promise<void> {
    const { keys, store, logger } = this.deps;
    let position = store.getSetting<string>(LOG_POSITION, '0');
    while (!this.stopped) {
      let answer: [string, [string, string[]][]][] | null;
      try {
        answer = await this.reader!.xread(
          'COUNT',
          100,
          'BLOCK',
          2000,
          'STREAMS',
          keys.log,
          position,
        );
      } catch {
        // Redis away (or this relay stopping: the loop's condition ends it).
        await sleep(500);
        continue;
      }
      for (const [, entries] of answer ?? []) {
        for (const [id, fields] of entries) {
          const json = fields[fields.indexOf('m') + 1];
          try {
            if (json) await this.apply(JSON.parse(json) as SharedMessage);
          } catch (error) {
            logger.warn(
              { event: 'cluster.apply-failed', entry: id, err: (error as Error).message },
              'an entry of the shared log could not be applied',
            );
          }
          position = id;
          store.setSetting(LOG_POSITION, position);
        }
      }
    }
  }

  private async apply(message: SharedMessage): Promise<void> {
    if (message.from === this.deps.self.id) return;
    const { store, handlers } = this.deps;
    switch (message.type) {
      case 'photo': {
        if (store.get(message.photo.id)) return;
        const cutout = await this.fetchWithRetries(message.url, message.photo.id);
        const record = await store.importShared({ ...message.photo, origin: message.from }, cutout);
        if (record) handlers.photoArrived(record, cutout);
        return;
      }
      case 'moderated':
        await handlers.moderated(message.id, {
          hidden: message.hidden,
          approved: message.approved,
        });
        return;
      case 'removed':
        await handlers.removed(message.id);
        return;
      case 'settings':
        this.applySettings(message.settings);
        return;
      case 'wall':
        handlers.wallIssued(message.wall);
        return;
      case 'wallRevoked':
        handlers.wallRevoked(message.id);
        return;
    }
  }

  /** The origin may be busy or restarting: a few tries over ~10 s before giving up on it. */
  private async fetchWithRetries(url: string, id: string): Promise<Buffer> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 5 && !this.stopped; attempt++) {
      try {
        return await this.deps.fetchCutout(url, id);
      } catch (error) {
        lastError = error;
        await sleep(500 * 2 ** attempt);
      }
    }
    throw lastError instanceof Error ? lastError : new Error('cut-out not fetched');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.reader?.disconnect();
    await this.readLoop?.catch(() => undefined);
    await this.flushing;
  }
}

function randomSecret(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString('base64url');
}
