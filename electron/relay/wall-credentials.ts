import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { WallInfo } from '../../shared/protocol.ts';
import type { WallRow } from '../store/photo-store.ts';

/** The walls table (PhotoStore implements it). */
export interface WallTable {
  addWall(wall: WallRow): void;
  listWalls(): WallRow[];
  touchWall(id: string, lastSeenAt: string): void;
  removeWall(id: string): boolean;
}

/** Last-seen times are written at most this often per wall (a pong every 15 s is not a write). */
const TOUCH_PERIOD_MS = 60_000;
/** Beyond this many credentials, the least recently seen ones not connected now are dropped. */
export const MAX_WALLS = 500;

const hashOf = (token: string): Buffer => createHash('sha256').update(token).digest();

/**
 * A display's own credential. A protocol-2 display that joins with the event PIN is given one (a
 * random 24-byte token, base64url); it then reconnects and fetches cut-outs with it, so a rotation
 * of the guest PIN does not cut it off. Kept in the data folder (it survives restarts) as a sha256
 * of the token; checked in constant time; listed to the operator and revoked there.
 */
export class WallCredentials {
  /** When each wall's last-seen time was last written (in memory: a restart writes again). */
  private readonly written = new Map<string, number>();
  /** The newest last-seen time of each wall, written or not. */
  private readonly seen = new Map<string, string>();

  constructor(
    private readonly table: WallTable,
    /** The wall ids with a socket open now. */
    private readonly connected: () => Iterable<string>,
  ) {}

  /** A new credential for a display that just joined with the PIN; the token is shown once. */
  issue(label: string): { id: string; token: string } {
    const token = randomBytes(24).toString('base64url');
    const now = new Date().toISOString();
    const id = randomUUID();
    this.table.addWall({
      id,
      tokenHash: hashOf(token).toString('hex'),
      label: label.slice(0, 300),
      createdAt: now,
      lastSeenAt: now,
    });
    this.written.set(id, Date.now());
    this.prune();
    return { id, token };
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
  revoke(id: string): boolean {
    this.written.delete(id);
    this.seen.delete(id);
    return this.table.removeWall(id);
  }

  /** Keeps the table bounded: a guest with the PIN could otherwise open displays forever. */
  private prune(): void {
    const rows = this.table.listWalls();
    if (rows.length <= MAX_WALLS) return;
    const connected = new Set(this.connected());
    // Most recently seen first: the oldest are past MAX_WALLS; those connected now are spared.
    for (const row of rows.slice(MAX_WALLS)) {
      if (!connected.has(row.id)) this.revoke(row.id);
    }
  }
}
