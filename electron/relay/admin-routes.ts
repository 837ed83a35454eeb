import express, { Router, type Request } from 'express';
import archiver from 'archiver';
import { z } from 'zod';
import { PhotoRelayError } from '../../shared/errors.ts';
import type {
  AdminMetrics,
  AdminOverview,
  AdminPhoto,
  RelaySettings,
} from '../../shared/protocol.ts';
import { getModelSpec, modelIds } from '../models/manifest.ts';
import { checkModel } from '../models/model-files.ts';
import { identifyFormat, probeImage } from '../engine/image-input.ts';
import type { BackgroundImage } from './background-image.ts';
import type { RelayConfig } from '../config/relay-config.ts';
import type { Engine } from '../engine/index.ts';
import { listItem, type PhotoRecord, type PhotoStore } from '../store/photo-store.ts';
import { checkAdmin, type PinGuard } from './auth.ts';
import type { Broadcaster } from './broadcaster.ts';
import type { Processor } from './processor.ts';

export interface AdminDeps {
  config: RelayConfig;
  store: PhotoStore;
  engine: Engine;
  broadcaster: Broadcaster;
  processor: Processor;
  pins: PinGuard;
  backgroundImage: BackgroundImage;
  /** LAN base URLs of the relay (http://address:port). */
  baseUrls: () => string[];
  uploadCounts: () => { ok: number; failed: number; byCode: Record<string, number> };
}

