import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { PhotoRelayError } from '../../shared/errors.ts';

/** A leaky bucket's size: `capacity` failures at once, draining at `perSecond`. */
export interface BucketPolicy {
  capacity: number;
  perSecond: number;
}

/**
 * How many wrong PINs (and wrong wall credentials, which count the same) are compared; see the
 * README's "PIN guessing and Host names" for the reasoning and the figures.
 */
export interface FailurePolicy {
  /**
   * Per address (IPv4 address, IPv6 /64): a burst, then one more per 1/perSecond. One guest's
   * typos cost their address (a whole venue behind one NAT address) one attempt's wait.
   */
  address: BucketPolicy;
  /** All addresses together: when it is full, only addresses in good standing are compared. */
  global: BucketPolicy;
  /** While the global budget is spent: attempts from addresses with no recent failure. */
  fresh: BucketPolicy;
  /** How long a failure marks its address (refused while the global budget is spent). */
  memoryMs: number;
  /** Addresses remembered at most; the least recently seen is forgotten first. */
  maxAddresses: number;
}

export const PIN_FAILURE_POLICY: FailurePolicy = {
  address: { capacity: 10, perSecond: 1 / 10 },
  global: { capacity: 100, perSecond: 1 },
  fresh: { capacity: 10, perSecond: 1 / 10 },
  memoryMs: 60 * 60_000,
  maxAddresses: 100_000,
};

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

/** Failures counted in a leaky bucket: `level` drains continuously at the policy's rate. */
class Bucket {
  private level = 0;
  private at = 0;

  constructor(private readonly policy: BucketPolicy) {}

  private drain(now: number): void {
    this.level = Math.max(0, this.level - ((now - this.at) / 1000) * this.policy.perSecond);
    this.at = now;
  }

  /** Seconds until one more attempt fits; 0 when it fits now. */
  wait(now: number): number {
    this.drain(now);
    const over = this.level + 1 - this.policy.capacity;
    return over > 1e-9 ? over / this.policy.perSecond : 0;
  }

  add(now: number, points: number): void {
    this.drain(now);
    this.level = Math.max(0, this.level + points);
  }
}

interface AddressRecord {
  bucket: Bucket;
  /** When this address last failed (0: never). */
  failedAt: number;
  /** Whether its latest compared attempt succeeded. */
  succeeded: boolean;
}

/**
 * The address a limit applies to: an IPv4 address (also IPv4-mapped IPv6), or an IPv6 address's
 * /64, since one device on a LAN can take any number of addresses in its /64.
 */
