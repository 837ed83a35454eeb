/**
 * The entries of an event's shared log (a Redis stream, shared-event.ts) and the rule each must
 * keep. Whatever reaches Redis is read back as untrusted input: an entry that breaks a rule (a
 * photo id that is not a UUID would name a file outside the data folder) is refused whole.
 */
import { z } from 'zod';
import { MAX_DESCRIPTION_LENGTH } from '../relay/multipart.ts';
import { sharedSettingsSchema } from '../photos/settings.ts';

/** Photo and wall ids are UUIDs (randomUUID): they name files and SQLite rows. */
const id = z.uuid();
/** Relay ids are made by cluster/index.ts (`relay-` and 8 hex digits). */
const relayId = z.string().regex(/^[\w.-]{1,64}$/);
const isoTime = z.iso.datetime({ offset: true });

const photo = z
  .object({
    id,
    timestamp: isoTime,
    description: z.string().max(MAX_DESCRIPTION_LENGTH * 2),
    originalFilename: z.string().max(1024),
    // Names the original's file extension on its relay: letters and digits only.
    inputFormat: z.string().regex(/^[a-z0-9]{1,10}$/),
    processingTime: z.number().nonnegative().nullable(),
    width: z.number().int().positive().max(65_535).nullable(),
    height: z.number().int().positive().max(65_535).nullable(),
    hidden: z.boolean(),
    approved: z.boolean(),
  })
  .strict();

const wall = z
  .object({
    id,
    tokenHash: z.string().regex(/^[0-9a-f]{64}$/),
    label: z.string().max(300),
    createdAt: isoTime,
    lastSeenAt: isoTime,
  })
  .strict();

const relayUrl = z.url({ protocol: /^https?$/ });

/**
 * Who wrote an entry, and its place in that relay's outbox (increasing, never reused): an entry
 * sent again after a crash (sent, then killed before it was marked sent) is recognised by it and
 * not applied a second time, after newer ones.
 */
const written = { from: relayId, seq: z.number().int().positive().optional() };

export const sharedMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('photo'), ...written, url: relayUrl, photo }).strict(),
  z
    .object({
      type: z.literal('moderated'),
      ...written,
      id,
      hidden: z.boolean(),
      approved: z.boolean(),
    })
    .strict(),
  z.object({ type: z.literal('removed'), ...written, id }).strict(),
  z.object({ type: z.literal('settings'), ...written, settings: sharedSettingsSchema }).strict(),
  z.object({ type: z.literal('wall'), ...written, wall }).strict(),
  z.object({ type: z.literal('wallRevoked'), ...written, id }).strict(),
]);

/** One entry of the event's shared log. `from` is the relay that wrote it. */
export type SharedMessage = z.infer<typeof sharedMessageSchema>;
/** A finished photo as the relay that accepted it tells the others. */
export type SharedPhoto = z.infer<typeof photo>;

/** An entry's text as read from the stream: the message, or why it was refused. */
export function parseSharedMessage(
  json: string,
): { ok: true; message: SharedMessage } | { ok: false; why: string } {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return { ok: false, why: 'not JSON' };
  }
  const parsed = sharedMessageSchema.safeParse(value);
  if (parsed.success) return { ok: true, message: parsed.data };
  return {
    ok: false,
    why: parsed.error.issues
      .slice(0, 3)
      .map((issue) => `${issue.path.join('.') || 'entry'}: ${issue.message}`)
      .join('; '),
  };
}
