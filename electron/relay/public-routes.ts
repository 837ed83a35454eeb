import { Router, type NextFunction, type Request, type Response } from 'express';
import { PhotoRelayError } from '../../shared/errors.ts';
import type { Engine } from '../engine/index.ts';
import { listItem, photoDetail } from '../photos/views.ts';
import type { PhotoRecord } from '../store/photo-store.ts';
import type { PinGuard } from './auth.ts';
import type { Broadcaster } from './broadcaster.ts';
import type { Metrics } from './metrics.ts';
import type { Processor } from './processor.ts';
import { compactCutout, type CompactRenditions } from './renditions.ts';
import { uploadHandler, type UploadDeps } from './upload-route.ts';

export interface PublicDeps extends UploadDeps {
  engine: Engine;
  broadcaster: Broadcaster;
  pins: PinGuard;
  metrics: Metrics;
  baseUrls: () => string[];
  /** The part this process plays among the event's machines (cluster/), for /healthz. */
  health: () => { role: 'relay'; cluster: 'single' | 'cluster'; redis: string | null };
  renditions: CompactRenditions;
}

const PHOTO_ID = /^[0-9a-f-]{36}$/;

const notFound = (id: string) => new PhotoRelayError('E_NOT_FOUND', `No photo with id "${id}".`);

/** A photo by id from a URL, or the catalog's 404 (the operator's lookup: any photo). */
export function findPhoto(
  store: { get(id: string): PhotoRecord | undefined },
  id: string,
): PhotoRecord {
  const record = PHOTO_ID.test(id) ? store.get(id) : undefined;
  if (!record) throw notFound(id);
  return record;
}

/**
 * A photo a guest (PIN or wall credential) may see: only one on the walls (visibility.ts). Any
 * other — hidden, held for approval, failed, still in line — gets exactly the 404 of an id that
 * does not exist, so a guest cannot even tell it is there.
 */
export function findOnWalls(
  store: { getOnWalls(id: string): PhotoRecord | undefined },
  id: string,
): PhotoRecord {
  const record = PHOTO_ID.test(id) ? store.getOnWalls(id) : undefined;
  if (!record) throw notFound(id);
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
      ...deps.health(),
      model: engine.model.id,
      queue: processor.pending,
      displays: broadcaster.counts().display,
      pinRequired: pins.enabled,
    });
  });

  router.post('/upload/', requirePin, uploadHandler(deps));

  // Guests see what the walls see, nothing more: every photo route below answers only for photos
  // on the walls (the store's ON_WALLS_SQL), for the PIN and for a wall's credential alike (a wall
  // reads the list and cut-outs only).
  router.get('/api/photos', requirePinOrWall, (req, res) => {
    const raw = typeof req.query.limit === 'string' ? req.query.limit : '50';
    const limit = /^\d+$/.test(raw) ? Math.min(Math.max(Number(raw), 1), 1000) : NaN;
    if (Number.isNaN(limit))
      throw new PhotoRelayError('E_BAD_OPTION', 'limit must be a whole number from 1 to 1000.');
    res.json(store.listOnWalls(limit).map(listItem));
  });

  router.get('/api/photos/:id', requirePin, (req, res) => {
    res.json(photoDetail(findOnWalls(store, String(req.params.id))));
  });

  router.get('/api/photos/:id/cutout', requirePinOrWall, (req, res) => {
    // Full-size renders are the operator's (GET /admin/api/photos/:id/cutout?size=full).
    if (req.query.size === 'full') throw notFound(String(req.params.id));
    const record = findOnWalls(store, String(req.params.id));
    res.type('png').setHeader('Cache-Control', 'private, max-age=31536000, immutable');
    res.setHeader('Content-Disposition', `inline; filename="${record.id}.png"`);
    res.sendFile(store.cutoutPath(record.id));
  });

  router.get(
    '/api/photos/:id/cutout.webp',
    requirePinOrWall,
    compactCutout(deps.renditions, (id) => findOnWalls(store, id)),
  );

  // Originals (as uploaded, EXIF and GPS included) are the operator's:
  // GET /admin/api/photos/:id/original. The old public path stays, answering 404 for every id.
  router.get('/api/photos/:id/original', requirePin, (req) => {
    throw notFound(String(req.params.id));
  });

  router.get('/metrics', requirePin, async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  return router;
}
