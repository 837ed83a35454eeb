import type { ErrorRequestHandler, Response } from 'express';
import { PhotoRelayError } from '../../shared/errors.ts';
import { clientAddress } from './auth.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

export function sendError(res: Response, error: PhotoRelayError): void {
  if (error.retryAfterSeconds !== undefined)
    res.setHeader('Retry-After', String(error.retryAfterSeconds));
  res.status(error.status).json(error.toBody());
}

/**
 * Any thrown value as a catalog error (what Express or body-parser threw, or a bug). A bug is
 * E_INTERNAL, not E_PROCESSING_FAILED: that code means "a stored photo failed" and the uploader
 * stops resending on it, which it must not do for a photo the relay never stored.
 */
export function asCatalogError(error: unknown): PhotoRelayError {
  if (error instanceof PhotoRelayError) return error;
  if ((error as { type?: string }).type === 'entity.too.large')
    return new PhotoRelayError('E_FILE_TOO_LARGE');
  return new PhotoRelayError('E_INTERNAL', undefined, { cause: error });
}

/**
 * The one error middleware: catalog errors become their JSON; anything else is a 500. Upload
 * outcomes are counted here, so every refusal is counted once whatever threw it.
 */
export function errorHandler({ logger, metrics }: { logger: Logger; metrics: Metrics }) {
  // Express recognises an error handler by its four parameters.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const handler: ErrorRequestHandler = (error: unknown, req, res, _next) => {
    const known = asCatalogError(error);
    metrics.errors.inc({ code: known.code });
    if (req.path.startsWith('/upload')) metrics.countUpload(known.code);
    const level = known.status >= 500 && known.code !== 'E_QUEUE_FULL' ? 'error' : 'info';
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
    // An upload refused before its body was read: close so the client stops sending.
    if (!req.complete) res.setHeader('Connection', 'close');
    sendError(res, known);
  };
  return handler;
}
