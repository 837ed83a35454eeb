/**
 * The relays a wall may move between (`/display?pin=…&relays=http://10.0.0.3:8000,…`): the
 * relay that served the page first, then the listed ones in order. Read by the wall page (where
 * to connect next when its relay dies) and by the relay serving it (its Content-Security-Policy
 * lets the page reach exactly these and no other origin).
 */

/** More than this many alternates is not a layout anyone runs; the rest are ignored. */
export const MAX_WALL_RELAYS = 8;

/** `here` first, then each listed http(s) origin once; anything else in the list is ignored. */
export function wallRelays(relaysParam: string | null | undefined, here: string): string[] {
  const origins = [here];
  for (const item of (relaysParam ?? '').split(',')) {
    const origin = httpOrigin(item.trim());
    if (origin && !origins.includes(origin)) origins.push(origin);
    if (origins.length > MAX_WALL_RELAYS) break;
  }
  return origins;
}

const HOST = /^([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])$/i;

/**
 * The origin of an http(s) URL with a plain host name or address, else undefined: the one rule
 * for relay addresses (a wall's `relays=`, the relays' own page origins shared through Redis).
 */
export function httpOrigin(text: string): string | undefined {
  if (!text) return undefined;
  try {
    const url = new URL(text);
    const web = url.protocol === 'http:' || url.protocol === 'https:';
    // A plain host name or address only: the origin goes into a Content-Security-Policy, where
    // `*`, `;` or `,` would mean something else.
    return web && HOST.test(url.hostname) ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

/** The WebSocket origin of a relay's http(s) origin (`http://a:8000` → `ws://a:8000`). */
export function socketOrigin(origin: string): string {
  return origin.replace(/^http/, 'ws');
}
