import { randomBytes } from 'node:crypto';
import express, { Router, type Request, type Response } from 'express';
import archiver from 'archiver';
import { PhotoRelayError } from '../../shared/errors.ts';
import type { ClusterStatus } from '../../shared/cluster.ts';
import { CLOSE_CODES, type ExportLink } from '../../shared/protocol.ts';
import type { RelayConfig } from '../config/relay-config.ts';
import { identifyFormat, probeImage } from '../engine/image-input.ts';
import type { Settings } from '../photos/settings.ts';
import { adminPhoto } from '../photos/views.ts';
import { fileExtension, type PhotoRecord, type PhotoStore } from '../store/photo-store.ts';
import { checkAdmin, isLocalRequest } from './auth.ts';
import type { BackgroundImage } from './background-image.ts';
import type { Broadcaster } from './broadcaster.ts';
import type { DashboardFeed } from './dashboard-feed.ts';
import type { OperatorView } from './operator-view.ts';
import type { Processor } from './processor.ts';
import { findPhoto } from './public-routes.ts';
import type { WallCredentials } from './wall-credentials.ts';

export interface AdminDeps {
  config: RelayConfig;
  store: PhotoStore;
  settings: Settings;
  broadcaster: Broadcaster;
  processor: Processor;
  backgroundImage: BackgroundImage;
  view: OperatorView;
  feed: DashboardFeed;
  walls: WallCredentials;
  /** The machines of this event (cluster/): just this relay without REDIS_URL. */
  cluster: { status(): Promise<ClusterStatus> };
}

const EXPORT_TICKET_MS = 60_000;

/** Another relay's photo (several machines): only its cut-out is here. */
function refuseIfElsewhere(record: PhotoRecord): void {
  if (record.origin) {
    throw new PhotoRelayError(
      'E_NOT_FOUND',
      `Photo ${record.id} was accepted by another relay (${record.origin}): its original and full-size render are there.`,
    );
  }
}

/** Every photo, cut-outs and originals, streamed as a zip (nothing held in memory). */
function streamExport(store: PhotoStore, res: Response): void {
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
  res.attachment(`photo-relay-${stamp}.zip`);
  const zip = archiver('zip', { zlib: { level: 1 } });
  zip.on('error', () => res.destroy());
  zip.pipe(res);
  const records = store.list(1_000_000);
  for (const record of records) {
    // Another relay's photo: its original is on that relay (its export has it).
    if (!record.origin)
      zip.file(store.originalPath(record.id, record.inputFormat), {
        name: `originals/${record.id}.${fileExtension(record.inputFormat)}`,
      });
    if (record.status === 'done')
      zip.file(store.cutoutPath(record.id), { name: `cutouts/${record.id}.png` });
  }
  zip.append(JSON.stringify(records.map(adminPhoto), null, 2), { name: 'photos.json' });
  void zip.finalize();
}

/**
 * Single-use, short-lived tickets for `GET /admin/export.zip?ticket=…`: a browser download
 * cannot carry the bearer token, and the zip must stream to disk, not into the page.
 */
class ExportTickets {
  private readonly tickets = new Map<string, number>();

  issue(): string {
    const ticket = randomBytes(24).toString('base64url');
    this.tickets.set(ticket, Date.now() + EXPORT_TICKET_MS);
    return ticket;
  }

  redeem(ticket: string): boolean {
    const expires = this.tickets.get(ticket);
    this.tickets.delete(ticket);
    for (const [other, at] of this.tickets) if (at < Date.now()) this.tickets.delete(other);
    return expires !== undefined && expires >= Date.now();
  }
}

/**
 * The operator's API under /admin/api: loopback only, Host localhost, bearer admin token. The
 * dashboard (desktop window or /admin in a local browser) talks to nothing else; its live state
 * arrives over its WebSocket (dashboard-feed.ts).
 */
