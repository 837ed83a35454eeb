import { readdir, rm } from 'node:fs/promises';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The operator's background image, kept in DATA_DIR and in memory (it goes with every job). */
export class BackgroundImage {
  bytes: Buffer | undefined;

  constructor(private readonly dataDir: string) {
    const file = readdirSync(dataDir).find((name) => name.startsWith('background-image.'));
    if (file) this.bytes = readFileSync(path.join(dataDir, file));
  }

  async set(bytes: Buffer, format: string): Promise<void> {
    for (const name of await readdir(this.dataDir)) {
      if (name.startsWith('background-image.'))
        await rm(path.join(this.dataDir, name), { force: true });
    }
    writeFileSync(path.join(this.dataDir, `background-image.${format}`), bytes);
    this.bytes = bytes;
  }
}
