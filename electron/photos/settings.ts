/**
 * The operator's settings for this event, kept in the data folder's SQLite, with one precedence
 * rule for all of them: **the latest decision wins**. A change saved in the dashboard is a
 * decision; so is an environment variable (EVENT_PIN, MODEL, DISPLAY_MAX_EDGE, CUTOUT_MODE) whose value
 * differs from the one seen at the previous start. An environment value that has not changed
 * since the last start does not undo a later dashboard change (a rotated PIN or a chosen model
 * survives a restart with the same environment). Where nobody decided, the built-in default holds;
 * the event PIN is then made once per data folder and kept.
 */
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import { PhotoRelayError } from '../../shared/errors.ts';
import type { RelaySettings } from '../../shared/protocol.ts';
import { CUTOUT_MODES, DEFAULT_CUTOUT_MODE, type CutoutMode } from '../engine/quality.ts';
import { defaultModelId, getModelSpec, modelIds } from '../models/manifest.ts';
import { checkModel } from '../models/model-files.ts';

export interface EventSettings extends RelaySettings {
  /** The guest PIN; null when the check is off (EVENT_PIN=off). */
  pin: string | null;
  approvalMode: boolean;
}

/** What the environment decided at this start (undefined: the variable is not set). */
export interface EnvironmentSettings {
  pin?: string | null;
  model?: string;
  displayMaxEdge?: number;
  cutoutMode?: CutoutMode;
}

/** The settings table (PhotoStore implements it). */
export interface SettingsTable {
  getSetting<T>(key: string, fallback: T): T;
  setSetting(key: string, value: unknown): void;
}

const DEFAULTS: Omit<EventSettings, 'pin'> = {
  background: 'transparent',
  displayMaxEdge: 1920,
  model: defaultModelId(),
  cutoutMode: DEFAULT_CUTOUT_MODE,
  approvalMode: false,
};

export function newPin(): string {
  return String(randomInt(0, 1_000_000)).padStart(6, '0');
}