export function limitKey(address: string): string {
  const plain = address.replace(/%.*$/, '').toLowerCase();
  if (plain.startsWith('::ffff:') && plain.includes('.')) return plain.slice(7);
  if (!plain.includes(':') || plain === '::1') return plain;
  const groups = (part: string) =>
    part ? part.split(':').flatMap((group) => (group.includes('.') ? ['0', '0'] : [group])) : [];
  const [head = '', tail] = plain.split('::');
  const front = groups(head);
  const back = tail === undefined ? [] : groups(tail);
  const all = [
    ...front,
    ...Array<string>(Math.max(0, 8 - front.length - back.length)).fill('0'),
    ...back,
  ];
  return `${all
    .slice(0, 4)
    .map((group) => parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}

/** Why an attempt was refused before it was compared, and when to try again. */
export interface Refusal {
  scope: 'address' | 'global';
  retryAfterSeconds: number;
}

/**
 * The shared failure limit for PINs and wall credentials. Every attempt is charged before it is
 * compared, synchronously (nothing else runs between the charge and the comparison, so requests
 * pipelined on one connection or sent in parallel are each charged), and a success gives its
 * charge back. Refused attempts are not compared and charge nothing, so retrying never lengthens
 * a wait. Charges:
 * - the address's own bucket, always;
 * - the global bucket, while it has room. When it is full (failures from many addresses), an
 *   address is still compared if its latest attempt succeeded (it has shown it knows the PIN:
 *   a NAT address shared with an attacker gives them one guess per success of a real guest
 *   there), or if it has not failed within `memoryMs`, within the `fresh` bucket (bounded:
 *   an attacker with new addresses gets at most that rate more). An address that failed
 *   recently waits for the global bucket.
 */
export class FailureLimiter {
  private readonly addresses = new Map<string, AddressRecord>();
  private readonly global: Bucket;
  private readonly fresh: Bucket;

  constructor(
    private readonly policy: FailurePolicy = PIN_FAILURE_POLICY,
    private readonly now: () => number = Date.now,
  ) {
    this.global = new Bucket(policy.global);
    this.fresh = new Bucket(policy.fresh);
  }

  /** Addresses remembered now (bounded by maxAddresses). */
  get size(): number {
    return this.addresses.size;
  }

  private record(key: string): AddressRecord {
    let record = this.addresses.get(key);
    if (record) this.addresses.delete(key);
    else record = { bucket: new Bucket(this.policy.address), failedAt: 0, succeeded: false };
    // Map order is recency order: the first key is the least recently seen.
    this.addresses.set(key, record);
    while (this.addresses.size > this.policy.maxAddresses) {
      const oldest = this.addresses.keys().next().value!;
      this.addresses.delete(oldest);
    }
    return record;
  }

  /**
   * Charges one attempt from `address`, runs `compare`, and gives the charge back when it
   * matches. Returns the comparison's result, or the refusal when it was not compared.
   */
  attempt(address: string, compare: () => boolean): boolean | Refusal {
    const now = this.now();
    const record = this.record(limitKey(address));
    const own = record.bucket.wait(now);
    if (own > 0) return { scope: 'address', retryAfterSeconds: own };
    let shared: Bucket | undefined = this.global;
    const globalWait = this.global.wait(now);
    if (globalWait > 0) {
      const recentFailure = record.failedAt > 0 && now - record.failedAt < this.policy.memoryMs;
      if (record.succeeded) shared = undefined;
      else if (!recentFailure && this.fresh.wait(now) === 0) shared = this.fresh;
      else
        return {
          scope: 'global',
          retryAfterSeconds: recentFailure
            ? globalWait
            : Math.min(globalWait, this.fresh.wait(now)),
        };
    }
    record.bucket.add(now, 1);
    shared?.add(now, 1);
    if (compare()) {
      record.bucket.add(now, -1);
      shared?.add(now, -1);
      record.succeeded = true;
      return true;
    }
    record.failedAt = now;
    record.succeeded = false;
    return false;
  }
}

/**
 * Checks the event PIN and displays' wall tokens on HTTP requests and WebSocket upgrades, with
 * one failure limit for both (FailureLimiter: per address and for all addresses together). The
 * PIN itself lives in the event's settings (kept in the data folder; rotated there).
 */
export class PinGuard {
  private readonly failures: FailureLimiter;

  constructor(
    private readonly currentPin: () => string | null,
    private readonly walls?: WallVerifier,
    failures: FailureLimiter = new FailureLimiter(),
  ) {
    this.failures = failures;
  }

  get enabled(): boolean {
    return this.currentPin() !== null;
  }

  /** Throws E_RATE_LIMITED, E_PIN_REQUIRED or E_PIN_WRONG; returns when the request may go on. */
  check(req: IncomingMessage): void {
    const pin = this.currentPin();
    if (pin === null) return;
    const given = presentedPin(req);
    this.attempt(
      req,
      () => given !== undefined && sameSecret(given, pin),
      given === undefined ? 'E_PIN_REQUIRED' : 'E_PIN_WRONG',
      'PINs',
    );
  }

  /** The wall the token belongs to; throws E_RATE_LIMITED or E_WALL_REVOKED (unknown or revoked). */
  checkWall(req: IncomingMessage, token: string): string {
    let wallId: string | undefined;
    this.attempt(
      req,
      () => (wallId = this.walls?.verify(token)) !== undefined,
      'E_WALL_REVOKED',
      'display credentials',
    );
    return wallId!;
  }

  /**
   * A guest (display, uploader): with `allowWall`, a presented wall token decides (the PIN is then
   * not looked at); otherwise the PIN. Checked synchronously (nothing runs between an attempt's
   * charge and its comparison); the refusal comes as a rejected promise.
   */
  checkGuest(req: IncomingMessage, options: { allowWall?: boolean } = {}): Promise<GuestAccess> {
    try {
      const token = options.allowWall ? presentedWallToken(req) : undefined;
      if (token !== undefined)
        return Promise.resolve({ kind: 'wall', wallId: this.checkWall(req, token) });
      this.check(req);
      return Promise.resolve(this.enabled ? { kind: 'pin' } : { kind: 'open' });
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** Charges the attempt, then compares (FailureLimiter.attempt); throws the refusal. */
  private attempt(
    req: IncomingMessage,
    matches: () => boolean,
    refusal: 'E_PIN_REQUIRED' | 'E_PIN_WRONG' | 'E_WALL_REVOKED',
    what: string,
  ): void {
    const outcome = this.failures.attempt(clientAddress(req), matches);
    if (outcome === true) return;
    if (outcome === false) throw new PhotoRelayError(refusal);
    const wait = `Wait ${outcome.retryAfterSeconds <= 5 ? 'a few seconds' : 'a moment'} and try again.`;
    throw new PhotoRelayError(
      'E_RATE_LIMITED',
      outcome.scope === 'address'
        ? `Too many wrong ${what} from this device. ${wait}`
        : `Too many wrong ${what} from many devices just now (someone may be guessing the PIN). ${wait}`,
      { retryAfterSeconds: Math.max(1, Math.ceil(outcome.retryAfterSeconds)) },
    );
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
