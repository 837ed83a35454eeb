import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { PhotoRelayError } from '../../shared/errors.ts';

const LOCK_FILE = 'relay.lock';
/** Folders this process holds (two relays in one process must not share one either). */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One relay per data folder. A second one would sweep the first one's files being written and
 * race it in SQLite, so it is refused with the process that holds the folder. A lock left by a
 * process that no longer runs (kill -9, a crash, a power cut) is taken over. Returns the release.
 */
export function lockDataFolder(dataDir: string): () => void {
  const file = path.join(dataDir, LOCK_FILE);
  for (let tries = 0; tries < 3; tries++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      held.add(file);
      return () => {
        if (held.delete(file)) rmSync(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number(readFileSync(file, 'utf8').trim());
    if (held.has(file) || (owner !== process.pid && Number.isInteger(owner) && alive(owner))) {
      throw new PhotoRelayError(
        'E_STORAGE_FAILED',
        `The data folder ${dataDir} is in use by another Photo Relay (process ${held.has(file) ? process.pid : owner}). ` +
          `Stop it first, or choose another DATA_DIR. If no relay runs, delete ${file}.`,
      );
    }
    rmSync(file, { force: true }); // stale: its process is gone
  }
  throw new PhotoRelayError('E_STORAGE_FAILED', `Could not lock the data folder ${dataDir}.`);
}
