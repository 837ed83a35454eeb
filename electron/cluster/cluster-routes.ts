import { timingSafeEqual } from 'node:crypto';
import { Router, type Request } from 'express';
import { PhotoRelayError } from '../../shared/errors.ts';
import type { PhotoStore } from '../store/photo-store.ts';

/** The header relays and workers show each other: the event's secret, kept in Redis. */
export const CLUSTER_SECRET_HEADER = 'x-photo-relay-cluster';

function sameSecret(given: string | undefined, secret: string | undefined): boolean {
  if (!given || !secret) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * What the other machines of the event fetch from this relay: the originals of the photos it
 * accepted (for the workers) and their cut-outs (for the other relays' walls). Only with the
 * event's secret, which only processes holding REDIS_URL can read; everyone else gets 404, as
 * if the routes did not exist.
 */
export function clusterRouter(store: PhotoStore, secret: () => string | undefined): Router {
  const router = Router();
  const ownPhoto = (req: Request) => {
    if (!sameSecret(req.get(CLUSTER_SECRET_HEADER), secret()))
      throw new PhotoRelayError('E_NOT_FOUND');
    const record = store.get(String(req.params.id));
    if (!record || record.origin) throw new PhotoRelayError('E_NOT_FOUND');
    return record;
  };
  router.get('/cluster/photos/:id/original', (req, res) => {
    const record = ownPhoto(req);
    res.setHeader('Cache-Control', 'no-store');
    res.sendFile(store.originalPath(record.id, record.inputFormat));
  });
  router.get('/cluster/photos/:id/cutout', (req, res) => {
    const record = ownPhoto(req);
    if (record.status !== 'done') throw new PhotoRelayError('E_NOT_FOUND');
    res.type('png').setHeader('Cache-Control', 'no-store');
    res.sendFile(store.cutoutPath(record.id));
  });
  return router;
}

/** Fetches a cut-out of another relay's photo (what the router above serves). */
export async function fetchClusterFile(
  url: string,
  secret: string | undefined,
  what: string,
): Promise<Buffer> {
  const response = await fetch(url, {
    headers: secret ? { [CLUSTER_SECRET_HEADER]: secret } : {},
    signal: AbortSignal.timeout(30_000),
  });
  if (!response.ok) throw new Error(`${what}: ${url} answered ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}
