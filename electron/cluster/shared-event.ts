import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { sharedPart, type Settings } from '../photos/settings.ts';
import type { PhotoRecord, PhotoStore, WallRow } from '../store/photo-store.ts';
import type { Logger } from '../relay/logger.ts';
import { identifyFormat } from '../engine/image-input.ts';
import { ClusterFetchError } from './cluster-routes.ts';
import type { EventKeys, RedisLink } from './redis-link.ts';
import {
  parseSharedMessage,
  sharedMessageSchema,
  type SharedMessage,
  type SharedPhoto,
} from './shared-messages.ts';

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
/** The newest outbox `seq` applied from each relay (entries sent twice are recognised by it). */
const APPLIED_SEQ = 'cluster.appliedSeq';
/** latestOwn (SharedEvent), kept across restarts: the entries not read back from the log yet. */
const LATEST_OWN = 'cluster.latestOwn';
/** Photos of other relays whose cut-out could not be fetched yet (kept across restarts). */
const WAITING_PHOTOS = 'cluster.waitingPhotos';
/** How often the waiting photos are tried again, and for how long before one is given up. */
const WAITING_RETRY_MS = 5000;
const WAITING_GIVE_UP_MS = 6 * 3_600_000;
/** The log reader's one try (a LAN fetch of a cut-out takes well under a second)… */
const FIRST_TRY_MS = 3000;
/** …and each try aside. */
const RETRY_TRY_MS = 10_000;

