import { z } from 'zod';
import { PhotoRelayError } from '../../shared/errors.ts';
import { CUTOUT_MODES } from './quality.ts';

export const OUTPUT_FORMATS = ['png', 'webp'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

const outputOptionsSchema = z
  .object({
    maxEdge: z
      .number({ error: 'maxEdge must be a whole number of pixels' })
      .int('maxEdge must be a whole number of pixels')
      .min(16, 'maxEdge must be at least 16 pixels')
      .max(16384, 'maxEdge must be at most 16384 pixels')
      .optional(),
    format: z
      .enum(OUTPUT_FORMATS, { error: `format must be one of: ${OUTPUT_FORMATS.join(', ')}` })
      .default('png'),
    background: z
      .string()
      .regex(/^#[0-9a-fA-F]{6}$/, "background must be a colour written '#rrggbb', e.g. '#ffffff'")
      .optional(),
    /** A photo (JPEG/PNG/WebP bytes) to put behind the cut-out, scaled to cover it. */
    backgroundImage: z
      .custom<Uint8Array>((value) => value instanceof Uint8Array, {
        error: 'backgroundImage must be the bytes of an image',
      })
      .optional(),
    /** `quality` (the adaptive pipeline, quality.ts) or `fast` (one pass, rembg's u2netp). */
    mode: z
      .enum(CUTOUT_MODES, { error: `mode must be one of: ${CUTOUT_MODES.join(', ')}` })
      .default('fast'),
    /** Turns single steps of the quality pipeline on or off (the benchmark measures each). */
    steps: z
      .object({
        zoom: z.boolean(),
        flip: z.boolean(),
        person: z.boolean(),
        levels: z.boolean(),
        guided: z.boolean(),
        decontaminate: z.boolean(),
      })
      .partial()
      .strict()
      .optional(),
    pngCompressionLevel: z
      .number()
      .int()
      .min(0, 'pngCompressionLevel must be 0–9')
      .max(9, 'pngCompressionLevel must be 0–9')
      .default(1),
  })
  .strict();

export type OutputOptionsInput = z.input<typeof outputOptionsSchema>;
export type OutputOptions = z.output<typeof outputOptionsSchema>;

/** Validates output options; the error names every bad parameter and what it accepts. */
export function parseOutputOptions(input: unknown): OutputOptions {
  const parsed = outputOptionsSchema.safeParse(input ?? {});
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) =>
    issue.code === 'unrecognized_keys'
      ? `unknown option(s): ${issue.keys.join(', ')}`
      : issue.message,
  );
  throw new PhotoRelayError('E_BAD_OPTION', `Invalid output options: ${problems.join('; ')}.`);
}

export function parseHexColour(hex: string): [number, number, number] {
  return [1, 3, 5].map((start) => Number.parseInt(hex.slice(start, start + 2), 16)) as [
    number,
    number,
    number,
  ];
}
