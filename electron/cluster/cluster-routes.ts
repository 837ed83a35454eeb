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
 * event's secret, which only processes holding REDIS_URL can read; a request without it gets
 * 404, as if the routes did not exist (one with another secret: 503, try again).
 */
export function clusterRouter(store: PhotoStore, secret: () => string | undefined): Router {
  const router = Router();
  const ownPhoto = (req: Request) => {
    const given = req.get(CLUSTER_SECRET_HEADER);
    if (!given) throw new PhotoRelayError('E_NOT_FOUND');
    // A machine of the event whose secret differs from ours (one side has not joined since the
    // secret was made again, ours is not read yet): not "no such photo", which would make the
    // other relay give the photo up. Try again shortly.
    if (!sameSecret(given, secret()))
      throw new PhotoRelayError('E_RELAY_BUSY', 'The cluster secret does not match (yet).');
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

/** A file another machine did not give; `status` is its HTTP answer (undefined: none came). */
export class ClusterFetchError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }

  /** The relay answered that it has no such photo (deleted there, or never finished). */
  get gone(): boolean {
    return this.status === 404;
  }
}

/**
 * Fetches a file of a photo from the relay that accepted it (what the router above serves):
 * `file` is `cutout` (for another relay's walls) or `original` (for a worker).
 */
export async function fetchClusterFile(
  relayUrl: string,
  photoId: string,
  file: 'cutout' | 'original',
  secret: string | undefined,
  timeoutMs = 30_000,
): Promise<Buffer> {
  const url = `${relayUrl}/cluster/photos/${encodeURIComponent(photoId)}/${file}`;
  let response: Response;
  try {
    response = await fetch(url, {
      headers: secret ? { [CLUSTER_SECRET_HEADER]: secret } : {},
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new ClusterFetchError(
      `${file} of ${photoId}: ${relayUrl} unreachable (${(error as Error).message})`,
    );
  }
  if (!response.ok)
    throw new ClusterFetchError(
      `${file} of ${photoId}: ${url} answered ${response.status}`,
      response.status,
    );
  return Buffer.from(await response.arrayBuffer());
}
