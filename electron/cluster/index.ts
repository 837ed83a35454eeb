import os from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Router } from 'express';
import type { ClusterRelay, ClusterStatus, ClusterWorker } from '../../shared/cluster.ts';
import { httpOrigin } from '../../shared/wall-relays.ts';
import type { RelayConfig } from '../config/relay-config.ts';
import type { Engine } from '../engine/index.ts';
import type { Settings } from '../photos/settings.ts';
import type { PhotoStore } from '../store/photo-store.ts';
import type { Broadcaster } from '../relay/broadcaster.ts';
import type { Logger } from '../relay/logger.ts';
import type { Processor } from '../relay/processor.ts';
import type { WallCredentials } from '../relay/wall-credentials.ts';
import { clusterRouter, fetchClusterFile } from './cluster-routes.ts';
import {
  InferenceWorker,
  SharedInference,
  fetchOriginal,
  type OriginalSource,
} from './inference.ts';
import { keepPresence, readPresence } from './presence.ts';
import { RedisLink, eventKeys } from './redis-link.ts';
import { SharedEvent } from './shared-event.ts';

/**
 * A relay's place among the machines of its event. Without REDIS_URL it is on its own (the
 * embedded default: nothing else runs). With it, the relay shares the event (shared-event.ts),
 * sends its photos to the shared workers (inference.ts), runs a worker itself unless
 * LOCAL_WORKER=0, and keeps working alone while Redis is away.
 */
export interface Cluster {
  readonly mode: 'single' | 'cluster';
  /** The routes other machines use (404 for everyone else). */
  readonly router: Router | undefined;
  /**
   * Once the relay listens and knows its URL (where the other machines reach it) and the
   * addresses its pages are opened at (`pageUrls`: a wall that moves to another relay comes from
   * one of them).
   */
  start(url: string, pageUrls?: () => string[]): void;
  status(): Promise<ClusterStatus>;
  /** Redis's state now (undefined on its own). */
  redisState(): string | undefined;
  /** The origins of the event's other relays (their wall pages may connect here). */
  peerOrigins(): string[];
  /** Where the event's other relays are reached (online ones), for the walls' links. */
  otherRelays(): string[];
  stop(): Promise<void>;
}

export interface ClusterDeps {
  config: RelayConfig;
  store: PhotoStore;
  settings: Settings;
  processor: Processor;
  broadcaster: Broadcaster;
  engine: Engine;
  logger: Logger;
  /** The guest PIN changed on another relay: close this relay's sockets opened with the old one. */
  closePinSockets(): void;
  walls: WallCredentials;
  /** A wall credential revoked on another relay: close its sockets here (4002). */
  closeWallSockets(id: string): void;
}

const RELAY_ID_SETTING = 'cluster.relayId';
const PEER_ORIGINS_SETTING = 'cluster.peerOrigins';
/** Far more page origins than an event's relays have (each has a few addresses). */
const MAX_PEER_ORIGINS = 256;

/** This relay's id among the event's machines: made once per data folder and kept. */
function relayId(store: PhotoStore): string {
  let id = store.getSetting<string | undefined>(RELAY_ID_SETTING, undefined);
  if (!id) {
    id = `relay-${randomUUID().slice(0, 8)}`;
    store.setSetting(RELAY_ID_SETTING, id);
  }
  return id;
}

function localWorkerEntry(deps: ClusterDeps, startedAt: string): ClusterWorker {
  const stats = deps.engine.stats();
  return {
    id: 'local',
    host: os.hostname(),
    kind: 'local',
    threads: deps.config.threads ?? Math.min(4, os.availableParallelism()),
    model: deps.engine.model.id,
    startedAt,
    lastSeenAt: new Date().toISOString(),
    online: true,
    running: stats.inWorker,
    done: stats.completed,
    failed: stats.failed,
  };
}

/** `[origin]` of a relay's http(s) URL, `[]` for anything else (one not known yet, `null`…). */
function originOf(url: string): string[] {
  const origin = httpOrigin(url);
  return origin ? [origin] : [];
}

function relayEntry(
  deps: ClusterDeps,
  id: string,
  url: string,
  startedAt: string,
  pageUrls: () => string[] = () => [],
) {
  return {
    id,
    url,
    pageOrigins: [...new Set([url, ...pageUrls()].flatMap(originOf))],
    startedAt,
    walls: deps.broadcaster.counts().display,
    pending: deps.processor.pending,
    localWorker: deps.config.localWorker,
  };
}

export function createCluster(deps: ClusterDeps): Cluster {
  const startedAt = new Date().toISOString();
  const id = relayId(deps.store);
  if (!deps.config.redisUrl) {
    let url = '';
    return {
      mode: 'single',
      router: undefined,
      start(selfUrl) {
        url = selfUrl;
      },
      redisState: () => undefined,
      peerOrigins: () => [],
      otherRelays: () => [],
      status() {
        return Promise.resolve({
          mode: 'single',
          role: 'relay',
          selfId: id,
          redis: null,
          relays: [
            {
              ...relayEntry(deps, id, url, startedAt),
              lastSeenAt: new Date().toISOString(),
              online: true,
              self: true,
            },
          ],
          workers: [localWorkerEntry(deps, startedAt)],
          queue: null,
          unshared: 0,
          waiting: 0,
        });
      },
      stop: () => Promise.resolve(),
    };
  }
  return joinedCluster(deps, id, startedAt, deps.config.redisUrl);
}

