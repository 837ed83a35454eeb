import { statfsSync } from 'node:fs';
import { PhotoRelayError } from '../../shared/errors.ts';

export interface DiskSpace {
  /** Bytes an unprivileged process may still write (statfs bavail). */
  freeBytes: number;
  totalBytes: number;
}

/** One statfs per folder per second at most: an upload burst costs nothing. */
const CACHE_MS = 1000;

const cache = new Map<string, { at: number; space: DiskSpace | undefined }>();

/** statfs of the folder's disk, or undefined when it cannot be read (missing folder, no statfs). */
function measure(dir: string): DiskSpace | undefined {
  try {
    const stats = statfsSync(dir);
    return { freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize };
  } catch {
    return undefined;
  }
}

function cached(dir: string): DiskSpace | undefined {
  const now = performance.now();
  const hit = cache.get(dir);
  if (hit && now - hit.at < CACHE_MS) return hit.space;
  const space = measure(dir);
  cache.set(dir, { at: now, space });
  return space;
}

/** Free and total space on the disk holding `dir` (zeros when it cannot be read), cached ~1 s. */
export function diskSpace(dir: string): DiskSpace {
  return cached(dir) ?? { freeBytes: 0, totalBytes: 0 };
}

/**
 * Refuses with 507 E_DISK_FULL while the disk holding `dir` has less than `minFreeBytes` free
 * once `inFlightBytes` are set aside, so photos stop coming in before the disk is full (SQLite,
 * the originals and the cut-outs all need room). `inFlightBytes` is what the bodies being
 * received may still write (uploads in flight × MAX_UPLOAD_SIZE): the figure is cached for a
 * second, and 64 bodies of 10 MB can pass one reading of it. 0 turns the guard off. A disk
 * whose space cannot be read is not refused here: the write itself then fails with
 * E_STORAGE_FAILED.
 */
export function assertFreeDisk(dir: string, minFreeBytes: number, inFlightBytes = 0): void {
  if (minFreeBytes <= 0) return;
  const space = cached(dir);
  if (space && space.freeBytes - inFlightBytes < minFreeBytes)
    throw new PhotoRelayError('E_DISK_FULL');
}

/** Forgets the cached figures (tests that change the disk's state mid-run). */
export function forgetDiskSpace(): void {
  cache.clear();
}
