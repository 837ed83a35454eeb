// Before packaging: copy the default model from MODELS_DIR into out/models (verified by the
// project's own tooling), so electron-builder ships it as an extra resource.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const fromDir = process.env.MODELS_DIR
  ? path.resolve(process.env.MODELS_DIR)
  : execFileSync(process.execPath, [path.join(root, 'bin/photo-relay.mjs'), 'models', 'list'], {
      encoding: 'utf8',
    })
      .split('\n')[0]
      .replace('Models folder: ', '')
      .trim();
execFileSync(
  process.execPath,
  [
    path.join(root, 'bin/photo-relay.mjs'),
    'models',
    'install',
    '--from',
    fromDir,
    '--model',
    'u2netp',
  ],
  {
    stdio: 'inherit',
    env: { ...process.env, MODELS_DIR: path.join(root, 'out/models') },
  },
);
