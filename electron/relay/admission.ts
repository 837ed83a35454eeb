import { PhotoRelayError } from '../../shared/errors.ts';
import { isLoopback, limitKey } from './auth.ts';

/** The caps (RelayConfig's; README "Limits under abuse"). */
export interface AdmissionLimits {
  /** Photos in line at most (QUEUE_SIZE). */
  queueSize: number;
  /** Upload bodies being received at once from one address (UPLOADS_PER_ADDRESS). */
  uploadsPerAddress: number;
  /** … and from all addresses together (UPLOADS_TOTAL). */
  uploadsTotal: number;
  /** WebSocket connections open (or being opened) from one address (WS_PER_ADDRESS). */
  socketsPerAddress: number;
  /** … and from all addresses together (WS_TOTAL). */
  socketsTotal: number;
  /**
   * Open TCP connections from one address (CONNECTIONS_PER_ADDRESS); the total is the server's
   * maxConnections (CONNECTIONS_TOTAL).
   */
  connectionsPerAddress: number;
}

/** The processor's count of photos in line (Processor implements it). */
export interface Line {
  readonly pending: number;
  admit(limit: number): boolean;
  release(): void;
}

/** A place in line, held by an address from admission until its photo's processing ended. */
export interface Place {
  /** The photo was not stored after all: the place goes back to the line and to the address. */
  giveBack(): void;
  /** The photo's processing ended (the processor freed its place in line itself). */
  leave(): void;
}

/**
 * A fresh upload's tentative place, held while its body arrives: the line checks count it as a
 * place, so when one place is free only one body is let in for it (the others are refused
 * before they send 10 MB for nothing).
 */
export interface Reservation {
  /** The body arrived and passed its checks: the tentative place becomes a real one. */
  take(): Place;
  /** The body was refused, was a resend, or went away: the tentative place is free again. */
  cancel(): void;
}

/** Every share is at least this, however many addresses are uploading. */
export const MIN_SHARE = 2;
/** An address refused for a full line is counted as waiting for this long (it will resend). */
export const WAITING_MS = 30_000;
/** Addresses remembered as waiting at most (the oldest is forgotten first). */
const MAX_WAITING = 10_000;
const RETRY_SECONDS = 5;

/** Counts per address, with the total. */
class Counts {
  private readonly byKey = new Map<string, number>();
  total = 0;

  of(key: string): number {
    return this.byKey.get(key) ?? 0;
  }

  add(key: string, delta: 1 | -1): void {
    const next = this.of(key) + delta;
    if (next > 0) this.byKey.set(key, next);
    else this.byKey.delete(key);
    this.total += delta;
  }

  keys(): IterableIterator<string> {
    return this.byKey.keys();
  }
}

/** A release that does its work once, however often it is called. */
function once(release: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    release();
  };
}

/**
 * Who may take the relay's resources, per address and in all: upload bodies being received,
 * places in the processing line, WebSocket connections, TCP connections. Every check is
 * synchronous (nothing runs between a check and its count), and each grant comes with its
 * release.
 *
 * Per address means per IPv4 address or IPv6 /64 (auth.ts limitKey). The relay's own computer
 * (127.0.0.1, ::1: the operator's dashboard and a wall on the laptop's own screen) has no
 * per-address caps on uploads and sockets; it counts in the totals.
 *
 * Fair share of the line: an address may hold at most max(MIN_SHARE, queueSize / active) places,
 * where the active addresses are those holding places, those sending an upload now and those
 * refused for a full line in the last WAITING_MS (they will resend), so a few devices uploading
 * as fast as they are allowed cannot keep the line full for everyone else: once another address
 * waits, their share shrinks and the next free place goes to it. A fresh upload's body in flight
 * holds a tentative place (reserveLine), in the line and in its address's share.
 */
