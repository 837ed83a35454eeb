import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { PhotoRelayError } from '../../shared/errors.ts';
import { CLOSE_CODES, HISTORY_ON_CONNECT } from '../../shared/protocol.ts';
import { createCluster } from '../cluster/index.ts';
import type { RelayConfig } from '../config/relay-config.ts';
import { createEngine, type Engine } from '../engine/index.ts';
import { Settings } from '../photos/settings.ts';
import { photoEvent } from '../photos/views.ts';
import { PhotoStore } from '../store/photo-store.ts';
import { adminRouter } from './admin-routes.ts';
import { Admission } from './admission.ts';
import { PinGuard, UploadLimiter } from './auth.ts';
import { BackgroundImage } from './background-image.ts';
import { Broadcaster } from './broadcaster.ts';
import { guardConnections } from './connections.ts';
import { DashboardFeed } from './dashboard-feed.ts';
import { errorHandler } from './error-handler.ts';
import { lingerBounds, unlessLingering } from './lingering-close.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { continueLater, isUploadRequest } from './multipart.ts';
import { reachableHosts } from './network.ts';
import { OperatorView, type Lifecycle } from './operator-view.ts';
import { hostPolicy, originPolicy } from './origin-policy.ts';
import { pagesRouter } from './pages.ts';
import { Processor } from './processor.ts';
import { publicRouter } from './public-routes.ts';
import { CompactRenditions } from './renditions.ts';
import { WallCredentials } from './wall-credentials.ts';
import { upgradeHandler } from './ws-upgrade.ts';

export interface Relay {
  readonly config: RelayConfig;
  readonly server: http.Server;
  readonly engine: Engine;
  readonly store: PhotoStore;
  readonly settings: Settings;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /**
   * Listens on config.host and `port` (default config.port; 0 picks a free port); resolves with
   * the bound URL, rejects with the listen error (EADDRINUSE…) and may then be called again.
   */
  start(options?: { port?: number }): Promise<{ port: number; url: string }>;
  /** Stops accepting, finishes the photos in flight, closes sockets, releases the model. */
  stop(): Promise<void>;
}

/** The services a relay runs on; tests may choose them (a stand-in engine, say). */
export interface RelayServices {
  logger?: Logger;
  /** Opened on config.dataDir by default. */
  store?: PhotoStore;
  /** Loads the model the settings name; the real engine by default. */
  createEngine?: (model: string, config: RelayConfig) => Promise<Engine>;
}

const realEngine = (model: string, config: RelayConfig) =>
  createEngine({
    model,
    modelsDir: config.modelsDir,
    threads: config.threads,
    maxPixels: config.maxPixels,
    // The relay admits at most queueSize photos itself (503 beyond): the engine never refuses.
    maxQueue: 100_000,
  });

/**
 * The event's state from its data folder (store, swept files, settings, background) and the
 * engine for its model. A failure releases the data folder again, so the caller may retry.
 */
async function openEvent(config: RelayConfig, services: RelayServices, logger: Logger) {
  const store = services.store ?? new PhotoStore(config.dataDir);
  try {
    const swept = await store.sweep();
    store.forgetOldUploadKeys();
    const settings = new Settings(store, {
      pin: config.eventPin,
      model: config.model,
      displayMaxEdge: config.displayMaxEdge,
      cutoutMode: config.cutoutMode,
    });
    const { image: backgroundImage, dropped } = await BackgroundImage.load(config.dataDir);
    if (dropped) {
      settings.dropBackgroundImage();
      logger.warn(
        { event: 'background.dropped', file: dropped },
        'the stored background image is damaged: removed',
      );
    }
    const engine = await (services.createEngine ?? realEngine)(settings.current().model, config);
    return { store, swept, settings, backgroundImage, engine };
  } catch (error) {
    if (!services.store) store.close();
    throw error;
  }
}

/**
 * Builds the relay (services, routes, WebSocket upgrade) without listening, so `npm run serve`,
 * the tests and the desktop shell all start the same thing.
 */
