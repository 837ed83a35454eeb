import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { PhotoRelayError } from '../../shared/errors.ts';
import { syncDirectory, writeDurably } from '../store/durable-file.ts';

const PREFIX = 'background-image.';

/** A full decode (every pixel, libvips failing on any error): only an image that can be used. */
async function decodesFully(bytes: Uint8Array): Promise<boolean> {
  try {
    await sharp(bytes, { failOn: 'error' }).raw().toBuffer();
    return true;
  } catch {
    return false;
  }
}

/**
 * The operator's background image, kept in DATA_DIR and in memory (it goes with every job). It
 * is written durably and only after a full decode, so a broken file can never reach the engine;
 * one that still turns out unusable (damaged on disk) is dropped and the walls get transparent
 * cut-outs: a background never fails an upload.
 */
export class BackgroundImage {
  bytes: Buffer | undefined;

  private constructor(private readonly dataDir: string) {}

  /** Loads the stored image if it still decodes; a damaged one is removed (and logged by the caller). */
  static async load(
    dataDir: string,
  ): Promise<{ image: BackgroundImage; dropped: string | undefined }> {
    const image = new BackgroundImage(dataDir);
    const file = (await readdir(dataDir)).find((name) => name.startsWith(PREFIX));
    if (!file) return { image, dropped: undefined };
    const bytes = await readFile(path.join(dataDir, file));
    if (await decodesFully(bytes)) {
      image.bytes = bytes;
      return { image, dropped: undefined };
    }
    await image.clear();
    return { image, dropped: file };
  }

  async set(bytes: Buffer, format: string): Promise<void> {
    if (!(await decodesFully(bytes))) {
      throw new PhotoRelayError(
        'E_CORRUPT_IMAGE',
        'The background image is damaged: it cannot be decoded. Export it again and upload it.',
      );
    }
    const target = `${PREFIX}${format}`;
    await writeDurably(path.join(this.dataDir, target), bytes);
    for (const name of await readdir(this.dataDir)) {
      if (name.startsWith(PREFIX) && name !== target && !name.includes('.tmp'))
        await rm(path.join(this.dataDir, name), { force: true });
    }
    this.bytes = bytes;
  }

  /** Forgets the image (it turned out unusable). */
  async clear(): Promise<void> {
    this.bytes = undefined;
    for (const name of await readdir(this.dataDir)) {
      if (name.startsWith(PREFIX)) await rm(path.join(this.dataDir, name), { force: true });
    }
    await syncDirectory(this.dataDir);
  }
}
