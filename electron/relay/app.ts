import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import cors from 'cors';
import express, { type NextFunction, type Request, type Response } from 'express';
import { WebSocketServer } from 'ws';
import { PhotoRelayError } from '../../shared/errors.ts';
import {
  HISTORY_ON_CONNECT,
  PROTOCOL_V2,
  type ClientRole,
  type UploadSuccess,
} from '../../shared/protocol.ts';
import type { RelayConfig } from '../config/relay-config.ts';
import { createEngine, type Engine } from '../engine/index.ts';
import { identifyFormat, probeImage } from '../engine/image-input.ts';
import { listItem, PhotoStore } from '../store/photo-store.ts';
import { clientAddress, isLoopback, PinGuard, UploadLimiter } from './auth.ts';
import { adminRouter, readSettings } from './admin-routes.ts';
import { BackgroundImage } from './background-image.ts';
import { Broadcaster } from './broadcaster.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { readUploadForm } from './multipart.ts';
import { reachableHosts } from './network.ts';
import { photoEvent, Processor } from './processor.ts';

export interface Relay {
  readonly config: RelayConfig;
  readonly server: http.Server;
  readonly engine: Engine;
  readonly store: PhotoStore;
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

const ROLES: ClientRole[] = ['display', 'uploader', 'dashboard'];

function sendError(res: Response, error: PhotoRelayError): void {
  if (error.retryAfterSeconds !== undefined)
    res.setHeader('Retry-After', String(error.retryAfterSeconds));
  res.status(error.status).json(error.toBody());
}

/** Same-origin (the relay's own host) or listed in CORS_ORIGINS. */
function originAllowed(origin: string, host: string | undefined, extra: string[]): boolean {
  return (
    extra.includes(origin) ||
    (!!host && (origin === `http://${host}` || origin === `https://${host}`))
  );
}

/**
 * Builds the relay (Express app + WebSocket server) without listening, so `npm run serve`, the
 * tests and the desktop shell all start the same thing.
 */
export async function createRelay(
  config: RelayConfig,
  options: { logger?: Logger } = {},
): Promise<Relay> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const metrics = createMetrics();
  const store = new PhotoStore(config.dataDir);
  const backgroundImage = new BackgroundImage(config.dataDir);
  const engine = await createEngine({
    // The operator's model choice (dashboard) applies from the next start; MODEL overrides it.
    model: config.model ?? store.getSetting<string | undefined>('model', undefined),
    modelsDir: config.modelsDir,
    threads: config.threads,
    maxPixels: config.maxPixels,
    // The relay admits at most queueSize photos itself (503 beyond): the engine never refuses.
    maxQueue: 100_000,
  });
  const broadcaster = new Broadcaster({
    logger,
    metrics,
    heartbeatMs: config.heartbeatMs,
    maxBufferedBytes: config.maxBufferedBytes,
    history: () => store.listShown(HISTORY_ON_CONNECT).map(photoEvent),
  });
  const processor = new Processor({
    store,
    engine,
    broadcaster,
    logger,
    metrics,
    displayOptions: () => {
      const { background, displayMaxEdge } = readSettings(store, config);
      if (background === 'image' && backgroundImage.bytes) {
        return { maxEdge: displayMaxEdge, backgroundImage: backgroundImage.bytes };
      }
      return {
        maxEdge: displayMaxEdge,
        background: background.startsWith('#') ? background : undefined,
      };
    },
    approvalMode: () => store.getSetting('approvalMode', false),
  });
  const pins = new PinGuard(config.eventPin);
  const uploads = new UploadLimiter(config.uploadsPerMinute);
  let stopping = false;
  const uploadCounts = { ok: 0, failed: 0, byCode: {} as Record<string, number> };

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(
    cors((req, callback) => {
      const origin = req.headers.origin;
      callback(null, {
        origin: !!origin && originAllowed(origin, req.headers.host, config.corsOrigins),
        allowedHeaders: ['Content-Type', 'X-Event-Pin'],
      });
    }),
  );
  // A page on another origin must not post uploads with a PIN it learnt (CSRF): refuse outright.
  app.use((req, _res, next) => {
    const origin = req.headers.origin;
    if (
      req.method === 'POST' &&
      origin &&
      !originAllowed(origin, req.headers.host, config.corsOrigins)
    ) {
      throw new PhotoRelayError('E_ORIGIN_FORBIDDEN');
    }
    next();
  });

  const requirePin = async (req: Request, _res: Response, next: NextFunction) => {
    await pins.check(req);
    next();
  };

