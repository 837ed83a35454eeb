import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * Writes a benchmark's figures to bench/results/<name>-<timestamp>.json with when and on what
 * machine they were measured (the figures of a shared, noisy machine mean little without it),
 * and says where.
 */
export async function writeResults(name: string, figures: Record<string, unknown>): Promise<void> {
  const dir = path.join(import.meta.dirname, 'results');
  await mkdir(dir, { recursive: true });
  const when = new Date().toISOString();
  const file = path.join(dir, `${name}-${when.replace(/[:.]/g, '-')}.json`);
  const machine = { cores: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version };
  await writeFile(file, JSON.stringify({ when, machine, ...figures }, null, 2));
  console.log(`\nJSON written to ${path.relative(process.cwd(), file)}`);
}
