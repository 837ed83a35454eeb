import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { PhotoRelayError } from '../../shared/errors.ts';

/**
 * `resources/models.json`, validated once at load: the single source of truth for which models
 * exist, how to verify their bytes and how to feed them.
 */
const normalisationSchema = z.object({
  /** Every value is first divided by this: a number, or "max" for the image's own maximum (rembg). */
  divideBy: z.union([z.literal('max'), z.number().positive()]),
  /** Per tensor channel, in the tensor's channel order. */
  mean: z.tuple([z.number(), z.number(), z.number()]),
  std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
  /** SINet's exported graph expects (x - mean) / (std * 255); other models leave this at 1. */
  stdMultiplier: z.number().positive().default(1),
});

const modelSchema = z.object({
  id: z.string().regex(/^[a-z0-9-]+$/),
  file: z.string().regex(/^[\w.-]+\.onnx$/),
  bytes: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  licence: z.string(),
  goodFor: z.string(),
  source: z.object({ npmPackage: z.string(), path: z.string() }).optional(),
  input: z.object({
    name: z.string(),
    layout: z.enum(['NCHW', 'NHWC']),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    channelOrder: z.enum(['RGB', 'BGR']),
    resize: z.literal('lanczos3-ignore-aspect'),
    normalisation: normalisationSchema,
  }),
  output: z.object({
    name: z.string(),
    layout: z.enum(['NCHW', 'NHWC']),
    channels: z.number().int().positive(),
    foregroundChannel: z.number().int().nonnegative(),
    minMaxNormalise: z.boolean(),
  }),
});

const manifestSchema = z.object({
  defaultModel: z.string(),
  models: z.array(modelSchema).min(1),
});

export type ModelSpec = z.infer<typeof modelSchema>;
export type Manifest = z.infer<typeof manifestSchema>;

const manifestUrl = new URL('../../resources/models.json', import.meta.url);

let cached: Manifest | undefined;

export function loadManifest(): Manifest {
  cached ??= manifestSchema.parse(JSON.parse(readFileSync(manifestUrl, 'utf8')));
  return cached;
}

export function modelIds(): string[] {
  return loadManifest().models.map((model) => model.id);
}

export function defaultModelId(): string {
  return loadManifest().defaultModel;
}

export function getModelSpec(id: string): ModelSpec {
  const spec = loadManifest().models.find((model) => model.id === id);
  if (!spec) {
    throw new PhotoRelayError(
      'E_MODEL_UNKNOWN',
      `Unknown model "${id}". Known models: ${modelIds().join(', ')}.`,
    );
  }
  return spec;
}
