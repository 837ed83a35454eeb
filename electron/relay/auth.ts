import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { PhotoRelayError } from '../../shared/errors.ts';

/** PairDrop's limit: 10 wrong PINs per 10 s from one address, then that address waits. */
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

/** The PIN from the X-Event-Pin header or the ?pin= query parameter. */
export function presentedPin(req: IncomingMessage): string | undefined {
  const header = req.headers['x-event-pin'];
  if (typeof header === 'string' && header) return header;
  const query = new URL(req.url ?? '/', 'http://relay').searchParams.get('pin');
  return query ?? undefined;
}

function retryAfter(result: RateLimiterRes): number {
  return Math.max(1, Math.ceil(result.msBeforeNext / 1000));
}

/**
 * Checks the event PIN on HTTP requests and WebSocket upgrades, rate limiting failures. The PIN
 * itself lives in the event's settings (kept in the data folder; rotated there).
 */
export class PinGuard {
  private readonly failures = new RateLimiterMemory(PIN_FAILURES);

  constructor(private readonly currentPin: () => string | null) {}

  get enabled(): boolean {
    return this.currentPin() !== null;
  }

  /** Throws E_RATE_LIMITED, E_PIN_REQUIRED or E_PIN_WRONG; returns when the request may go on. */
  async check(req: IncomingMessage): Promise<void> {
    const pin = this.currentPin();
    if (pin === null) return;
    const address = clientAddress(req);
    const state = await this.failures.get(address);
    if (state && state.consumedPoints >= PIN_FAILURES.points) {
      throw new PhotoRelayError(
        'E_RATE_LIMITED',
        'Too many wrong PINs from this device. Wait a few seconds and try again.',
        { retryAfterSeconds: retryAfter(state) },
      );
    }
    const given = presentedPin(req);
    if (given !== undefined && sameSecret(given, pin)) return;
    await this.failures.consume(address).catch(() => undefined);
    throw new PhotoRelayError(given === undefined ? 'E_PIN_REQUIRED' : 'E_PIN_WRONG');
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
