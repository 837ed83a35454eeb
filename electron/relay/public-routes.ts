import { Router, type NextFunction, type Request, type Response } from 'express';
import { PhotoRelayError } from '../../shared/errors.ts';
import type { Engine } from '../engine/index.ts';
import { listItem, photoDetail } from '../photos/views.ts';
import { isOnWalls } from '../photos/visibility.ts';
import type { PhotoRecord } from '../store/photo-store.ts';
import type { PinGuard } from './auth.ts';
import type { Broadcaster } from './broadcaster.ts';
import type { Metrics } from './metrics.ts';
import type { Processor } from './processor.ts';
import { uploadHandler, type UploadDeps } from './upload-route.ts';

export interface PublicDeps extends UploadDeps {
  engine: Engine;
  broadcaster: Broadcaster;
  pins: PinGuard;
  metrics: Metrics;
  baseUrls: () => string[];
}

const PHOTO_ID = /^[0-9a-f-]{36}$/;

/** A photo by id from a URL, or the catalog's 404. */
export function findPhoto(
  store: { get(id: string): PhotoRecord | undefined },
  id: string,
): PhotoRecord {
  const record = PHOTO_ID.test(id) ? store.get(id) : undefined;
  if (!record) throw new PhotoRelayError('E_NOT_FOUND', `No photo with id "${id}".`);
  return record;
}

/** The original API (upload, photos, health) and ours (join, cut-outs, metrics), PIN-guarded. */
export function publicRouter(deps: PublicDeps): Router {
  const { store, engine, broadcaster, pins, metrics } = deps;
  const processor: Processor = deps.processor;
  const router = Router();
  /**
   * The guests' guard: the event PIN, or with `allowWall` a display's own credential instead
   * (the reads a wall makes; uploads and the rest still need the PIN).
   */
  const requireGuest =
    (options: { allowWall?: boolean } = {}) =>
    async (req: Request, _res: Response, next: NextFunction) => {
      await pins.checkGuest(req, options);
      next();
    };
  const requirePin = requireGuest();
  const requirePinOrWall = requireGuest({ allowWall: true });

  router.get('/api/join', requirePin, (_req, res) => {
    res.json({ urls: deps.baseUrls(), pinRequired: pins.enabled });
  });

  router.get('/healthz', (_req, res) => {
    const ready = !deps.stopping();
    res.status(ready ? 200 : 503).json({
      status: ready ? 'ok' : 'stopping',
      model: engine.model.id,
      queue: processor.pending,
      displays: broadcaster.counts().display,
      pinRequired: pins.enabled,
    });
  });

  router.post('/upload/', requirePin, uploadHandler(deps));

  router.get('/api/photos', requirePinOrWall, (req, res) => {
    const raw = typeof req.query.limit === 'string' ? req.query.limit : '50';
    const limit = /^\d+$/.test(raw) ? Math.min(Math.max(Number(raw), 1), 1000) : NaN;
    if (Number.isNaN(limit))
      throw new PhotoRelayError('E_BAD_OPTION', 'limit must be a whole number from 1 to 1000.');
    res.json(store.list(limit).map(listItem));
  });

  router.get('/api/photos/:id', requirePin, (req, res) => {
    res.json(photoDetail(findPhoto(store, String(req.params.id))));
  });

  router.get('/api/photos/:id/cutout', requirePinOrWall, async (req, res) => {
    const record = findPhoto(store, String(req.params.id));
    if (!isOnWalls(record)) {
      throw new PhotoRelayError('E_NOT_FOUND', `Photo ${record.id} has no cut-out to show.`);
    }
    res.type('png').setHeader('Cache-Control', 'private, max-age=31536000, immutable');
    res.setHeader('Content-Disposition', `inline; filename="${record.id}.png"`);
    if (req.query.size === 'full') res.send(await processor.fullCutout(record));
    else res.sendFile(store.cutoutPath(record.id));
  });

  router.get('/api/photos/:id/original', requirePin, (req, res) => {
    const record = findPhoto(store, String(req.params.id));
    res.type(record.inputFormat).setHeader('Cache-Control', 'private, max-age=31536000, immutable');
    res.sendFile(store.originalPath(record.id, record.inputFormat));
  });

  router.get('/metrics', requirePin, async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  return router;
}