/** Each setting's rule (the dashboard's changes and the ones other relays share are checked by it). */
const settingFields = {
  approvalMode: z.boolean(),
  background: z
    .string()
    .regex(/^(transparent|image|#[0-9a-fA-F]{6})$/, "use 'transparent', 'image' or '#rrggbb'"),
  displayMaxEdge: z.number().int().min(256).max(8192),
  model: z.string().refine((id) => modelIds().includes(id), `one of ${modelIds().join(', ')}`),
  cutoutMode: z.enum(CUTOUT_MODES),
};

/** The PIN's rule (EVENT_PIN's, relay-config.ts): 4–32 letters or digits. */
export const PIN_PATTERN = /^[0-9A-Za-z]{4,32}$/;

/** What the dashboard may change (PUT /admin/api/settings); the PIN only by rotation. */
const patchSchema = z.object(settingFields).partial().strict();

/**
 * The settings one relay of an event shares with the others (cluster/shared-event.ts): all of
 * them but the model (each machine keeps its own install), the PIN included (null: check off).
 */
export const sharedSettingsSchema = z
  .object({
    pin: z.string().regex(PIN_PATTERN).nullable(),
    approvalMode: settingFields.approvalMode,
    background: settingFields.background,
    displayMaxEdge: settingFields.displayMaxEdge,
    cutoutMode: settingFields.cutoutMode,
  })
  .strict();

export type SharedSettings = z.infer<typeof sharedSettingsSchema>;
const SHARED_KEYS = Object.keys(sharedSettingsSchema.shape) as (keyof SharedSettings)[];

/** The part of the settings a relay shares with the others of its event. */
export function sharedPart(settings: EventSettings): SharedSettings {
  return Object.fromEntries(SHARED_KEYS.map((key) => [key, settings[key]])) as SharedSettings;
}

export type SettingsPatch = z.infer<typeof patchSchema>;

export class Settings {
  private readonly listeners = new Set<(settings: EventSettings) => void>();
  /** True when this start made the PIN (nobody chose one yet): show it to the operator. */
  readonly pinMadeNow: boolean;

  constructor(
    private readonly table: SettingsTable,
    environment: EnvironmentSettings,
  ) {
    for (const [key, value] of Object.entries(environment) as [
      keyof EnvironmentSettings,
      unknown,
    ][]) {
      const seenKey = `env.${key}`;
      // JSON round trip: null (PIN off) and undefined (unset) must stay distinct.
      const seen = table.getSetting<unknown>(seenKey, undefined);
      if (value === undefined) {
        if (seen !== undefined) table.setSetting(seenKey, null);
        continue;
      }
      if (JSON.stringify(seen) !== JSON.stringify({ value })) {
        table.setSetting(key, value);
        table.setSetting(seenKey, { value });
      }
    }
    // A PIN check turned off lasts only while EVENT_PIN=off says so: security is the default.
    const stored = table.getSetting<string | null | undefined>('pin', undefined);
    this.pinMadeNow = stored === undefined || (stored === null && environment.pin !== null);
    if (this.pinMadeNow) table.setSetting('pin', newPin());
  }

  current(): EventSettings {
    const get = <K extends keyof EventSettings>(key: K, fallback: EventSettings[K]) =>
      this.table.getSetting(key, fallback);
    return {
      pin: get('pin', null),
      background: get('background', DEFAULTS.background),
      displayMaxEdge: get('displayMaxEdge', DEFAULTS.displayMaxEdge),
      model: get('model', DEFAULTS.model),
      cutoutMode: get('cutoutMode', DEFAULTS.cutoutMode),
      approvalMode: get('approvalMode', DEFAULTS.approvalMode),
    };
  }

  /**
   * Checks a dashboard change (names the bad field) and saves it. `hasBackgroundImage` and the
   * models folder are needed to refuse a setting that could not work.
   */
  async update(
    body: unknown,
    context: { modelsDir: string; hasBackgroundImage: boolean },
  ): Promise<EventSettings> {
    const parsed = patchSchema.safeParse(body);
    if (!parsed.success) {
      throw new PhotoRelayError(
        'E_BAD_OPTION',
        `Invalid settings: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}.`,
      );
    }
    const patch = parsed.data;
    if (patch.model !== undefined) {
      const status = await checkModel(context.modelsDir, getModelSpec(patch.model), false);
      if (status.state !== 'ok') {
        throw new PhotoRelayError(
          'E_MODEL_MISSING',
          `Model "${patch.model}" is not installed in ${context.modelsDir}; install it first (photo-relay models install --from DIR).`,
        );
      }
    }
    if (patch.background === 'image' && !context.hasBackgroundImage) {
      throw new PhotoRelayError(
        'E_BAD_OPTION',
        'Upload a background image first (PUT /admin/api/background-image).',
      );
    }
    for (const [key, value] of Object.entries(patch)) this.table.setSetting(key, value);
    return this.changed();
  }

  /** A new random 6-digit guest PIN, kept in the data folder. */
  rotatePin(): string {
    if (this.current().pin === null)
      throw new PhotoRelayError('E_BAD_OPTION', 'The PIN check is off (EVENT_PIN=off).');
    const pin = newPin();
    this.table.setSetting('pin', pin);
    this.changed();
    return pin;
  }

  /** Falls back to a transparent background (the image could not be used). */
  dropBackgroundImage(): void {
    if (this.current().background === 'image') {
      this.table.setSetting('background', 'transparent');
      this.changed();
    }
  }

  /**
   * The event's settings as another relay shared them (cluster/), checked by the same rules
   * (sharedSettingsSchema: what came through Redis is not trusted), listeners told. Only the
   * shared settings are written, never another key of the table. Returns false when nothing
   * changed; throws E_BAD_OPTION for settings that break a rule.
   */
  applyShared(shared: unknown): boolean {
    const parsed = sharedSettingsSchema.safeParse(shared);
    if (!parsed.success)
      throw new PhotoRelayError('E_BAD_OPTION', `Shared settings refused: ${parsed.error.message}`);
    const now = this.current();
    if (JSON.stringify(now) === JSON.stringify({ ...now, ...parsed.data })) return false;
    for (const key of SHARED_KEYS) this.table.setSetting(key, parsed.data[key]);
    this.changed();
    return true;
  }

  onChange(listener: (settings: EventSettings) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): EventSettings {
    const settings = this.current();
    for (const listener of this.listeners) listener(settings);
    return settings;
  }
}