export async function createRelay(
  config: RelayConfig,
  services: RelayServices = {},
): Promise<Relay> {
  const logger = services.logger ?? createLogger(config.logLevel);
  const metrics = createMetrics();
  const { store, swept, settings, backgroundImage, engine } = await openEvent(
    config,
    services,
    logger,
  );
  const lifecycle: Lifecycle = {
    startedAt: new Date().toISOString(),
    starts: store.getSetting('lifecycle.starts', 0) + 1,
    resumed: 0,
    crashLooped: 0,
  };
  store.setSetting('lifecycle.starts', lifecycle.starts);

  // headersTimeout is enforced by a sweep over the connections: every 5 s, not Node's 30 s, so a
  // client dripping its headers holds a connection HEADERS_TIMEOUT_SECONDS + 5 s at most.
  const server = http.createServer({ connectionsCheckingInterval: 5000 });
  const baseUrls = () => {
    const port = (server.address() as AddressInfo | null)?.port;
    return reachableHosts(config.host).map((host) => `http://${host}:${port}`);
  };
  // The broadcaster, the processor and the dashboard feed tell each other about changes: the
  // view's getters are only called once all three exist.
  const wallCredentials = new WallCredentials(store, () =>
    broadcaster.list().flatMap((client) => (client.wallId ? [client.wallId] : [])),
  );
  const walls = () => wallCredentials.list();
  const view = new OperatorView({
    config,
    store,
    engine,
    settings,
    metrics,
    backgroundImage,
    broadcaster: () => broadcaster,
    processor: () => processor,
    walls,
    lifecycle: () => lifecycle,
    baseUrls,
    // Read once the relay runs (the cluster is made below, after the view it reports to).
    otherRelays: () => cluster.otherRelays(),
  });
  const feed = new DashboardFeed(view, () => broadcaster, walls);
  // A PIN rotation, a saved setting or a background dropped by the processor: one path.
  settings.onChange(() => feed.overviewChanged());
  const broadcaster: Broadcaster = new Broadcaster({
    logger,
    metrics,
    heartbeatMs: config.heartbeatMs,
    maxBufferedBytes: config.maxBufferedBytes,
    history: () => store.listOnWalls(HISTORY_ON_CONNECT).map(photoEvent),
    onClientsChanged: () => feed.clientsChanged(),
    dashboardSnapshot: () => view.snapshot(),
  });
  const renditions = new CompactRenditions({ store, logger });
  const processor: Processor = new Processor({
    store,
    engine,
    broadcaster,
    logger,
    metrics,
    settings,
    backgroundImage,
    changes: renditions.following(feed),
  });
  // One machine, or one of several sharing the event through Redis (cluster/).
  const cluster = createCluster({
    config,
    store,
    settings,
    processor,
    broadcaster,
    engine,
    logger,
    closePinSockets: () =>
      broadcaster.closeWhere(
        (credential) => credential.kind === 'pin',
        CLOSE_CODES.pinRotated,
        'the event PIN was changed',
      ),
    walls: wallCredentials,
    closeWallSockets: (id) => {
      broadcaster.closeWhere(
        (credential) => credential.kind === 'wall' && credential.wallId === id,
        CLOSE_CODES.wallRevoked,
        'this display was removed by the operator',
      );
      feed.clientsChanged();
    },
  });
  const pins = new PinGuard(() => settings.current().pin, wallCredentials);
  // Caps on what anonymous clients can hold: uploads, places in line, sockets (admission.ts).
  const admission = new Admission(config, processor);
  let stopping = false;
  const isStopping = () => stopping;

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(originPolicy(() => [...config.corsOrigins, ...cluster.peerOrigins()]));
  app.use(hostPolicy(config));
  app.use(pagesRouter());
  if (cluster.router) app.use(cluster.router);
  app.use(
    publicRouter({
      config,
      store,
      processor,
      engine,
      broadcaster,
      pins,
      metrics,
      logger,
      uploads: new UploadLimiter(config.uploadsPerMinute),
      admission,
      baseUrls,
      stopping: isStopping,
      renditions,
      health: () => ({
        role: 'relay',
        cluster: cluster.mode,
        redis: config.redisUrl ? (cluster.redisState() ?? 'down') : null,
      }),
    }),
  );
  const admin = adminRouter({
    config,
    store,
    settings,
    broadcaster,
    processor,
    backgroundImage,
    view,
    feed,
    walls: wallCredentials,
    cluster,
  });
  app.use('/admin/api', admin.api);
  app.use(admin.downloads);
  app.use(() => {
    throw new PhotoRelayError('E_NOT_FOUND');
  });
  app.use(errorHandler({ logger, metrics, linger: lingerBounds(config.maxUploadBytes) }));

  // Nothing on a connection that has had its last answer is dispatched (lingering-close.ts).
  const dispatch = unlessLingering({
    request: app,
    upgrade: upgradeHandler({
      config,
      pins,
      broadcaster,
      walls: wallCredentials,
      admission,
      logger,
      metrics,
      stopping: isStopping,
      peerOrigins: () => cluster.peerOrigins(),
    }),
  });
  server.on('request', dispatch.request);
  // An upload sent with `Expect: 100-continue` (curl) is told to go on only once the checks that
  // need no body have passed (multipart.ts); anything else at once, as Node does by default.
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (isUploadRequest(req)) continueLater.add(res);
    else res.writeContinue();
    server.emit('request', req, res);
  });
  server.keepAliveTimeout = 5000;
  // Slow clients: the headers within HEADERS_TIMEOUT_SECONDS (and a connection that sends
  // nothing closed after as long: connections.ts); a whole request within the upload timeout
  // (uploads answer 408 JSON themselves at that point, and after UPLOAD_IDLE_SECONDS without a
  // byte: multipart.ts); Node's own 408 is the backstop a little later.
  server.headersTimeout = config.headersTimeoutMs;
  server.requestTimeout = config.uploadTimeoutMs + 15_000;
  // Per address and in all, and idle ones closed (connections.ts).
  const sockets = guardConnections(server, config, { admission, logger });
  server.on('upgrade', dispatch.upgrade);

  let perfTimer: NodeJS.Timeout | undefined;
  // Idempotency keys are kept 24 h; forgetting them hourly keeps the table small.
  const keysTimer = setInterval(() => store.forgetOldUploadKeys(), 3_600_000);
  keysTimer.unref();
  let started = false;

  return {
    config,
    server,
    engine,
    store,
    settings,
    metrics,
    logger,
    async start({ port: wantedPort = config.port } = {}) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(wantedPort, config.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const { port } = server.address() as AddressInfo;
      if (!started) {
        started = true;
        cluster.start(config.publicUrl ?? baseUrls()[0] ?? `http://127.0.0.1:${port}`, baseUrls);
        Object.assign(lifecycle, processor.resumeUnfinished());
        feed.start();
      }
      if (config.perfLogSeconds > 0) {
        perfTimer = setInterval(() => {
          logger.info(
            {
              event: 'perf',
              queue: processor.pending,
              connections: broadcaster.counts(),
              engine: engine.stats(),
              rssMb: Math.round(process.memoryUsage().rss / 1e6),
            },
            'performance',
          );
        }, config.perfLogSeconds * 1000);
        perfTimer.unref();
      }
      const url = `http://${config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host}:${port}`;
      logger.info(
        { event: 'listening', url, port, model: engine.model.id, ...lifecycle, swept },
        'relay listening',
      );
      return { port, url };
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      logger.info({ event: 'stopping', inFlight: processor.pending }, 'stopping');
      clearInterval(perfTimer);
      clearInterval(keysTimer);
      feed.stop();
      const closed = server.listening
        ? new Promise<void>((resolve) => server.close(() => resolve()))
        : Promise.resolve();
      server.closeIdleConnections();
      // Finish what is in line if that is quick; anything left stays queued on disk and is
      // processed at the next start.
      let graceTimer: NodeJS.Timeout | undefined;
      await Promise.race([
        processor.drain(),
        new Promise((resolve) => (graceTimer = setTimeout(resolve, config.shutdownGraceMs))),
      ]);
      clearTimeout(graceTimer);
      await cluster.stop();
      await engine.dispose();
      await processor.drain();
      await renditions.close();
      await broadcaster.close();
      // Keep-alive connections with no request in flight must not hold the process open.
      for (const socket of sockets) socket.destroy();
      await closed;
      store.close();
      logger.info({ event: 'stopped' }, 'stopped');
    },
  };
}
