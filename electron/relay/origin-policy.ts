import os from 'node:os';
import cors from 'cors';
import type { RequestHandler } from 'express';
import { PhotoRelayError } from '../../shared/errors.ts';
import type { RelayConfig } from '../config/relay-config.ts';
import { reachableHosts } from './network.ts';

/** Same-origin (the relay's own host) or listed in CORS_ORIGINS. */
export function originAllowed(origin: string, host: string | undefined, extra: string[]): boolean {
  return (
    extra.includes(origin) ||
    (!!host && (origin === `http://${host}` || origin === `https://${host}`))
  );
}

/**
 * CORS for the allowed origins (CORS_ORIGINS and, in a shared event, the other relays' pages: a
 * wall that moved here asks with its page's origin), and no POST from any other web page (CSRF
 * with a learnt PIN).
 */
export function originPolicy(allowed: () => string[]): RequestHandler[] {
  return [
    cors((req, callback) => {
      const origin = req.headers.origin;
      callback(null, {
        origin: !!origin && originAllowed(origin, req.headers.host, allowed()),
        allowedHeaders: ['Content-Type', 'X-Event-Pin', 'X-Wall-Token', 'Idempotency-Key'],
      });
    }),
    (req, _res, next) => {
      const origin = req.headers.origin;
      if (req.method === 'POST' && origin && !originAllowed(origin, req.headers.host, allowed()))
        throw new PhotoRelayError('E_ORIGIN_FORBIDDEN');
      next();
    },
  ];
}

/** Names this machine always answers to. */
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
/** The LAN addresses are read again after this long (Wi-Fi changes; a syscall per request is not needed). */
const OWN_HOSTS_TTL_MS = 5000;

/** A Host header's name: lower case, without its port or a trailing dot (`[::1]:8000` → `[::1]`). */
export function hostName(host: string): string {
  const lower = host.trim().toLowerCase();
  const name = lower.startsWith('[')
    ? lower.slice(0, lower.indexOf(']') + 1)
    : lower.replace(/:\d*$/, '');
  return name.replace(/\.$/, '');
}

let ownHostsCache: { at: number; listenHost: string; names: Set<string> } | undefined;

/** The relay's own addresses (what reachableHosts gives guests), this machine's name, loopback. */
function ownHosts(listenHost: string): Set<string> {
  const now = Date.now();
  if (ownHostsCache?.listenHost !== listenHost || now - ownHostsCache.at > OWN_HOSTS_TTL_MS) {
    const machine = os.hostname().toLowerCase();
    const names = [...reachableHosts(listenHost), machine, `${machine}.local`, ...LOOPBACK_NAMES];
    ownHostsCache = {
      at: now,
      listenHost,
      names: new Set(
        names.map((name) =>
          name.includes(':') && !name.startsWith('[') ? `[${name}]` : name.toLowerCase(),
        ),
      ),
    };
  }
  return ownHostsCache.names;
}

/**
 * The Host allowlist (DNS rebinding: a web page whose name an attacker points at the relay's
 * address sends its own name as Host): the relay's addresses, `localhost`, `127.0.0.1`, `[::1]`,
 * this machine's name, and ALLOWED_HOSTS, with any port. A request without a Host header is let
 * through: browsers always send one, so a rebinding page cannot make it (and Node refuses HTTP/1.1
 * without one).
 */
export function hostAllowed(
  host: string | undefined,
  config: Pick<RelayConfig, 'host' | 'allowedHosts'>,
): boolean {
  if (host === undefined || host === '') return true;
  const name = hostName(host);
  return config.allowedHosts.includes(name) || ownHosts(config.host).has(name);
}

/** E_HOST_FORBIDDEN, naming the host when it is printable. */
export function hostForbidden(host: string | undefined): PhotoRelayError {
  const name = hostName(host ?? '');
  return /^[\w.:[\]-]{1,100}$/.test(name)
    ? new PhotoRelayError(
        'E_HOST_FORBIDDEN',
        `This relay does not answer to the host name "${name}" (a protection against DNS rebinding). Open it by its LAN address, or have the operator add the name to ALLOWED_HOSTS.`,
      )
    : new PhotoRelayError('E_HOST_FORBIDDEN');
}

/** Every HTTP route: only Host names on the allowlist (hostAllowed). */
export function hostPolicy(config: Pick<RelayConfig, 'host' | 'allowedHosts'>): RequestHandler {
  return (req, _res, next) => {
    if (!hostAllowed(req.headers.host, config)) throw hostForbidden(req.headers.host);
    next();
  };
}
