import { useCallback, useEffect, useRef, useState } from 'react';
import { randomId } from '../../lib/random-id';
import { allPhotos, deletePhoto, putPhoto, type QueuedPhoto } from './queue-store';
import { backoffMs, sendPhoto } from './send';

export interface QueueView extends QueuedPhoto {
  progress?: number;
  sending?: boolean;
}

const KEEP_DONE = 30;

/**
 * The phone's outbox: photos go into IndexedDB first, then are sent one at a time, retried with
 * backoff (and Retry-After) until the relay takes them, also after a reload.
 */
export function useUploadQueue(pin: string | undefined, onPinRejected: (message: string) => void) {
  const [items, setItems] = useState<QueueView[]>([]);
  const progress = useRef(new Map<string, number>());
  const sending = useRef<string | undefined>(undefined);
  const timer = useRef<number | undefined>(undefined);
  const pinRef = useRef(pin);
  pinRef.current = pin;

  const refresh = useCallback(async () => {
    const photos = await allPhotos();
    setItems(
      photos.map((photo) => ({
        ...photo,
        progress: progress.current.get(photo.key),
        sending: sending.current === photo.key,
      })),
    );
    return photos;
  }, []);

  const pump = useCallback(async () => {
    window.clearTimeout(timer.current);
    const currentPin = pinRef.current;
    if (sending.current || !currentPin) return;
    const photos = await allPhotos();
    const waiting = photos.filter((photo) => photo.state === 'waiting').reverse(); // oldest first
    const now = Date.now();
    const next = waiting.find((photo) => photo.nextAttemptAt <= now);
    if (!next) {
      const soonest = Math.min(...waiting.map((photo) => photo.nextAttemptAt));
      if (Number.isFinite(soonest))
        timer.current = window.setTimeout(() => void pump(), soonest - now);
      return;
    }
    sending.current = next.key;
    progress.current.set(next.key, 0);
    await refresh();
    const outcome = await sendPhoto(
      next.blob!,
      next.name,
      next.description,
      currentPin,
      next.key,
      (fraction) => {
        progress.current.set(next.key, fraction);
        void refresh();
      },
    );
    sending.current = undefined;
    progress.current.delete(next.key);
    if (outcome.kind === 'done') {
      await putPhoto({
        ...next,
        state: 'done',
        photoId: outcome.id,
        blob: undefined,
        error: undefined,
      });
      const done = (await allPhotos()).filter((photo) => photo.state === 'done');
      for (const old of done.slice(KEEP_DONE)) await deletePhoto(old.key);
    } else if (outcome.kind === 'retry') {
      const wait = outcome.afterMs ?? backoffMs(next.attempts);
      await putPhoto({
        ...next,
        attempts: next.attempts + 1,
        nextAttemptAt: Date.now() + wait,
        error: outcome.reason,
      });
    } else if (outcome.kind === 'pin') {
      onPinRejected(outcome.message);
    } else {
      await putPhoto({ ...next, state: 'failed', blob: undefined, error: outcome.code });
    }
    await refresh();
    if (outcome.kind !== 'pin') void pump();
  }, [refresh, onPinRejected]);

  const add = useCallback(
    async (blobs: { blob: Blob; name: string }[], description: string) => {
      for (const { blob, name } of blobs) {
        await putPhoto({
          // Not crypto.randomUUID(): it is missing on plain-HTTP LAN addresses (random-id.ts).
          key: randomId(),
          name,
          description,
          blob,
          previewType: blob.type,
          state: 'waiting',
          attempts: 0,
          nextAttemptAt: 0,
          createdAt: Date.now(),
        });
      }
      await refresh();
      void pump();
    },
    [pump, refresh],
  );

  const remove = useCallback(
    async (key: string) => {
      await deletePhoto(key);
      await refresh();
    },
    [refresh],
  );

  useEffect(() => {
    void refresh().then(() => pump());
    // Back online: try the waiting photos now instead of at their backoff time.
    const retryNow = () => {
      void allPhotos().then(async (photos) => {
        for (const photo of photos) {
          if (photo.state === 'waiting') await putPhoto({ ...photo, nextAttemptAt: 0 });
        }
        await pump();
      });
    };
    window.addEventListener('online', retryNow);
    return () => {
      window.removeEventListener('online', retryNow);
      window.clearTimeout(timer.current);
    };
  }, [pin, pump, refresh]);

  return { items, add, remove };
}