function joinedCluster(
  deps: ClusterDeps,
  id: string,
  startedAt: string,
  redisUrl: string,
): Cluster {
  const { config, store, processor, logger } = deps;
  const link = new RedisLink(redisUrl);
  const keys = eventKeys(config.redisPrefix);
  let url = '';
  let pageUrls: () => string[] = () => [];
  const shared: SharedEvent = new SharedEvent({
    link,
    keys,
    store,
    settings: deps.settings,
    logger,
    self: {
      id,
      get url() {
        return url;
      },
    },
    handlers: {
      photoArrived: (record, cutout) => processor.showShared(record, cutout),
      moderated: (photoId, state) => processor.applyShared(photoId, state),
      removed: (photoId) => processor.removeShared(photoId),
      pinChanged: () => deps.closePinSockets(),
      wallIssued: (row) => deps.walls.adopt(row),
      wallRevoked: (wallId) => {
        if (deps.walls.revoke(wallId, { share: false })) deps.closeWallSockets(wallId);
      },
    },
    fetchCutout: (origin, photoId, timeoutMs): Promise<Buffer> =>
      fetchClusterFile(origin, photoId, 'cutout', shared.secret, timeoutMs),
  });
  const inference = new SharedInference(link, keys);
  const secret = () =>
    shared.secret
      ? Promise.resolve(shared.secret)
      : Promise.reject(new Error('the event secret is not known yet'));
  // A photo this relay accepted is read from its own disk; another relay's over HTTP.
  const remoteOriginal = fetchOriginal(secret);
  const original: OriginalSource = async (job) => {
    if (job.relayId !== id) return remoteOriginal(job);
    const record = store.get(job.photoId);
    if (!record) throw new Error(`photo ${job.photoId} is gone`);
    return store.readOriginal(record);
  };
  let worker: InferenceWorker | undefined;
  const stops: (() => Promise<void>)[] = [];
  // The origins of every relay of the event seen so far, refreshed in the background (the upgrade
  // check is synchronous). Never shrunk, and kept in the data folder: a wall whose relay stopped
  // (its entry gone from Redis), died an hour ago, or died with Redis, still comes from there.
  let peers = store.getSetting<string[]>(PEER_ORIGINS_SETTING, []);
  let others: string[] = [];
  const refreshPeers = async () => {
    if (link.state().state !== 'connected') return;
    const relays = await readPresence<{
      id: string;
      url: string;
      pageOrigins?: unknown;
      lastSeenAt: string;
    }>(link, keys.relays);
    others = relays
      .filter((relay) => relay.id !== id && relay.online)
      .flatMap((relay) => originOf(relay.url));
    const seen = relays
      .filter((relay) => relay.id !== id)
      .flatMap((relay) => [
        relay.url,
        ...(Array.isArray(relay.pageOrigins) ? (relay.pageOrigins as unknown[]) : []),
      ])
      .flatMap((url) => (typeof url === 'string' ? originOf(url) : []));
    const union = [...new Set([...peers, ...seen])].slice(0, MAX_PEER_ORIGINS);
    if (union.length !== peers.length) {
      peers = union;
      store.setSetting(PEER_ORIGINS_SETTING, peers);
    }
  };
  link.on('down', () =>
    logger.warn(
      { event: 'cluster.redis-down', redis: link.state().url, err: link.state().lastError },
      'Redis is away: this relay carries on alone and rejoins when it is back',
    ),
  );
  link.on('up', () => logger.info({ event: 'cluster.redis-up' }, 'Redis reached'));

  return {
    mode: 'cluster',
    router: clusterRouter(store, () => shared.secret),
    redisState: () => link.state().state,
    peerOrigins: () => peers,
    otherRelays: () => others,
    start(selfUrl, selfPages = () => []) {
      url = selfUrl;
      pageUrls = selfPages;
      shared.start();
      deps.walls.shareWith(shared);
      processor.shareWith(shared, (record, options) =>
        inference.segment({
          photoId: record.id,
          relayId: id,
          relayUrl: url,
          inputFormat: record.inputFormat,
          options,
        }),
      );
      stops.push(
        keepPresence(link, keys.relays, id, () => relayEntry(deps, id, url, startedAt, pageUrls)),
      );
      const peersTimer = setInterval(() => void refreshPeers().catch(() => undefined), 5000);
      peersTimer.unref();
      void refreshPeers().catch(() => undefined);
      stops.push(() => {
        clearInterval(peersTimer);
        return Promise.resolve();
      });
      if (config.localWorker) {
        worker = new InferenceWorker(link, keys, deps.engine, original, {
          concurrency: 2,
          beforeOwnPhoto: (job) => {
            if (job.relayId === id) store.countAttempt(job.photoId);
          },
        });
        const running = worker;
        stops.push(
          keepPresence(link, keys.workers, running.id, () => ({
            host: os.hostname(),
            kind: 'local',
            threads: config.threads ?? Math.min(4, os.availableParallelism()),
            model: deps.engine.model.id,
            startedAt,
            ...running.counters,
          })),
        );
      }
    },
    async status() {
      const [relays, workers, queue] = await Promise.all([
        readPresence<Omit<ClusterRelay, 'online' | 'self'>>(link, keys.relays),
        readPresence<Omit<ClusterWorker, 'online'>>(link, keys.workers),
        inference.counts(),
      ]);
      return {
        mode: 'cluster',
        role: 'relay',
        selfId: id,
        redis: link.state(),
        relays: [
          ...relays.map((relay) => ({ ...relay, self: relay.id === id })),
          // Redis away: this relay still knows itself.
          ...(relays.some((relay) => relay.id === id)
            ? []
            : [
                {
                  ...relayEntry(deps, id, url, startedAt, pageUrls),
                  lastSeenAt: new Date().toISOString(),
                  online: true,
                  self: true,
                },
              ]),
        ],
        workers,
        queue,
        unshared: shared.unshared(),
        waiting: shared.waitingPhotos(),
      };
    },
    async stop() {
      await worker?.close();
      for (const stop of stops) await stop();
      await shared.stop();
      await inference.close();
      link.close();
    },
  };
}
