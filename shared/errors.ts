/**
 * The one error catalog shared by the engine, the relay and the pages: a stable code, the HTTP
 * status the relay answers with, and a message a person understands. Clients branch on `code`;
 * people read `message`.
 */
export const ERROR_CATALOG = {
  E_EMPTY_FILE: { status: 400, message: 'The file is empty.' },
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

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ?? ERROR_CATALOG[code].message, options);
    this.name = 'PhotoRelayError';
    this.code = code;
    this.status = ERROR_CATALOG[code].status;
  }

  toBody(): ErrorBody {
    return { status: 'error', message: this.message, code: this.code };
  }
}
