/**
 * Every wire shape of a photo, made from the stored record in one place: the original API's list
 * item and message metadata, protocol 2's PhotoEvent, the public detail and the admin view.
 */
import type {
  AdminPhoto,
  OriginalImageMessage,
  PhotoEvent,
  PhotoListItem,
} from '../../shared/protocol.ts';
import type { PhotoRecord } from '../store/photo-store.ts';

/** `GET /api/photos` items: exactly the original API's fields. */
export function listItem(record: PhotoRecord): PhotoListItem {
  const { id, status, timestamp, description, originalFilename, processingTime } = record;
  return { id, status, timestamp, description, originalFilename, processingTime };
}

/** `GET /api/photos/:id`: the list fields plus size and failure. */
export function photoDetail(record: PhotoRecord) {
  return {
    ...listItem(record),
    width: record.width,
    height: record.height,
    error: record.errorCode ? { code: record.errorCode, message: record.errorMessage } : null,
  };
}

/** Protocol 2's description of a photo on the walls. */
export function photoEvent(record: PhotoRecord): PhotoEvent {
  return {
    id: record.id,
    timestamp: record.timestamp,
    description: record.description,
    originalFilename: record.originalFilename,
    processingTime: record.processingTime ?? 0,
    width: record.width ?? 0,
    height: record.height ?? 0,
    cutoutUrl: `/api/photos/${record.id}/cutout`,
    compactUrl: `/api/photos/${record.id}/cutout.webp`,
  };
}

/** The original protocol's `metadata` object, in its field order. */
export function originalMetadata(event: PhotoEvent): OriginalImageMessage['metadata'] {
  return {
    description: event.description,
    processingTime: event.processingTime,
    originalFilename: event.originalFilename,
  };
}

/** The operator's view: the public fields plus moderation, failure and attempts. */
export function adminPhoto(record: PhotoRecord): AdminPhoto {
  return {
    ...listItem(record),
    hidden: record.hidden,
    approved: record.approved,
    width: record.width,
    height: record.height,
    errorCode: record.errorCode,
    errorMessage: record.errorMessage,
    attempts: record.attempts,
  };
}
