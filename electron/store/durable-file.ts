import { randomUUID } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/** Suffix of files being written; anything left with it after a crash is swept at start. */
export const TEMP_SUFFIX = '.tmp';

/**
 * Makes a rename (or a create/delete) in `dir` durable: POSIX only promises it once the
 * directory itself is fsynced. Windows cannot open a directory for this; NTFS journals the
 * rename itself.
 */
export async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes a whole file durably: temp name, fsync, rename, fsync of the folder. A reader never
 * sees half a file, and after a power cut the file is either the old one or the new one.
 */
export async function writeDurably(file: string, bytes: Uint8Array): Promise<void> {
  const temp = `${file}.${randomUUID()}${TEMP_SUFFIX}`;
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  await rename(temp, file);
  await syncDirectory(path.dirname(file));
}