const percentile = (values: number[], p: number): number | null => {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

const settingsSchema = z
  .object({
    approvalMode: z.boolean(),
    background: z
      .string()
      .regex(/^(transparent|image|#[0-9a-fA-F]{6})$/, "use 'transparent', 'image' or '#rrggbb'"),
    displayMaxEdge: z.number().int().min(256).max(8192),
    model: z.string().refine((id) => modelIds().includes(id), `one of ${modelIds().join(', ')}`),
  })
  .partial()
  .strict();

/** Settings kept in the store; those absent fall back to the environment's values. */
export function readSettings(store: PhotoStore, config: RelayConfig): RelaySettings {
  return {
    background: store.getSetting('background', 'transparent'),
    displayMaxEdge: store.getSetting('displayMaxEdge', config.displayMaxEdge),
    model: store.getSetting('model', config.model ?? 'u2netp'),
  };
}

function adminPhoto(record: PhotoRecord): AdminPhoto {
  return {
    ...listItem(record),
    hidden: record.hidden,
    approved: record.approved,
    width: record.width,
    height: record.height,
    errorCode: record.errorCode,
    errorMessage: record.errorMessage,
  };
}

/**
 * The operator's API under /admin/api: loopback only, Host localhost, bearer admin token. The
 * dashboard (desktop window or /admin in a local browser) talks to nothing else.
 */
export function adminRouter(deps: AdminDeps): Router {
  const { config, store, engine, broadcaster, processor } = deps;
  const router = Router();
  router.use((req, _res, next) => {
    checkAdmin(req, config.adminToken);
    next();
  });

  const photo = (req: Request): PhotoRecord => {
    const id = String(req.params.id);
    const record = /^[0-9a-f-]{36}$/.test(id) ? store.get(id) : undefined;
    if (!record) throw new PhotoRelayError('E_NOT_FOUND', `No photo with id "${id}".`);
    return record;
  };

  router.get('/overview', (_req, res) => {
    const bases = deps.baseUrls();
    const pin = deps.pins.current ?? null;
    const query = pin ? `?pin=${encodeURIComponent(pin)}` : '';
    res.json({
      uploaderUrls: bases.map((base) => `${base}/${query}`),
      displayUrls: bases.map((base) => `${base}/display${query}`),
      pin,
      model: engine.model.id,
      approvalMode: store.getSetting('approvalMode', false),
      settings: readSettings(store, config),
      hasBackgroundImage: !!deps.backgroundImage.bytes,
      dataDir: config.dataDir,
    } satisfies AdminOverview);
  });

  /** The image put behind every cut-out when the background setting is "image". */
  router.put(
    '/background-image',
    express.raw({ type: () => true, limit: '20mb' }),
    async (req, res) => {
      const bytes = req.body as Buffer;
      const format = identifyFormat(bytes);
      await probeImage(bytes, config.maxPixels);
      await deps.backgroundImage.set(bytes, format);
      res.json({ format, bytes: bytes.length });
    },
  );

  router.post('/pin/rotate', (_req, res) => {
    if (!deps.pins.enabled)
      throw new PhotoRelayError('E_BAD_OPTION', 'The PIN check is off (EVENT_PIN=off).');
    res.json({ pin: deps.pins.rotate() });
  });

  router.get('/metrics', (_req, res) => {
    const memory = process.memoryUsage();
    res.json({
      connections: broadcaster.counts(),
      queue: { pending: processor.pending, limit: config.queueSize },
      uploads: deps.uploadCounts(),
      processingMs: {
        count: processor.recent.length,
        p50: percentile(processor.recent, 50),
        p95: percentile(processor.recent, 95),
      },
      memory: { rss: memory.rss, heapUsed: memory.heapUsed },
      uptimeSeconds: process.uptime(),
      model: engine.model.id,
    } satisfies AdminMetrics);
  });

  router.get('/clients', (_req, res) => {
    res.json(broadcaster.list());
  });
  router.delete('/clients/:id', (req, res) => {
    if (!broadcaster.disconnect(req.params.id)) throw new PhotoRelayError('E_NOT_FOUND');
    res.status(204).end();
  });

  router.get('/photos', (req, res) => {
    const limit = Math.min(Math.max(Number(req.query.limit) || 100, 1), 1000);
    res.json(store.list(limit).map(adminPhoto));
  });
  router.get('/photos/:id/cutout', (req, res) => {
    const record = photo(req);
    if (record.status !== 'done') throw new PhotoRelayError('E_NOT_FOUND');
    res.type('png').sendFile(store.cutoutPath(record.id));
  });
  router.post('/photos/:id/hide', async (req, res) => {
    await processor.setHidden(photo(req), true);
    res.json(adminPhoto(store.get(req.params.id)!));
  });
  router.post('/photos/:id/show', async (req, res) => {
    await processor.setHidden(photo(req), false);
    res.json(adminPhoto(store.get(req.params.id)!));
  });
  router.post('/photos/:id/approve', async (req, res) => {
    await processor.approve(photo(req));
    res.json(adminPhoto(store.get(req.params.id)!));
  });
  router.post('/photos/:id/retry', (req, res) => {
    const record = photo(req);
    if (record.status !== 'failed') {
      throw new PhotoRelayError(
        'E_BAD_OPTION',
        `Only failed photos can be retried (this one is ${record.status}).`,
      );
    }
    processor.retry(record);
    res.status(202).json(adminPhoto(store.get(record.id)!));
  });
  router.delete('/photos/:id', async (req, res) => {
    await processor.remove(photo(req));
    res.status(204).end();
  });

  router.put('/settings', async (req, res) => {
    const parsed = settingsSchema.safeParse(req.body);
    if (!parsed.success) {
      throw new PhotoRelayError(
        'E_BAD_OPTION',
        `Invalid settings: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}.`,
      );
    }
    if (parsed.data.model !== undefined) {
      const status = await checkModel(config.modelsDir, getModelSpec(parsed.data.model), false);
      if (status.state !== 'ok') {
        throw new PhotoRelayError(
          'E_MODEL_MISSING',
          `Model "${parsed.data.model}" is not installed in ${config.modelsDir}; install it first (photo-relay models install --from DIR).`,
        );
      }
    }
    if (parsed.data.background === 'image' && !deps.backgroundImage.bytes) {
      throw new PhotoRelayError(
        'E_BAD_OPTION',
        'Upload a background image first (PUT /admin/api/background-image).',
      );
    }
    for (const [key, value] of Object.entries(parsed.data)) {
      store.setSetting(key, value);
    }
    res.json({
      approvalMode: store.getSetting('approvalMode', false),
      ...readSettings(store, config),
    });
  });

  /** Every photo: cut-outs and originals, streamed as a zip (nothing held in memory). */
  router.get('/export.zip', (_req, res) => {
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
    res.attachment(`photo-relay-${stamp}.zip`);
    const zip = archiver('zip', { zlib: { level: 1 } });
    zip.on('error', () => res.destroy());
    zip.pipe(res);
    const records = store.list(100_000);
    for (const record of records) {
      const extension = record.inputFormat === 'jpeg' ? 'jpg' : record.inputFormat;
      zip.file(store.originalPath(record.id, record.inputFormat), {
        name: `originals/${record.id}.${extension}`,
      });
      if (record.status === 'done')
        zip.file(store.cutoutPath(record.id), { name: `cutouts/${record.id}.png` });
    }
    zip.append(JSON.stringify(records.map(adminPhoto), null, 2), { name: 'photos.json' });
    void zip.finalize();
  });

  return router;
}
