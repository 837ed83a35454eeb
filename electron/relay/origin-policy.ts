import cors from 'cors';
import type { RequestHandler } from 'express';
import { PhotoRelayError } from '../../shared/errors.ts';

/** Same-origin (the relay's own host) or listed in CORS_ORIGINS. */
export function originAllowed(origin: string, host: string | undefined, extra: string[]): boolean {
  return (
    extra.includes(origin) ||
    (!!host && (origin === `http://${host}` || origin === `https://${host}`))
  );
}

/** CORS for the allowed origins, and no POST from any other web page (CSRF with a learnt PIN). */
export function originPolicy(corsOrigins: string[]): RequestHandler[] {
  return [
    cors((req, callback) => {
      const origin = req.headers.origin;
      callback(null, {
        origin: !!origin && originAllowed(origin, req.headers.host, corsOrigins),
        allowedHeaders: ['Content-Type', 'X-Event-Pin', 'Idempotency-Key'],
      });
    }),
    (req, _res, next) => {
      const origin = req.headers.origin;
      if (req.method === 'POST' && origin && !originAllowed(origin, req.headers.host, corsOrigins))
        throw new PhotoRelayError('E_ORIGIN_FORBIDDEN');
      next();
    },
  ];
}