export function adminRouter(deps: AdminDeps): { api: Router; downloads: Router } {
  const { config, store, settings, broadcaster, processor, view, feed } = deps;
  const tickets = new ExportTickets();
  const api = Router();
  api.use((req, _res, next) => {
    checkAdmin(req, config.adminToken);
    next();
  });

  const photo = (req: Request) => findPhoto(store, String(req.params.id));
  const current = (req: Request) => adminPhoto(findPhoto(store, String(req.params.id)));

  api.get('/overview', (_req, res) => {
    res.json(view.overview());
  });

  /** Relays, workers, the shared queue and Redis, for the dashboard's Machines panel. */
  api.get('/cluster', async (_req, res) => {
    res.json(await deps.cluster.status());
  });

  /** The image put behind every cut-out when the background setting is "image". */
  api.put(
    '/background-image',
    express.raw({ type: () => true, limit: '20mb' }),
    async (req, res) => {
      const bytes = req.body as Buffer;
      if (!Buffer.isBuffer(bytes) || bytes.length === 0) throw new PhotoRelayError('E_EMPTY_FILE');
      const format = identifyFormat(bytes);
      await probeImage(bytes, config.maxPixels);
      await deps.backgroundImage.set(bytes, format);
      feed.overviewChanged();
      res.json({ format, bytes: bytes.length });
    },
  );

  api.use(express.json({ limit: '16kb' }));

  /** After a leak: a new guest PIN; every guest socket opened with the old one is closed. */
  api.post('/pin/rotate', (_req, res) => {
    const pin = settings.rotatePin();
    const closed = broadcaster.closeWhere(
      (credential) => credential.kind === 'pin',
      CLOSE_CODES.pinRotated,
      'the event PIN was changed',
    );
    res.json({ pin, closed });
  });

  api.get('/metrics', (_req, res) => {
    res.json(view.metrics());
  });

  api.get('/clients', (_req, res) => {
    res.json(broadcaster.list());
  });
  api.delete('/clients/:id', (req, res) => {
    if (!broadcaster.disconnect(req.params.id)) throw new PhotoRelayError('E_NOT_FOUND');
    res.status(204).end();
  });

  /** Displays' own credentials (given when they joined with the PIN). */
  api.get('/walls', (_req, res) => {
    res.json(deps.walls.list());
  });
  /** Revoke: the token is refused from now on and the display's sockets are closed (4002). */
  api.delete('/walls/:id', (req, res) => {
    const id = req.params.id;
    if (!deps.walls.revoke(id))
      throw new PhotoRelayError('E_NOT_FOUND', `No wall with id "${id}".`);
    broadcaster.closeWhere(
      (credential) => credential.kind === 'wall' && credential.wallId === id,
      CLOSE_CODES.wallRevoked,
      'this display was removed by the operator',
    );
    feed.clientsChanged();
    res.status(204).end();
  });

  api.get('/photos', (req, res) => {
    const limit = Math.min(Math.max(Number(req.query.limit) || 100, 1), 1000);
    res.json(store.list(limit).map(adminPhoto));
  });
  /** Any done photo's cut-out, hidden or held too; `?size=full` renders it at full resolution. */
  api.get('/photos/:id/cutout', async (req, res) => {
    const record = photo(req);
    if (record.status !== 'done') throw new PhotoRelayError('E_NOT_FOUND');
    res.type('png').setHeader('Cache-Control', 'no-store');
    if (req.query.size === 'full') {
      refuseIfElsewhere(record);
      res.send(await processor.fullCutout(record, { cacheBytes: config.fullRenderCacheBytes }));
    } else res.sendFile(store.cutoutPath(record.id));
  });
  /** The photo as uploaded (EXIF and GPS included): the operator's only. */
  api.get('/photos/:id/original', (req, res) => {
    const record = photo(req);
    refuseIfElsewhere(record);
    res.type(record.inputFormat).setHeader('Cache-Control', 'no-store');
    res.setHeader(
      'Content-Disposition',
      `attachment; filename="${record.id}.${fileExtension(record.inputFormat)}"`,
    );
    res.sendFile(store.originalPath(record.id, record.inputFormat));
  });
  api.post('/photos/:id/hide', async (req, res) => {
    await processor.setHidden(photo(req), true);
    res.json(current(req));
  });
  api.post('/photos/:id/show', async (req, res) => {
    await processor.setHidden(photo(req), false);
    res.json(current(req));
  });
  api.post('/photos/:id/approve', async (req, res) => {
    await processor.approve(photo(req));
    res.json(current(req));
  });
  api.post('/photos/:id/retry', (req, res) => {
    const record = photo(req);
    if (record.status !== 'failed') {
      throw new PhotoRelayError(
        'E_BAD_OPTION',
        `Only failed photos can be retried (this one is ${record.status}).`,
      );
    }
    processor.retry(record);
    res.status(202).json(current(req));
  });
  api.delete('/photos/:id', async (req, res) => {
    await processor.remove(photo(req));
    res.status(204).end();
  });

  api.put('/settings', async (req, res) => {
    const updated = await settings.update(req.body, {
      modelsDir: config.modelsDir,
      hasBackgroundImage: !!deps.backgroundImage.bytes,
    });
    const { approvalMode, background, displayMaxEdge, model, cutoutMode } = updated;
    res.json({ approvalMode, background, displayMaxEdge, model, cutoutMode });
  });

  api.get('/export.zip', (_req, res) => {
    streamExport(store, res);
  });
  api.post('/export-links', (_req, res) => {
    res.json({ url: `/admin/export.zip?ticket=${tickets.issue()}` } satisfies ExportLink);
  });

  // Outside /admin/api: reached by a plain browser download (no bearer), loopback only.
  const downloads = Router();
  downloads.get('/admin/export.zip', (req, res) => {
    const ticket = typeof req.query.ticket === 'string' ? req.query.ticket : '';
    if (!isLocalRequest(req) || !tickets.redeem(ticket)) {
      throw new PhotoRelayError('E_ADMIN_ONLY');
    }
    streamExport(store, res);
  });
  return { api, downloads };
}