export class Admission {
  private readonly uploading = new Counts();
  private readonly places = new Counts();
  /** Fresh upload bodies being received, each a tentative place (reserveLine). */
  private readonly reserved = new Counts();
  private readonly sockets = new Counts();
  private readonly connections = new Counts();
  /** Addresses refused for a full line → when, oldest first. */
  private readonly waiting = new Map<string, number>();

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly line: Line,
    private readonly now: () => number = Date.now,
  ) {}

  /** What is held now (the dashboard, the tests). */
  stats(): {
    uploading: number;
    places: number;
    reserved: number;
    sockets: number;
    connections: number;
    share: number;
  } {
    return {
      uploading: this.uploading.total,
      places: this.places.total,
      reserved: this.reserved.total,
      sockets: this.sockets.total,
      connections: this.connections.total,
      share: this.share(),
    };
  }

  /**
   * An upload body about to be received from `address`: refused with 429 when the address has
   * uploadsPerAddress bodies in flight, 503 when the relay has uploadsTotal. The release must be
   * called when the body was read (stored or refused).
   */
  startUpload(address: string): () => void {
    const key = limitKey(address);
    if (!isLoopback(address) && this.uploading.of(key) >= this.limits.uploadsPerAddress) {
      throw new PhotoRelayError(
        'E_RATE_LIMITED',
        `Too many uploads at once from this device (at most ${this.limits.uploadsPerAddress}). The others will follow.`,
        { retryAfterSeconds: RETRY_SECONDS },
      );
    }
    if (this.uploading.total >= this.limits.uploadsTotal) {
      throw new PhotoRelayError('E_RELAY_BUSY', undefined, { retryAfterSeconds: RETRY_SECONDS });
    }
    this.uploading.add(key, 1);
    return once(() => this.uploading.add(key, -1));
  }

  /**
   * Whether `address` would get a place in line now (throws E_QUEUE_FULL otherwise): asked
   * before an upload's body is read, so a refusal costs neither side the transfer.
   */
  checkLine(address: string): void {
    this.refusal(limitKey(address));
  }

  /**
   * A tentative place in line for a fresh upload whose body is about to be read (throws
   * E_QUEUE_FULL, as takePlace would): counted against the line and the address's share until
   * it is taken or cancelled.
   */
  reserveLine(address: string): Reservation {
    const key = limitKey(address);
    this.refusal(key);
    this.reserved.add(key, 1);
    const cancel = once(() => this.reserved.add(key, -1));
    return {
      take: () => {
        cancel();
        return this.takePlace(address);
      },
      cancel,
    };
  }

  /** Takes a place in line for `address` (the processor counts it too); throws E_QUEUE_FULL. */
  takePlace(address: string): Place {
    const key = limitKey(address);
    this.refusal(key);
    if (!this.line.admit(this.limits.queueSize)) throw this.full(key);
    this.places.add(key, 1);
    this.waiting.delete(key);
    const leave = once(() => this.places.add(key, -1));
    return {
      giveBack: once(() => {
        leave();
        this.line.release();
      }),
      leave,
    };
  }

  /**
   * A WebSocket connection from `address` (counted from the upgrade request until the socket
   * closes): 429 when the address has socketsPerAddress, 503 when the relay has socketsTotal.
   */
  openSocket(address: string): () => void {
    const key = limitKey(address);
    if (!isLoopback(address) && this.sockets.of(key) >= this.limits.socketsPerAddress) {
      throw new PhotoRelayError(
        'E_RATE_LIMITED',
        `Too many connections from this device (at most ${this.limits.socketsPerAddress}). Close some pages and try again.`,
        { retryAfterSeconds: 10 },
      );
    }
    if (this.sockets.total >= this.limits.socketsTotal) {
      throw new PhotoRelayError('E_RELAY_BUSY', undefined, { retryAfterSeconds: 10 });
    }
    this.sockets.add(key, 1);
    return once(() => this.sockets.add(key, -1));
  }

  /**
   * An open TCP connection from `address` (counted from its accept until it closes): 429 when
   * the address has connectionsPerAddress already. The caller closes a refused one at once.
   */
  openConnection(address: string): () => void {
    const key = limitKey(address);
    if (!isLoopback(address) && this.connections.of(key) >= this.limits.connectionsPerAddress) {
      throw new PhotoRelayError(
        'E_RATE_LIMITED',
        `Too many connections from this device (at most ${this.limits.connectionsPerAddress}).`,
        { retryAfterSeconds: 10 },
      );
    }
    this.connections.add(key, 1);
    return once(() => this.connections.add(key, -1));
  }

  /** Places one address may hold now, counting `asking` among the active addresses. */
  share(asking?: string): number {
    const cutoff = this.now() - WAITING_MS;
    for (const [key, at] of this.waiting) {
      if (at > cutoff) break;
      this.waiting.delete(key);
    }
    const active = new Set([
      ...this.places.keys(),
      ...this.uploading.keys(),
      ...this.reserved.keys(),
      ...this.waiting.keys(),
    ]);
    if (asking !== undefined) active.add(asking);
    return Math.max(MIN_SHARE, Math.floor(this.limits.queueSize / Math.max(1, active.size)));
  }

  /** Why `key` gets no place now: bodies in flight count as the places they will take. */
  private refusal(key: string): void {
    if (this.line.pending + this.reserved.total >= this.limits.queueSize) throw this.full(key);
    const share = this.share(key);
    const held = this.places.of(key) + this.reserved.of(key);
    if (held >= share) {
      throw new PhotoRelayError(
        'E_QUEUE_FULL',
        `This device has ${held} photos in line already, its share while others are sending too. It will take the next one in a few seconds.`,
        { retryAfterSeconds: RETRY_SECONDS },
      );
    }
  }

  private full(key: string): PhotoRelayError {
    this.waiting.delete(key);
    this.waiting.set(key, this.now());
    while (this.waiting.size > MAX_WAITING) this.waiting.delete(this.waiting.keys().next().value!);
    const arriving = this.reserved.total ? `, ${this.reserved.total} arriving` : '';
    return new PhotoRelayError(
      'E_QUEUE_FULL',
      `The relay is busy (${this.line.pending} photos in line${arriving}). It will take yours in a few seconds.`,
      { retryAfterSeconds: RETRY_SECONDS },
    );
  }
}
