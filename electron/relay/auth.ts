import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { PhotoRelayError } from '../../shared/errors.ts';

/**
 * PairDrop's limit: 10 wrong PINs (or wall tokens) per 10 s from one address, then that address
 * waits.
 */
const PIN_FAILURES = { points: 10, duration: 10 };

export function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function clientAddress(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

export function isLoopback(address: string): boolean {
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
}

/** A header's value, or the query parameter's where a header cannot be sent (<img>, WebSocket). */
function presented(req: IncomingMessage, header: string, query: string): string | undefined {
  const value = req.headers[header];
  if (typeof value === 'string' && value) return value;
  return new URL(req.url ?? '/', 'http://relay').searchParams.get(query) ?? undefined;
}

/** The PIN from the X-Event-Pin header or the ?pin= query parameter. */
export function presentedPin(req: IncomingMessage): string | undefined {
  return presented(req, 'x-event-pin', 'pin');
}

/** A display's own credential from the X-Wall-Token header or the ?wall= query parameter. */
export function presentedWallToken(req: IncomingMessage): string | undefined {
  return presented(req, 'x-wall-token', 'wall') || undefined;
}

function retryAfter(result: RateLimiterRes): number {
  return Math.max(1, Math.ceil(result.msBeforeNext / 1000));
}

/** What a guest request was let in with (a subset of the sockets' Credential). */
export type GuestAccess = { kind: 'pin' } | { kind: 'wall'; wallId: string } | { kind: 'open' };

/** Checks wall tokens (WallCredentials implements it): the wall's id, or undefined. */
export interface WallVerifier {
  verify(token: string): string | undefined;
}

/**
 * Checks the event PIN and displays' wall tokens on HTTP requests and WebSocket upgrades, with one
 * failure limit per address for both. Every attempt is counted before anything is compared (and
 * given back when it succeeds), so parallel guesses cannot slip past the limit. The PIN itself
 * lives in the event's settings (kept in the data folder; rotated there).
 */
export class PinGuard {
  private readonly failures = new RateLimiterMemory(PIN_FAILURES);

  constructor(
    private readonly currentPin: () => string | null,
    private readonly walls?: WallVerifier,
  ) {}

  get enabled(): boolean {
    return this.currentPin() !== null;
  }

  /** Throws E_RATE_LIMITED, E_PIN_REQUIRED or E_PIN_WRONG; returns when the request may go on. */
  async check(req: IncomingMessage): Promise<void> {
    const pin = this.currentPin();
    if (pin === null) return;
    const given = presentedPin(req);
    await this.attempt(
      req,
      () => given !== undefined && sameSecret(given, pin),
      given === undefined ? 'E_PIN_REQUIRED' : 'E_PIN_WRONG',
      'Too many wrong PINs from this device. Wait a few seconds and try again.',
    );
  }

  /** The wall the token belongs to; throws E_RATE_LIMITED or E_WALL_REVOKED (unknown or revoked). */
  async checkWall(req: IncomingMessage, token: string): Promise<string> {
    let wallId: string | undefined;
    await this.attempt(
      req,
      () => (wallId = this.walls?.verify(token)) !== undefined,
      'E_WALL_REVOKED',
      'Too many refused display credentials from this device. Wait a few seconds and try again.',
    );
    return wallId!;
  }

  /**
   * A guest (display, uploader): with `allowWall`, a presented wall token decides (the PIN is then
   * not looked at); otherwise the PIN.
   */
  async checkGuest(
    req: IncomingMessage,
    options: { allowWall?: boolean } = {},
  ): Promise<GuestAccess> {
    const token = options.allowWall ? presentedWallToken(req) : undefined;
    if (token !== undefined) return { kind: 'wall', wallId: await this.checkWall(req, token) };
    await this.check(req);
    return this.enabled ? { kind: 'pin' } : { kind: 'open' };
  }

  /** Counts the attempt, then compares; a success gives the point back. */
  private async attempt(
    req: IncomingMessage,
    matches: () => boolean,
    refusal: 'E_PIN_REQUIRED' | 'E_PIN_WRONG' | 'E_WALL_REVOKED',
    limited: string,
  ): Promise<void> {
    const address = clientAddress(req);
    try {
      await this.failures.consume(address);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      throw new PhotoRelayError('E_RATE_LIMITED', limited, {
        retryAfterSeconds: retryAfter(error),
      });
    }
    if (!matches()) throw new PhotoRelayError(refusal);
    await this.failures.reward(address);
  }
}

/** Per-address upload limit, so one phone cannot flood the queue. */
export class UploadLimiter {
  private readonly limiter: RateLimiterMemory;

  constructor(perMinute: number) {
    this.limiter = new RateLimiterMemory({ points: perMinute, duration: 60 });
  }

  async take(address: string): Promise<void> {
    try {
      await this.limiter.consume(address);
    } catch (error) {
      if (error instanceof RateLimiterRes) {
        throw new PhotoRelayError(
          'E_RATE_LIMITED',
          'Too many uploads from this device. Wait a moment and try again.',
          { retryAfterSeconds: retryAfter(error) },
        );
      }
      throw error;
    }
  }
}

/** From this machine, to a Host that names it (a rebinding DNS name is refused). */
export function isLocalRequest(req: IncomingMessage): boolean {
  const host = (req.headers.host ?? '').replace(/:\d+$/, '');
  return isLoopback(clientAddress(req)) && ['localhost', '127.0.0.1', '[::1]'].includes(host);
}

/**
 * Loopback only, the Host header naming this machine (no DNS rebinding), the admin token: from
 * `Authorization: Bearer …`, or `given` where a header cannot be sent (the dashboard's WebSocket).
 */
export function checkAdmin(req: IncomingMessage, token: string, given?: string): void {
  const auth = req.headers.authorization ?? '';
  given ??= auth.startsWith('Bearer ') ? auth.slice(7) : '';
  if (!isLocalRequest(req) || !sameSecret(given, token)) {
    throw new PhotoRelayError('E_ADMIN_ONLY');
  }
}