type PhotoMessage = Extract<SharedMessage, { type: 'photo' }>;
interface WaitingPhoto {
  message: PhotoMessage;
  since: number;
  tries: number;
  nextAt: number;
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
  /** By photo id: photos read from the log whose relay did not give the cut-out yet. */
  private readonly waiting = new Map<string, WaitingPhoto>();
  /**
   * The outbox place of this relay's latest moderation of each photo, and of its latest settings
   * change (this run). Read back from the log, that entry is applied here too: the log's order
   * decides, so when two operators click at once on two relays, both end where the log ends.
   */
  private readonly latestOwn = new Map<string, number>();
  private waitingTimer: NodeJS.Timeout | undefined;
  private retrying: Promise<void> | undefined;

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
      fetchCutout(url: string, id: string, timeoutMs: number): Promise<Buffer>;
    },
  ) {}

  start(): void {
    const { link, settings } = this.deps;
    for (const [key, seq] of Object.entries(
      this.deps.store.getSetting<Record<string, number>>(LATEST_OWN, {}),
    ))
      this.latestOwn.set(key, seq);
    link.on('up', () => void this.join());
    if (link.up) void this.join();
    settings.onChange((now) => {
      if (this.applyingSettings) return;
      // The log carries the change to the relays reading it; the key, to relays that join later.
      this.own(
        'settings',
        this.publish({ type: 'settings', from: this.deps.self.id, settings: sharedPart(now) }),
      );
      void link.client
        .set(this.deps.keys.settings, JSON.stringify(sharedPart(now)))
        .catch(() => undefined);
    });
    for (const entry of this.deps.store.getSetting<WaitingPhoto[]>(WAITING_PHOTOS, [])) {
      // Kept in SQLite, but first read from Redis: checked again by the log's rules.
      const parsed = sharedMessageSchema.safeParse(entry.message);
      if (!parsed.success || parsed.data.type !== 'photo') continue;
      this.waiting.set(parsed.data.photo.id, { ...entry, message: parsed.data, nextAt: 0 });
    }
    this.waitingTimer = setInterval(() => void this.retryWaiting(), WAITING_RETRY_MS);
    this.waitingTimer.unref();
    this.reader = link.connection();
    this.readLoop = this.read();
  }

  /** Photos of other relays not shown here yet because their cut-out has not been fetched. */
  waitingPhotos(): number {
    return this.waiting.size;
  }

  /** The secret of the cluster routes, once known (Redis has been reached at least once). */
  get secret(): string | undefined {
    return this.secretNow;
  }

  /** Shares a change: kept in the outbox, sent now if Redis is there. */
  publish(message: SharedMessage): number {
    const seq = this.deps.store.queueShared(message);
    void this.flush();
    return seq;
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
    this.own(
      `moderated:${record.id}`,
      this.publish({
        type: 'moderated',
        from: this.deps.self.id,
        id: record.id,
        hidden: record.hidden,
        approved: record.approved,
      }),
    );
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
      const mine = JSON.stringify(sharedPart(settings.current()));
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
        if (stored) this.applySettings(JSON.parse(stored) as unknown);
      }
      logger.info({ event: 'cluster.joined', redis: link.state().url }, 'joined the shared event');
    } catch (error) {
      logger.warn({ event: 'cluster.join-failed', err: (error as Error).message }, 'join failed');
    }
    await this.flush();
  }

  /** Throws E_BAD_OPTION (logged by the caller) for settings that break the rules. */
  private applySettings(shared: unknown): void {
    const before = this.deps.settings.current();
    this.applyingSettings = true;
    try {
      this.deps.settings.applyShared(shared);
    } finally {
      this.applyingSettings = false;
    }
    if (before.pin !== this.deps.settings.current().pin) this.deps.handlers.pinChanged();
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
              JSON.stringify({ ...(row.message as SharedMessage), seq: row.seq }),
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
    const applied = store.getSetting<Record<string, number>>(APPLIED_SEQ, {});
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
          const parsed = parseSharedMessage(fields[fields.indexOf('m') + 1] ?? '');
          try {
            if (parsed.ok && this.isReplay(parsed.message, applied)) {
              logger.debug({ event: 'cluster.entry-replayed', entry: id }, 'sent twice: ignored');
            } else if (parsed.ok) {
              await this.apply(parsed.message);
              if (parsed.message.seq) {
                applied[parsed.message.from] = parsed.message.seq;
                store.setSetting(APPLIED_SEQ, applied);
              }
            } else {
              logger.warn(
                { event: 'cluster.entry-refused', entry: id, why: parsed.why },
                'an entry of the shared log breaks its rules: ignored',
              );
            }
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

  /** An entry of another relay older than one already applied from it: a resend after a crash. */
  private isReplay(message: SharedMessage, applied: Record<string, number>): boolean {
    return !!message.seq && message.seq <= (applied[message.from] ?? 0);
  }

  /** This relay's own entry that is its latest word on the matter (see latestOwn). */
  private isLatestOwn(message: SharedMessage): boolean {
    const key =
      message.type === 'moderated'
        ? `moderated:${message.id}`
        : message.type === 'settings'
          ? 'settings'
          : undefined;
    if (!key || !message.seq || this.latestOwn.get(key) !== message.seq) return false;
    // Read back: from here on the log's later entries decide, as for every relay.
    this.latestOwn.delete(key);
    this.saveLatestOwn();
    return true;
  }

  private async apply(message: SharedMessage): Promise<void> {
    if (message.from === this.deps.self.id && !this.isLatestOwn(message)) return;
    const { store, handlers } = this.deps;
    switch (message.type) {
      case 'photo': {
        if (store.get(message.photo.id) || this.waiting.has(message.photo.id)) return;
        // One short try now, none while another photo of the same relay waits already (it is
        // away): the log reader goes on (the moderation and the other relays' photos behind it
        // must not wait), and the photo is tried again aside.
        const relayAway = [...this.waiting.values()].some(
          (entry) => entry.message.from === message.from,
        );
        const cutout = relayAway ? undefined : await this.fetchChecked(message, FIRST_TRY_MS);
        if (cutout === 'gone') return;
        if (cutout) {
          await this.show(message, cutout);
          return;
        }
        const now = Date.now();
        this.waiting.set(message.photo.id, {
          message,
          since: now,
          tries: 1,
          nextAt: now + WAITING_RETRY_MS,
        });
        this.saveWaiting();
        return;
      }
      case 'moderated': {
        const waiting = this.waiting.get(message.id);
        if (waiting) {
          // Shown with the latest state once it arrives.
          waiting.message.photo.hidden = message.hidden;
          waiting.message.photo.approved = message.approved;
          this.saveWaiting();
          return;
        }
        await handlers.moderated(message.id, {
          hidden: message.hidden,
          approved: message.approved,
        });
        return;
      }
      case 'removed':
        if (this.waiting.delete(message.id)) this.saveWaiting();
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

  /**
   * A photo's cut-out from its relay, checked; 'gone' when the relay answers it has no such photo
   * (deleted there); undefined when it did not give it (away, busy, not yet joined).
   */
  private async fetchChecked(
    message: PhotoMessage,
    timeoutMs: number,
  ): Promise<Buffer | 'gone' | undefined> {
    // Not joined yet (Redis away at start): asked without the secret, a relay answers 404 as if
    // the photo were gone. It waits until the secret is known.
    if (!this.secretNow) return undefined;
    try {
      const cutout = await this.deps.fetchCutout(message.url, message.photo.id, timeoutMs);
      checkCutout(cutout, message.photo);
      return cutout;
    } catch (error) {
      if (error instanceof ClusterFetchError && error.gone) return 'gone';
      this.deps.logger.warn(
        { event: 'cluster.cutout-waiting', photo: message.photo.id, err: (error as Error).message },
        'a photo of another relay waits for its cut-out',
      );
      return undefined;
    }
  }

  private async show(message: PhotoMessage, cutout: Buffer): Promise<void> {
    const record = await this.deps.store.importShared(
      { ...message.photo, origin: message.from },
      cutout,
    );
    if (record) this.deps.handlers.photoArrived(record, cutout);
  }

  /**
   * The waiting photos whose time has come, one at a time (never two rounds at once); after a
   * relay's first failure in a round, its other photos wait for the next. An entry stays in the
   * list until it is shown, so moderation and removal read from the log meanwhile land on it, and
   * are applied to the photo once it is in.
   */
  private retryWaiting(): Promise<void> {
    this.retrying ??= (async () => {
      const { logger, handlers } = this.deps;
      const failed = new Set<string>();
      for (const [id, entry] of [...this.waiting]) {
        if (this.stopped) break;
        const now = Date.now();
        if (entry.nextAt > now || failed.has(entry.message.from)) continue;
        const cutout = await this.fetchChecked(entry.message, RETRY_TRY_MS);
        if (this.waiting.get(id) !== entry) continue; // removed meanwhile
        if (cutout === 'gone') {
          this.waiting.delete(id);
        } else if (cutout) {
          const asShown = { ...entry.message.photo };
          try {
            await this.show(entry.message, cutout);
            const latest = entry.message.photo;
            if (this.waiting.get(id) !== entry) await handlers.removed(id);
            else if (latest.hidden !== asShown.hidden || latest.approved !== asShown.approved)
              await handlers.moderated(id, { hidden: latest.hidden, approved: latest.approved });
            this.waiting.delete(id);
          } catch (error) {
            // Not stored (the disk, say): it stays in the list and is tried again.
            logger.warn(
              { event: 'cluster.apply-failed', photo: id, err: (error as Error).message },
              'a photo of another relay could not be stored',
            );
            entry.nextAt = now + WAITING_RETRY_MS * 4;
          }
        } else if (now - entry.since > WAITING_GIVE_UP_MS) {
          failed.add(entry.message.from);
          this.waiting.delete(id);
          logger.error(
            { event: 'cluster.cutout-given-up', photo: id, from: entry.message.url },
            'a photo of another relay was given up: its relay never gave the cut-out',
          );
        } else {
          failed.add(entry.message.from);
          entry.tries++;
          entry.nextAt = now + Math.min(60_000, WAITING_RETRY_MS * 2 ** Math.min(entry.tries, 4));
        }
        this.saveWaiting();
      }
    })().finally(() => (this.retrying = undefined));
    return this.retrying;
  }

  /** Remembers this relay's latest own entry on a matter (see latestOwn). */
  private own(key: string, seq: number): void {
    this.latestOwn.set(key, seq);
    this.saveLatestOwn();
  }

  private saveLatestOwn(): void {
    this.deps.store.setSetting(LATEST_OWN, Object.fromEntries(this.latestOwn));
  }

  private saveWaiting(): void {
    this.deps.store.setSetting(WAITING_PHOTOS, [...this.waiting.values()]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.waitingTimer);
    this.reader?.disconnect();
    await this.readLoop?.catch(() => undefined);
    await this.retrying;
    await this.flushing;
  }
}

/** PNG bytes of the size the message says (another relay's answer is checked, not trusted). */
function checkCutout(bytes: Buffer, photo: SharedPhoto): void {
  const ok =
    bytes.length > 24 &&
    isPng(bytes) &&
    bytes.subarray(12, 16).toString('ascii') === 'IHDR' &&
    (photo.width === null || bytes.readUInt32BE(16) === photo.width) &&
    (photo.height === null || bytes.readUInt32BE(20) === photo.height);
  if (!ok) throw new Error(`the cut-out of ${photo.id} is not the PNG its entry describes`);
}

function isPng(bytes: Buffer): boolean {
  try {
    return identifyFormat(bytes) === 'png';
  } catch {
    return false; // a format the relay refuses (HEIC, SVG…)
  }
}

function randomSecret(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString('base64url');
}
