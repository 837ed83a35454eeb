import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Bad command-line arguments: exit code 2 and the usage text. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** node:util parseArgs with its errors turned into UsageError (exit 2). */
export function parseCommandLine<T extends ParseArgsConfig>(config: T) {
  try {
    return parseArgs(config);
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}
