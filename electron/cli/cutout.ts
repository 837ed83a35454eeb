import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { PhotoRelayError } from '../../shared/errors.ts';
import { createEngine } from '../engine/index.ts';
import { OUTPUT_FORMATS, parseOutputOptions, type OutputOptions } from '../engine/options.ts';
import { DEFAULT_CUTOUT_MODE, normaliseCutoutMode } from '../engine/quality.ts';
import { defaultModelId, modelIds } from '../models/manifest.ts';
import { parseCommandLine, UsageError } from './usage.ts';

interface CutoutArgs {
  inputs: string[];
  outDir: string;
  model: string;
  threads: number | undefined;
  output: OutputOptions;
}

function positiveInteger(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new UsageError(`${name} must be a positive whole number (got "${value}").`);
  }
  return Number(value);
}

function parseCutoutArgs(args: string[]): CutoutArgs {
  const { values, positionals } = parseCommandLine({
    args,
    allowPositionals: true,
    options: {
      out: { type: 'string', short: 'o' },
      model: { type: 'string', short: 'm' },
      'max-edge': { type: 'string' },
      format: { type: 'string' },
      background: { type: 'string' },
      mode: { type: 'string' },
      threads: { type: 'string' },
    },
  });
  if (positionals.length === 0) throw new UsageError('cutout needs at least one IMAGE.');
  if (!values.out) throw new UsageError('cutout needs --out DIR.');
  const model = values.model ?? defaultModelId();
  if (!modelIds().includes(model)) {
    throw new UsageError(`--model must be one of: ${modelIds().join(', ')} (got "${model}").`);
  }
  if (
    values.format !== undefined &&
    !(OUTPUT_FORMATS as readonly string[]).includes(values.format)
  ) {
    throw new UsageError(
      `--format must be one of: ${OUTPUT_FORMATS.join(', ')} (got "${values.format}").`,
    );
  }
  let output: OutputOptions;
  try {
    output = parseOutputOptions({
      maxEdge: positiveInteger('--max-edge', values['max-edge']),
      format: values.format,
      background: values.background,
      // The relay's environment variable, then the product default.
      mode:
        normaliseCutoutMode(values.mode) ??
        normaliseCutoutMode(process.env.CUTOUT_MODE) ??
        DEFAULT_CUTOUT_MODE,
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  return {
    inputs: positionals,
    outDir: values.out,
    model,
    threads: positiveInteger('--threads', values.threads),
    output,
  };
}

/** `DIR/<name without extension>.<format>`, with -2, -3… when two inputs share a name. */
function outputNames(inputs: string[], outDir: string, format: string): string[] {
  const used = new Map<string, number>();
  return inputs.map((input) => {
    const stem = path.parse(input).name;
    const count = (used.get(stem) ?? 0) + 1;
    used.set(stem, count);
    return path.join(outDir, `${count === 1 ? stem : `${stem}-${count}`}.${format}`);
  });
}

function describe(error: unknown): string {
  if (error instanceof PhotoRelayError) return `${error.message} (${error.code})`;
  if (error && typeof error === 'object' && 'code' in error && error.code === 'ENOENT') {
    return 'file not found';
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * Cuts out every IMAGE with one model load. A bad file is reported on its own line and the batch
 * goes on; the exit code says whether every file made it.
 */
export async function runCutout(args: string[]): Promise<number> {
  const options = parseCutoutArgs(args);
  const targets = outputNames(options.inputs, options.outDir, options.output.format);
  await mkdir(options.outDir, { recursive: true });
  const engine = await createEngine({ model: options.model, threads: options.threads });
  const bar = process.stderr.isTTY
    ? new SingleBar(
        {
          format: 'cutout [{bar}] {value}/{total} {file}',
          hideCursor: true,
          clearOnComplete: true,
        },
        Presets.shades_classic,
      )
    : undefined;
  bar?.start(options.inputs.length, 0, { file: '' });
  const failures: string[] = [];
  let succeeded = 0;
  const report = (line: string, isError: boolean) => {
    // Above a live bar: clear its line first; the next increment redraws it below.
    if (bar) process.stderr.write(`\r\x1b[K${line}\n`);
    else if (isError) console.error(line);
    else console.log(line);
  };

  const processOne = async (index: number) => {
    const input = options.inputs[index]!;
    const target = targets[index]!;
    try {
      const bytes = await readFile(input);
      const result = await engine.segment(bytes, options.output);
      await writeFile(target, result.image);
      succeeded++;
      if (!bar) {
        report(
          `ok   ${input} → ${target} (${result.width}×${result.height}, ${Math.round(result.timings.totalMs)} ms)`,
          false,
        );
      }
    } catch (error) {
      const line = `FAIL ${input}: ${describe(error)}`;
      failures.push(line);
      report(line, true);
    }
    bar?.increment(1, { file: path.basename(input) });
  };

  // A small window of files in flight keeps the worker's pipeline full without reading a whole
  // folder of photos into memory at once.
  let next = 0;
  const lanes = Array.from({ length: 3 }, async () => {
    while (next < options.inputs.length) await processOne(next++);
  });
  try {
    await Promise.all(lanes);
  } finally {
    bar?.stop();
    await engine.dispose();
  }
  console.log(
    `${succeeded} of ${options.inputs.length} cut out into ${options.outDir}${failures.length ? `, ${failures.length} failed` : ''}.`,
  );
  return failures.length === 0 ? 0 : 1;
}
