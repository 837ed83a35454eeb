import type { ErrorRequestHandler, Response } from 'express';
import { PhotoRelayError, type ErrorCode } from '../../shared/errors.ts';
import { clientAddress } from './auth.ts';
import { lingerBounds, lingeringClose, type LingerBounds } from './lingering-close.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

/**
 * Headers a route or express.static/res.sendFile set for the file it was about to send: an error
 * must not carry them (a 404 or 416 JSON labelled as a script, or cached as immutable for a year).
 */
const FILE_HEADERS = [
  'Content-Type',
  'Content-Disposition',
  'Cache-Control',
  'ETag',
  'Last-Modified',
  'Accept-Ranges',
];

export function sendError(res: Response, error: PhotoRelayError): void {
  for (const header of FILE_HEADERS) res.removeHeader(header);
  if (error.retryAfterSeconds !== undefined)
    res.setHeader('Retry-After', String(error.retryAfterSeconds));
  res.status(error.status).json(error.toBody());
}

/** The catalog code for a client error's HTTP status; any other 4xx is E_BAD_REQUEST. */
const CLIENT_ERRORS: Partial<Record<number, ErrorCode>> = {
  400: 'E_BAD_REQUEST',
  404: 'E_NOT_FOUND',
  413: 'E_FILE_TOO_LARGE',
  415: 'E_UNSUPPORTED_MEDIA_TYPE',
  416: 'E_RANGE_NOT_SATISFIABLE',
};

/** Plainer words for body-parser's error types (its own messages may quote the body). */
const CLIENT_ERROR_DETAILS: Record<string, string> = {
  'entity.parse.failed': 'The request body is not valid JSON.',
  'request.aborted': 'The request was cut off before its body arrived.',
  'request.size.invalid': 'The request body is shorter or longer than its Content-Length.',
  'encoding.unsupported': 'The request body has a content encoding the relay does not accept.',
  'charset.unsupported': 'The request body has a character set the relay does not accept.',
};

/**
 * Any thrown value as a catalog error. What Express, body-parser and send (express.static,
 * res.sendFile) throw are http-errors: a 4xx `status`/`statusCode` (body-parser adds a `type`)
 * becomes the catalog code for that status, so a malformed URL, invalid JSON, a missing asset or
 * a too large body is answered as the client's mistake, logged at info. Everything else is a bug:
 * E_INTERNAL, not E_PROCESSING_FAILED: that code means "a stored photo failed" and the uploader
 * stops resending on it, which it must not do for a photo the relay never stored.
 */
export function asCatalogError(error: unknown): PhotoRelayError {
  if (error instanceof PhotoRelayError) return error;
  const { status, statusCode, type } = (error ?? {}) as Record<string, unknown>;
  const http = type === 'entity.too.large' ? 413 : typeof status === 'number' ? status : statusCode;
  if (typeof http === 'number' && Number.isInteger(http) && http >= 400 && http < 500) {
    const detail =
      error instanceof URIError
        ? 'The address is malformed (an invalid %-escape).'
        : typeof type === 'string'
          ? CLIENT_ERROR_DETAILS[type]
          : undefined;
    return new PhotoRelayError(CLIENT_ERRORS[http] ?? 'E_BAD_REQUEST', detail, { cause: error });
  }
  return new PhotoRelayError('E_INTERNAL', undefined, { cause: error });
}

/**
 * The one error middleware: catalog errors become their JSON; anything else is a 500. Upload
 * outcomes are counted here, so every refusal is counted once whatever threw it.
 */
export function errorHandler({
  logger,
  metrics,
  linger = lingerBounds(10 * 1024 * 1024),
}: {
  logger: Logger;
  metrics: Metrics;
  /** How much of an unread body is discarded before closing (lingering-close.ts). */
  linger?: LingerBounds;
}) {
  // Express recognises an error handler by its four parameters.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const handler: ErrorRequestHandler = (error: unknown, req, res, _next) => {
    const known = asCatalogError(error);
    metrics.errors.inc({ code: known.code });
    if (req.path.startsWith('/upload')) metrics.countUpload(known.code);
    // A full line or a busy relay is load, not a fault.
    const load = known.code === 'E_QUEUE_FULL' || known.code === 'E_RELAY_BUSY';
    const level = known.status >= 500 && !load ? 'error' : 'info';
    logger[level](
      {
        event: 'request.error',
        code: known.code,
        status: known.status,
        method: req.method,
        path: req.path,
        address: clientAddress(req),
        err: known === error ? undefined : String(error),
      },
      known.message,
    );
    if (res.headersSent) {
      res.end();
      return;
    }
    // A request refused before its body was read (an upload): its last answer on this
    // connection, then the rest of the body is read and discarded (bounded) before closing.
    if (!req.complete) lingeringClose(req, res, linger);
    sendError(res, known);
  };
  return handler;
}
