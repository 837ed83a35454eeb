import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express, { Router, type Request, type Response } from 'express';
import { PhotoRelayError } from '../../shared/errors.ts';
import { socketOrigin, wallRelays } from '../../shared/wall-relays.ts';
import { clientAddress, isLoopback } from './auth.ts';

/** Built by Vite into dist/renderer. */
const pagesDir = fileURLToPath(new URL('../../dist/renderer/', import.meta.url));

/**
 * `others`: the origins of the other relays a wall page was told it may move to (`relays=`,
 * shared/wall-relays.ts): it may load cut-outs from them and open its socket to them, nothing else.
 */
function contentSecurityPolicy(host: string | undefined, others: string[] = []): string {
  const sockets = others.map(socketOrigin);
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    ["img-src 'self' blob: data:", ...others].join(' '),
    [
      "connect-src 'self'",
      ...(host ? [`ws://${host}`, `wss://${host}`] : []),
      ...others,
      ...sockets,
    ].join(' '),
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * The `relays=` a wall page was opened with, less its own relay (the first): plain http(s)
 * origins only (shared/wall-relays.ts), so nothing else can enter the policy. Not narrowed to
 * the relays this one knows now: a wall opened before another relay joined must still reach it
 * when this one dies (the page keeps the policy it was given for as long as it stays open).
 */
function wallAlternates(req: Request): string[] {
  const listed = typeof req.query.relays === 'string' ? req.query.relays : undefined;
  return wallRelays(listed, 'http://this-relay.invalid').slice(1);
}

function page(file: string, alternates: (req: Request) => string[] = () => []) {
  return (req: Request, res: Response) => {
    const path = `${pagesDir}${file}`;
    if (!existsSync(path)) {
      throw new PhotoRelayError(
        'E_NOT_FOUND',
        'The pages are not built. Run `npm run build:pages` (npm install does it too).',
      );
    }
    res.setHeader(
      'Content-Security-Policy',
      contentSecurityPolicy(req.headers.host, alternates(req)),
    );
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(path);
  };
}

/** The uploader at /, the wall at /display, the dashboard at /admin (loopback), their assets. */
export function pagesRouter(): Router {
  const router = Router();
  router.get('/', page('pages/uploader/index.html'));
  router.get('/display', page('pages/display/index.html', wallAlternates));
  // The dashboard page is static and holds no secret, but it is only ever useful here.
  const adminPage = page('pages/admin/index.html');
  router.get('/admin', (req, res) => {
    if (!isLoopback(clientAddress(req))) throw new PhotoRelayError('E_ADMIN_ONLY');
    adminPage(req, res);
  });
  router.use(
    '/assets',
    express.static(`${pagesDir}assets`, { immutable: true, maxAge: '365d', fallthrough: false }),
  );
  return router;
}
