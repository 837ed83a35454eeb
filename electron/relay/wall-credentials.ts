import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { WallInfo } from '../../shared/protocol.ts';
import type { WallRow } from '../store/photo-store.ts';

/** The walls table (PhotoStore implements it). */
export interface WallTable {
  addWall(wall: WallRow): void;
  listWalls(): WallRow[];
  touchWall(id: string, lastSeenAt: string): void;
  removeWall(id: string): boolean;
  getSetting<T>(key: string, fallback: T): T;
  setSetting(key: string, value: unknown): void;
}

/**
 * Revoked wall ids, kept so another relay's late or repeated news of the wall (several machines)
 * cannot bring it back. Bounded: far more revocations than any event makes.
 */
const REVOKED_SETTING = 'walls.revoked';
const REVOKED_KEPT = 2000;

/** Last-seen times are written at most this often per wall (a pong every 15 s is not a write). */
const TOUCH_PERIOD_MS = 60_000;
/**
 * The most credentials kept. Beyond it no new one is issued; none is ever dropped to make room
 * (only the operator's Revoke removes one): a guest with the PIN must not be able to push the
 * event's walls out by joining again and again.
 */
export const MAX_WALLS = 500;
/** New credentials one address may be given: 3 per 10 minutes (a few screens behind one NAT). */
export const ISSUES_PER_ADDRESS = { points: 3, duration: 600 };

/** Why a display joining with the PIN was given no credential of its own. */
export type IssueRefusal = 'address-limit' | 'full';

const hashOf = (token: string): Buffer => createHash('sha256').update(token).digest();

/**
 * A display's own credential. A protocol-2 display that joins with the event PIN is given one (a
 * random 24-byte token, base64url); it then reconnects and fetches cut-outs with it, so a rotation
 * of the guest PIN does not cut it off. Kept in the data folder (it survives restarts) as a sha256
 * of the token; checked in constant time; listed to the operator and revoked there. Issuing is
 * bounded (ISSUES_PER_ADDRESS, MAX_WALLS): past either, the display is still let in with the PIN,
 * only without a credential of its own; a credential is never dropped to make room.
 */
export class WallCredentials {
  /** When each wall's last-seen time was last written (in memory: a restart writes again). */
  private readonly written = new Map<string, number>();
  /** The newest last-seen time of each wall, written or not. */
  private readonly seen = new Map<string, string>();
  /** New credentials per address (in memory: a restart starts the count again). */
  private readonly issues = new RateLimiterMemory(ISSUES_PER_ADDRESS);
  /** The other relays of the event (cluster/): a wall let in here is let in there too. */
  private shared: { issued(row: WallRow): void; revoked(id: string): void } | undefined;

  constructor(
    private readonly table: WallTable,
    /** The wall ids with a socket open now. */
    private readonly connected: () => Iterable<string>,
  ) {}

  /**
   * Whether a display joining with the PIN from `address` may be given a credential: counts one
   * of the address's issues (checked before the upgrade, which is asynchronous; `issue` follows
   * in the upgrade's callback and checks the total again).
   */
  async reserve(address: string): Promise<IssueRefusal | undefined> {
    if (this.full) return 'full';
    return this.issues.consume(address).then(
      () => undefined,
      (rejection: unknown) => {
        if (rejection instanceof Error) throw rejection;
        return 'address-limit';
      },
    );
  }

  /**
   * A new credential for a display that just joined with the PIN (the token is shown once), or
   * undefined when MAX_WALLS are kept already. Nothing is dropped to make room.
   */
  issue(label: string): { id: string; token: string } | undefined {
    if (this.full) return undefined;
    const token = randomBytes(24).toString('base64url');
    const now = new Date().toISOString();
    const id = randomUUID();
    const row = {
      id,
      tokenHash: hashOf(token).toString('hex'),
      label: label.slice(0, 300),
      createdAt: now,
      lastSeenAt: now,
    };
    this.table.addWall(row);
    this.written.set(id, Date.now());
    this.shared?.issued(row);
    return { id, token };
  }

  /** Several machines: credentials issued or revoked here are told to the other relays. */
  shareWith(shared: { issued(row: WallRow): void; revoked(id: string): void }): void {
    this.shared = shared;
  }

  /**
   * A credential another relay of the event issued (only its hash travels), so a wall can move
   * here when its relay dies. False when it was known already.
   */
  adopt(row: WallRow): boolean {
    if (this.table.listWalls().some((known) => known.id === row.id)) return false;
    if (this.table.getSetting<string[]>(REVOKED_SETTING, []).includes(row.id)) return false;
    this.table.addWall(row);
    return true;
  }

  /**
   * The wall id the token belongs to (and notes the wall was seen), or undefined. Every stored
   * hash is compared, in constant time, whatever matches: the answer's timing says nothing about
   * the token. Callers rate-limit the attempts (PinGuard).
   */
  verify(token: string): string | undefined {
    const given = hashOf(token);
    let found: string | undefined;
    for (const row of this.table.listWalls()) {
      const stored = Buffer.from(row.tokenHash, 'hex');
      if (stored.length === given.length && timingSafeEqual(stored, given)) found = row.id;
    }
    if (found) this.touch(found);
    return found;
  }

  /** The wall was seen now (connected, answered a ping, fetched a cut-out); written at most once a minute. */
  touch(id: string): void {
    const now = Date.now();
    this.seen.set(id, new Date(now).toISOString());
    const last = this.written.get(id);
    if (last !== undefined && now - last < TOUCH_PERIOD_MS) return;
    this.written.set(id, now);
    this.table.touchWall(id, new Date(now).toISOString());
  }

  list(): WallInfo[] {
    const connected = new Set(this.connected());
    return this.table.listWalls().map((row) => {
      const seen = this.seen.get(row.id);
      return {
        id: row.id,
        label: row.label,
        createdAt: row.createdAt,
        lastSeenAt: seen && seen > row.lastSeenAt ? seen : row.lastSeenAt,
        connected: connected.has(row.id),
      };
    });
  }

  /** Deletes the credential (its token is refused from now on); false when it is unknown. */
  revoke(id: string, { share = true } = {}): boolean {
    this.written.delete(id);
    this.seen.delete(id);
    const removed = this.table.removeWall(id);
    const revoked = this.table.getSetting<string[]>(REVOKED_SETTING, []);
    if (!revoked.includes(id))
      this.table.setSetting(REVOKED_SETTING, [...revoked, id].slice(-REVOKED_KEPT));
    if (removed && share) this.shared?.revoked(id);
    return removed;
  }

  private get full(): boolean {
    return this.table.listWalls().length >= MAX_WALLS;
  }
}
