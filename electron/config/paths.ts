import path from 'node:path';
import envPaths from 'env-paths';

/** Per-user data folder (XDG on Linux, Application Support on macOS, AppData on Windows). */
export function userDataDir(): string {
  return envPaths('photo-relay', { suffix: '' }).data;
}

/** Where models live: `MODELS_DIR` when set, else `<user data>/models`. Never inside the repo. */
export function modelsDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.MODELS_DIR?.trim();
  return fromEnv ? path.resolve(fromEnv) : path.join(userDataDir(), 'models');
}