  // The pages: built by Vite into dist/renderer and served from here, under a strict CSP.
  const pagesDir = fileURLToPath(new URL('../../dist/renderer/', import.meta.url));
  const contentSecurityPolicy = (host: string | undefined) =>
    [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "img-src 'self' blob: data:",
      `connect-src 'self'${host ? ` ws://${host} wss://${host}` : ''}`,
      "object-src 'none'",
      "base-uri 'none'",
      "form-action 'self'",
      "frame-ancestors 'none'",
    ].join('; ');
  const page = (file: string) => (req: Request, res: Response) => {
    const path = `${pagesDir}${file}`;
    if (!existsSync(path)) {
      throw new PhotoRelayError(
        'E_NOT_FOUND',
        'The pages are not built. Run `npm run build:pages` (npm install does it too).',
      );
    }
    res.setHeader('Content-Security-Policy', contentSecurityPolicy(req.headers.host));
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(path);
  };
  app.get('/', page('pages/uploader/index.html'));
  app.get('/display', page('pages/display/index.html'));
  // The dashboard page is static and holds no secret, but it is only ever useful here.
  const adminPage = page('pages/admin/index.html');
  app.get('/admin', (req, res) => {
    if (!isLoopback(clientAddress(req))) throw new PhotoRelayError('E_ADMIN_ONLY');
    adminPage(req, res);
  });
  app.use(
    '/assets',
    express.static(`${pagesDir}assets`, { immutable: true, maxAge: '365d', fallthrough: false }),
  );

  const baseUrls = () => {
    const port = (server.address() as AddressInfo | null)?.port;
    return reachableHosts(config.host).map((host) => `http://${host}:${port}`);
  };

  app.get('/api/join', requirePin, (_req, res) => {
    res.json({ urls: baseUrls(), pinRequired: pins.enabled });
  });

  app.get('/healthz', (_req, res) => {
    const ready = !stopping;
    res.status(ready ? 200 : 503).json({
      status: ready ? 'ok' : 'stopping',
      model: engine.model.id,
      queue: processor.pending,
      displays: broadcaster.counts().display,
      pinRequired: pins.enabled,
    });
  });

  app.post('/upload/', requirePin, async (req, res) => {
    if (stopping) throw new PhotoRelayError('E_SHUTTING_DOWN', undefined, { retryAfterSeconds: 5 });
    const address = clientAddress(req);
    await uploads.take(address);
    const form = await readUploadForm(req, config.maxUploadBytes);
    const receivedAt = performance.now();
    const received = new Date();
    // Cheap checks from the header before anything is stored: nothing we refuse is kept.
    const inputFormat = identifyFormat(form.image);
    await probeImage(form.image, config.maxPixels);
    if (!processor.admit(config.queueSize)) {
      throw new PhotoRelayError(
        'E_QUEUE_FULL',
        `The relay is busy (${processor.pending} photos in line). It will take yours in a few seconds.`,
        { retryAfterSeconds: 5 },
      );
    }
    let record;
    try {
      record = await store.accept({
        bytes: form.image,
        inputFormat,
        description: form.description,
        originalFilename: form.originalFilename,
        receivedAt: received,
      });
    } catch (error) {
      processor.release();
      throw error;
    }
    logger.info(
      {
        event: 'upload.accepted',
        photo: record.id,
        address,
        bytes: form.image.length,
        format: inputFormat,
      },
      'upload accepted',
    );
    const { record: done } = await processor.process(record, form.image, receivedAt, true);
    metrics.uploads.inc({ outcome: 'ok' });
    uploadCounts.ok++;
    res.json({
      status: 'success',
      processingTime: done.processingTime ?? 0,
      message: 'Image processed and broadcast successfully',
      id: done.id,
    } satisfies UploadSuccess);
  });

  app.get('/api/photos', requirePin, (req, res) => {
    const raw = typeof req.query.limit === 'string' ? req.query.limit : '50';
    const limit = /^\d+$/.test(raw) ? Math.min(Math.max(Number(raw), 1), 1000) : NaN;
    if (Number.isNaN(limit))
      throw new PhotoRelayError('E_BAD_OPTION', 'limit must be a whole number from 1 to 1000.');
    res.json(store.list(limit).map(listItem));
  });

  const findPhoto = (id: string) => {
    const record = /^[0-9a-f-]{36}$/.test(id) ? store.get(id) : undefined;
    if (!record) throw new PhotoRelayError('E_NOT_FOUND', `No photo with id "${id}".`);
    return record;
  };

  app.get('/api/photos/:id', requirePin, (req, res) => {
    const { errorCode, errorMessage, width, height, ...item } = findPhoto(String(req.params.id));
    res.json({
      ...item,
      width,
      height,
      error: errorCode ? { code: errorCode, message: errorMessage } : null,
    });
  });

  app.get('/api/photos/:id/cutout', requirePin, async (req, res) => {
    const record = findPhoto(String(req.params.id));
    if (record.status !== 'done' || record.hidden || !record.approved) {
      throw new PhotoRelayError('E_NOT_FOUND', `Photo ${record.id} has no cut-out to show.`);
    }
    res.type('png').setHeader('Cache-Control', 'private, max-age=31536000, immutable');
    res.setHeader('Content-Disposition', `inline; filename="${record.id}.png"`);
    if (req.query.size === 'full') res.send(await processor.fullCutout(record));
    else res.sendFile(store.cutoutPath(record.id));
  });

