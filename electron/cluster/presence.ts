import type { RedisLink } from './redis-link.ts';

/** How often a process says it is alive, and after how long without a word it is shown offline. */
export const PRESENCE_EVERY_MS = 2000;
export const OFFLINE_AFTER_MS = 10_000;
/** Entries silent this long are dropped from the list (a machine that left the event). */
const FORGET_AFTER_MS = 3_600_000;

/**
 * Keeps this process's entry in a Redis hash (`relays` or `workers`) fresh. What it writes is
 * `describe()` plus lastSeenAt; a write that fails (Redis away) is simply tried at the next tick.
 */
export function keepPresence(
  link: RedisLink,
  hash: string,
  id: string,
  describe: () => Record<string, unknown>,
): () => Promise<void> {
  const write = () => {
    link.client
      .hset(hash, id, JSON.stringify({ ...describe(), id, lastSeenAt: new Date().toISOString() }))
      .catch(() => undefined);
  };
  write();
  link.on('up', write);
  const timer = setInterval(write, PRESENCE_EVERY_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    link.off('up', write);
    // Leaving on purpose: gone from the list at once rather than shown offline.
    await link.client.hdel(hash, id).catch(() => undefined);
  };
}

/** The entries of a presence hash with `online` worked out; [] while Redis is away. */
export async function readPresence<T extends { lastSeenAt: string }>(
  link: RedisLink,
  hash: string,
): Promise<(T & { online: boolean })[]> {
  const entries: Record<string, string> = await link.client.hgetall(hash).catch(() => ({}));
  const now = Date.now();
  const stale: string[] = [];
  const list: (T & { online: boolean })[] = [];
  for (const [id, json] of Object.entries(entries)) {
    try {
      const entry = JSON.parse(json) as T;
      const age = now - Date.parse(entry.lastSeenAt);
      if (age > FORGET_AFTER_MS) stale.push(id);
      else list.push({ ...entry, online: age <= OFFLINE_AFTER_MS });
    } catch {
      stale.push(id);
    }
  }
  if (stale.length) await link.client.hdel(hash, ...stale).catch(() => undefined);
  return list.sort((a, b) =>
    String((a as { id?: string }).id).localeCompare(String((b as { id?: string }).id)),
  );
}
