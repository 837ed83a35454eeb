import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express, { Router, type Request, type Response } from 'express';
import { PhotoRelayError } from '../../shared/errors.ts';
import { clientAddress, isLoopback } from './auth.ts';

/** Built by Vite into dist/renderer. */
const pagesDir = fileURLToPath(new URL('../../dist/renderer/', import.meta.url));

function contentSecurityPolicy(host: string | undefined): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    `connect-src 'self'${host ? ` ws://${host} wss://${host}` : ''}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function page(file: string) {
  return (req: Request, res: Response) => {
    const path = `${pagesDir}${file}`;
    if (!existsSync(path)) {
      throw new PhotoRelayError(
        'E_NOT_FOUND',
        'The pages are not built. Run `npm run build:pages` (npm install does it too).',
      );
    }
    res.setHeader('Content-Security-Policy', contentSecurityPolicy(req.headers.host));
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
  router.get('/display', page('pages/display/index.html'));
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
