import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadRelayConfig, type RelayConfig } from '../config/relay-config.ts';
import { createRelay, type Relay } from '../relay/app.ts';

/**
 * What the desktop app runs, with no Electron in it (so it is tested in plain Node): config →
 * relay (which opens the store and loads the engine) → the dashboard address. `stop` undoes it in
 * reverse and is safe to call twice.
 */
export interface DesktopServices {
  relay: Relay;
  config: RelayConfig;
  /** The dashboard on loopback; the admin token travels separately (preload), not in the URL. */
  dashboardUrl: string;
  stop(): Promise<void>;
}

export interface DesktopOptions {
  env?: NodeJS.ProcessEnv;
  /** Electron's userData folder: photos go there unless DATA_DIR says otherwise. */
  userDataDir: string;
  /** Electron's resourcesPath: a packaged app ships the default model there. */
  resourcesDir?: string;
}

export async function startDesktopServices(options: DesktopOptions): Promise<DesktopServices> {
  const env = { ...(options.env ?? process.env) };
  env.DATA_DIR ||= path.join(options.userDataDir, 'data');
  const bundledModels = options.resourcesDir && path.join(options.resourcesDir, 'models');
  if (!env.MODELS_DIR && bundledModels && existsSync(bundledModels)) env.MODELS_DIR = bundledModels;
  const config = loadRelayConfig(env);
  const relay = await createRelay(config);
  const { port } = await relay.start();
  let stopped: Promise<void> | undefined;
  return {
    relay,
    config,
    dashboardUrl: `http://127.0.0.1:${port}/admin`,
    stop: () => (stopped ??= relay.stop()),
  };
}
