import type { Request, RequestHandler, Response } from 'express';
import { PhotoRelayError } from '../../shared/errors.ts';
import type { UploadSuccess } from '../../shared/protocol.ts';
import type { RelayConfig } from '../config/relay-config.ts';
import { probeImageFile } from '../engine/image-input.ts';
import { assertFreeDisk } from '../store/disk-guard.ts';
import type { PhotoStore } from '../store/photo-store.ts';
import type { Admission, Reservation } from './admission.ts';
import { clientAddress, type UploadLimiter } from './auth.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { discardUpload, readUploadForm, type UploadForm } from './multipart.ts';
import type { ProcessedPhoto, Processor } from './processor.ts';

export interface UploadDeps {
  config: RelayConfig;
  store: PhotoStore;
  processor: Processor;
  uploads: UploadLimiter;
  /** Concurrent uploads and places in line, per address and in all. */
  admission: Admission;
  logger: Logger;
  metrics: Metrics;
  stopping: () => boolean;
}

/** The IETF httpapi draft's header; our uploader sends its outbox key. */
const KEY_HEADER = 'idempotency-key';
/** Visible ASCII, as the draft's examples (a UUID fits; quotes of a structured string are dropped). */
const KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;

function idempotencyKey(req: Request): string | undefined {
  const raw = req.headers[KEY_HEADER];
  if (raw === undefined) return undefined;
  const key = (Array.isArray(raw) ? raw.join(',') : raw).trim().replace(/^"(.*)"$/, '$1');
  if (!KEY_PATTERN.test(key)) throw new PhotoRelayError('E_IDEMPOTENCY_KEY_INVALID');
  return key;
}

/** Same key, same request: the photo's bytes and its message (hashed while it streamed in). */
function fingerprint(form: UploadForm): string {
  return form.image.hash.copy().update('\0').update(form.description).digest('hex');
}

function answer(res: Response, { record }: ProcessedPhoto): void {
  res.json({
    status: 'success',
    processingTime: record.processingTime ?? 0,
    message: 'Image processed and broadcast successfully',
    id: record.id,
  } satisfies UploadSuccess);
}

/**
 * `POST /upload/`, the original API: answers once the cut-out was broadcast. With an
 * `Idempotency-Key`, a resend within 24 h (the phone timed out, the Wi-Fi dropped, the relay
 * restarted) is answered what the first got, with the same id, and makes no second photo: it
 * waits on the same job if the first is still in line or processing. A key whose first request
 * was refused (nothing stored) is free again.
 */
export function uploadHandler(deps: UploadDeps): RequestHandler {
  const { config, store, processor, uploads, admission, logger, metrics } = deps;
  /** Keys whose first request is between "not seen" and "stored" (the store cannot tell yet). */
  const storing = new Map<string, Promise<void>>();

  /**
   * The photo this key already made (waiting for a concurrent first request to be stored), or
   * the claim on the key for this request: taken in the same tick as the lookup that found the
   * key free, so two waiting resends cannot both go on. `release` ends the claim.
   */
  async function claimKey(
    key: string,
    print: string,
  ): Promise<{ photoId: string } | { release: () => void }> {
    for (;;) {
      const known = store.findUploadKey(key);
      if (known) {
        if (known.fingerprint !== print) throw new PhotoRelayError('E_IDEMPOTENCY_KEY_REUSED');
        return { photoId: known.photoId };
      }
      const first = storing.get(key);
      if (!first) {
        let settle = () => {};
        storing.set(key, new Promise<void>((resolve) => (settle = resolve)));
        return {
          release: () => {
            storing.delete(key);
            settle();
          },
        };
      }
      await first;
    }
  }

  /** Whether this key already made a photo, or its first request is being stored now. */
  const knownKey = (key: string | undefined) =>
    key !== undefined && (storing.has(key) || store.findUploadKey(key) !== undefined);

  return async (req, res) => {
    if (deps.stopping())
      throw new PhotoRelayError('E_SHUTTING_DOWN', undefined, { retryAfterSeconds: 5 });
    const key = idempotencyKey(req);
    const address = clientAddress(req);
    await uploads.take(address);
    // Refused before a byte of the body is read: too many uploads at once, too little room on
    // the disk for this body and every other in flight (a resend streams its body to incoming/
    // too), no place in line for this address (a resend of a known key needs no place; a fresh
    // body holds a tentative one while it arrives, so the next is refused before its body).
    const endUpload = admission.startUpload(address);
    let reservation: Reservation | undefined;
    let form: UploadForm;
    try {
      assertFreeDisk(
        config.dataDir,
        config.minFreeDiskBytes,
        admission.stats().uploading * config.maxUploadBytes,
      );
      if (!knownKey(key)) reservation = admission.reserveLine(address);
      form = await readUploadForm(req, res, {
        maxBytes: config.maxUploadBytes,
        tempPath: () => store.incomingPath(),
        idleMs: config.uploadIdleMs,
        timeoutMs: config.uploadTimeoutMs,
      });
    } catch (error) {
      reservation?.cancel();
      endUpload();
      throw error;
    }
    /**
     * The received file goes. Failing to remove it must not replace the real answer with a 500:
     * it is logged, and swept at the next start.
     */
    const discard = () =>
      discardUpload(form.image).catch((error: unknown) =>
        logger.warn(
          { event: 'upload.discard-failed', file: form.image.path, err: String(error) },
          'could not remove a received upload that was not stored',
        ),
      );
    const receivedAt = performance.now();
    const received = new Date();
    let record;
    let place;
    try {
      const print = key === undefined ? '' : fingerprint(form);
      let release = () => {};
      if (key !== undefined) {
        const claim = await claimKey(key, print);
        if ('photoId' in claim) {
          logger.info({ event: 'upload.repeat', photo: claim.photoId, address }, 'upload resent');
          reservation?.cancel();
          endUpload();
          await discard();
          answer(res, await processor.outcome(claim.photoId));
          metrics.countUpload('ok');
          return;
        }
        release = claim.release;
      }
      try {
        // Cheap checks from the header before anything is stored: nothing we refuse is kept.
        const probed = await probeImageFile(
          form.image.path,
          form.image.head,
          form.image.size,
          config.maxPixels,
        );
        // The tentative place becomes a real one (a key that turned out free after all takes
        // one now).
        place = reservation ? reservation.take() : admission.takePlace(address);
        try {
          record = await store.accept({
            file: form.image.path,
            inputFormat: probed.format,
            description: form.description,
            originalFilename: form.originalFilename,
            receivedAt: received,
            key: key === undefined ? undefined : { key, fingerprint: print },
          });
        } catch (error) {
          place.giveBack();
          throw error;
        }
      } finally {
        release();
      }
    } finally {
      reservation?.cancel();
      endUpload();
      // Not stored (refused, a resend, or a failed move): the received file goes.
      if (!record) await discard();
    }
    logger.info(
      {
        event: 'upload.accepted',
        photo: record.id,
        address,
        bytes: form.image.size,
        format: record.inputFormat,
      },
      'upload accepted',
    );
    try {
      // The engine reads the stored original: nothing of the upload is held in memory meanwhile.
      answer(res, await processor.process(record, { receivedAt, admitted: true }));
    } finally {
      place.leave();
    }
    metrics.countUpload('ok');
  };
}