  app.get('/api/photos/:id/original', requirePin, (req, res) => {
    const record = findPhoto(String(req.params.id));
    res.type(record.inputFormat).setHeader('Cache-Control', 'private, max-age=31536000, immutable');
    res.sendFile(store.originalPath(record.id, record.inputFormat));
  });

  app.get('/metrics', requirePin, async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.use(
    '/admin/api',
    express.json({ limit: '16kb' }),
    adminRouter({
      config,
      store,
      engine,
      broadcaster,
      processor,
      baseUrls,
      uploadCounts: () => ({ ...uploadCounts, byCode: { ...uploadCounts.byCode } }),
      pins,
      backgroundImage,
    }),
  );

  app.use(() => {
    throw new PhotoRelayError('E_NOT_FOUND');
  });

  // The one error middleware: catalog errors become their JSON; anything else is a 500.
  // Express recognises an error handler by its four parameters.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const known =
      error instanceof PhotoRelayError
        ? error
        : (error as { type?: string }).type === 'entity.too.large'
          ? new PhotoRelayError('E_FILE_TOO_LARGE')
          : new PhotoRelayError('E_PROCESSING_FAILED', undefined, { cause: error });
    metrics.errors.inc({ code: known.code });
    if (req.path.startsWith('/upload')) {
      metrics.uploads.inc({ outcome: known.code });
      uploadCounts.failed++;
      uploadCounts.byCode[known.code] = (uploadCounts.byCode[known.code] ?? 0) + 1;
    }
    const level = known.status >= 500 && known.code !== 'E_QUEUE_FULL' ? 'error' : 'info';
    logger[level](
      {
        event: 'request.error',
        code: known.code,
        status: known.status,
        method: req.method,
        path: req.path,
        address: clientAddress(req),
        err: known === error ? undefined : String(error),
      },
      known.message,
    );
    if (res.headersSent) {
      res.end();
      return;
    }
    // An upload refused before its body was read: close so the client stops sending.
    if (!req.complete) res.setHeader('Connection', 'close');
    sendError(res, known);
  });

  const server = http.createServer(app);
  server.keepAliveTimeout = 5000;
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: 4 * 1024 });
  wss.on('error', (error) =>
    logger.error({ event: 'ws.error', err: error.message }, 'WebSocket server error'),
  );
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => undefined);
    const refuse = (error: PhotoRelayError) => {
      metrics.errors.inc({ code: error.code });
      const body = JSON.stringify(error.toBody());
      const retry = error.retryAfterSeconds ? `Retry-After: ${error.retryAfterSeconds}\r\n` : '';
      socket.end(
        `HTTP/1.1 ${error.status} ${http.STATUS_CODES[error.status]}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n${retry}Connection: close\r\n\r\n${body}`,
      );
    };
    const url = new URL(req.url ?? '/', 'http://relay');
    if (url.pathname !== '/ws') return refuse(new PhotoRelayError('E_NOT_FOUND'));
    if (stopping) return refuse(new PhotoRelayError('E_SHUTTING_DOWN'));
    const origin = req.headers.origin;
    if (origin && !originAllowed(origin, req.headers.host, config.corsOrigins)) {
      return refuse(new PhotoRelayError('E_ORIGIN_FORBIDDEN'));
    }
    void pins.check(req).then(
      () => {
        const protocol = url.searchParams.get('protocol') === String(PROTOCOL_V2) ? 2 : 1;
        const requested = url.searchParams.get('role') as ClientRole | null;
        const role = requested && ROLES.includes(requested) ? requested : 'display';
        wss.handleUpgrade(req, socket, head, (ws) => {
          broadcaster.attach(ws, role, protocol, clientAddress(req), req.headers['user-agent']);
        });
      },
      (error: unknown) => {
        refuse(
          error instanceof PhotoRelayError ? error : new PhotoRelayError('E_PROCESSING_FAILED'),
        );
      },
    );
  });

  let perfTimer: NodeJS.Timeout | undefined;

  return {
    config,
    server,
    engine,
    store,
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
      const resumed = processor.resumeUnfinished();
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
        { event: 'listening', url, port, model: engine.model.id, resumed },
        'relay listening',
      );
      return { port, url };
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      logger.info({ event: 'stopping', inFlight: processor.pending }, 'stopping');
      clearInterval(perfTimer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Finish what is in line if that is quick; anything left stays queued on disk and is
      // processed at the next start.
      let graceTimer: NodeJS.Timeout | undefined;
      await Promise.race([
        processor.drain(),
        new Promise((resolve) => (graceTimer = setTimeout(resolve, config.shutdownGraceMs))),
      ]);
      clearTimeout(graceTimer);
      await engine.dispose();
      await processor.drain();
      await broadcaster.close();
      // Keep-alive connections with no request in flight must not hold the process open.
      for (const socket of sockets) socket.destroy();
      await closed;
      store.close();
      logger.info({ event: 'stopped' }, 'stopped');
    },
  };
}
