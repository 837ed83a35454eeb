/**
 * The one error catalog shared by the engine, the relay and the pages: a stable code, the HTTP
 * status the relay answers with, and a message a person understands. Clients branch on `code`;
 * people read `message`.
 */
export const ERROR_CATALOG = {
  E_EMPTY_FILE: { status: 400, message: 'The file is empty.' },
  E_BAD_FORM: {
    status: 400,
    message: 'The upload form is invalid: send exactly one file in the field "image".',
  },
  E_DESCRIPTION_TOO_LONG: {
    status: 400,
    message: 'The description is too long (at most 1,000 characters).',
  },
  E_PIN_REQUIRED: {
    status: 401,
    message: 'This relay needs the event PIN (header X-Event-Pin or ?pin=).',
  },
  E_PIN_WRONG: { status: 401, message: 'The event PIN is wrong.' },
  E_ADMIN_ONLY: {
    status: 403,
    message: 'The admin API answers only on this computer, with the admin token.',
  },
  E_ORIGIN_FORBIDDEN: { status: 403, message: 'Requests from this web origin are not allowed.' },
  E_HOST_FORBIDDEN: {
    status: 403,
    message:
      'This relay does not answer to this host name (a protection against DNS rebinding). Open it by its LAN address, or have the operator add the name to ALLOWED_HOSTS.',
  },
  E_BAD_REQUEST: {
    status: 400,
    message: 'The request is malformed (its address or body cannot be read).',
  },
  E_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: 'The request body has a type or character set the relay does not accept.',
  },
  E_RANGE_NOT_SATISFIABLE: { status: 416, message: 'The requested byte range is not in the file.' },
  E_NOT_FOUND: { status: 404, message: 'Not found.' },
  E_PHOTO_DELETED: {
    status: 410,
    message:
      'The operator deleted this photo. It will not be shown; there is no need to send it again.',
  },
  E_IDEMPOTENCY_KEY_INVALID: {
    status: 400,
    message: 'The Idempotency-Key header must be 1–200 visible ASCII characters.',
  },
  E_IDEMPOTENCY_KEY_REUSED: {
    status: 422,
    message:
      'This Idempotency-Key was already used for a different photo. Use a new key for each photo.',
  },
  E_WALL_REVOKED: {
    status: 401,
    message:
      'This display credential is not valid (the operator removed it, or it is unknown). Open the display link with the event PIN again.',
  },
  E_FILE_TOO_LARGE: { status: 413, message: 'The file is too large.' },
  E_RATE_LIMITED: { status: 429, message: 'Too many requests. Wait a moment and try again.' },
  E_UPLOAD_TIMEOUT: {
    status: 408,
    message:
      'The upload stalled or took too long, so the relay stopped waiting for it. Send it again.',
  },
  E_RELAY_BUSY: {
    status: 503,
    message:
      'The relay is serving as many devices as it can right now. Try again in a few seconds.',
  },
  E_STORAGE_FAILED: {
    status: 507,
    message: 'The relay could not store the photo (is the disk full?). Tell the operator.',
  },
  E_DISK_FULL: {
    status: 507,
    message:
      'The relay is out of storage space and cannot take more photos right now. Tell the operator.',
  },
  E_SHUTTING_DOWN: { status: 503, message: 'The relay is shutting down. Try again shortly.' },
  E_BAD_OPTION: { status: 400, message: 'An option has an invalid value.' },
  E_UNSUPPORTED_FORMAT: {
    status: 415,
    message: 'This is not a supported image. Send a JPEG, PNG or WebP photo.',
  },
  E_HEIC_UNSUPPORTED: {
    status: 415,
    message:
      'HEIC/HEIF photos are not supported. Send a JPEG instead (on iPhone: Settings › Camera › Formats › Most Compatible).',
  },
  E_SVG_UNSUPPORTED: {
    status: 415,
    message: 'SVG drawings are not accepted. Send a JPEG, PNG or WebP photo.',
  },
  E_CORRUPT_IMAGE: {
    status: 422,
    message: 'The image is damaged and cannot be read. Take or export the photo again.',
  },
  E_TRUNCATED_IMAGE: {
    status: 422,
    message: 'The image is incomplete (the upload or copy was cut short). Send it again.',
  },
  E_IMAGE_TOO_LARGE: {
    status: 422,
    message: 'The image has too many pixels to process safely.',
  },
  E_QUEUE_FULL: {
    status: 503,
    message: 'The processing queue is full. Try again in a few seconds.',
  },
  E_ENGINE_CRASHED: {
    status: 500,
    message: 'The segmentation worker stopped unexpectedly; it has been restarted.',
  },
  E_ENGINE_STOPPED: { status: 503, message: 'The segmentation engine has been shut down.' },
  E_PROCESSING_FAILED: { status: 500, message: 'Processing the image failed.' },
  E_INTERNAL: {
    status: 500,
    message: 'Something went wrong inside the relay. Try again in a moment.',
  },
  E_MODEL_UNKNOWN: { status: 500, message: 'No such model.' },
  E_MODEL_MISSING: {
    status: 503,
    message: 'The segmentation model is not installed. Run `npx photo-relay models fetch`.',
  },
  E_MODEL_CHECKSUM: {
    status: 500,
    message: 'The model file does not match its published checksum.',
  },
  E_MODEL_LOAD_FAILED: { status: 500, message: 'The segmentation model could not be loaded.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CATALOG, value);
}

/** The JSON body every HTTP error uses (the original API's shape plus `code`). */
export interface ErrorBody {
  status: 'error';
  message: string;
  code: ErrorCode;
}

/**
 * An error with a catalog code. `detail`, when given, replaces the catalog's generic message with
 * a more specific one (e.g. naming the limit that was exceeded); it must stay readable by a person.
 */
export class PhotoRelayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** For 429/503: when the client may try again (sent as Retry-After). */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    code: ErrorCode,
    detail?: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(detail ?? ERROR_CATALOG[code].message, options);
    this.name = 'PhotoRelayError';
    this.code = code;
    this.status = ERROR_CATALOG[code].status;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }

  toBody(): ErrorBody {
    return { status: 'error', message: this.message, code: this.code };
  }
}
