import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from 'vitest';
import { modelMissingReason, repoRoot, syntheticPhoto } from './helpers.ts';
import { freePort, spawnRelay, upload, waitHealthy } from './relay-helpers.ts';

/**
 * The packaged app runs the compiled main process (out/app), not TypeScript through tsx: build it
 * as `npm run dist` does and run the relay from it in plain Node, engine worker included.
 */
const skipReason = await modelMissingReason('u2netp');

test.skipIf(skipReason)(
  'the compiled main process (npm run build:desktop) runs the relay end to end',
  async () => {
    execFileSync(process.execPath, [path.join(repoRoot, 'scripts/build-desktop.mjs')], {
      cwd: repoRoot,
      stdio: 'pipe',
    });
    const port = await freePort();
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-build-'));
    const relay = spawnRelay(
      { PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'ERROR', NODE_OPTIONS: '' },
      [path.join(repoRoot, 'out/app/electron/serve.js')],
    );
    try {
      await waitHealthy(relay);
      const response = await upload(relay.url, await syntheticPhoto(400, 300));
      expect(response.status).toBe(200);
      expect((await fetch(`${relay.url}/admin`)).status).toBe(200);
    } finally {
      relay.child.kill('SIGTERM');
      await relay.exited;
      await rm(dataDir, { recursive: true, force: true });
    }
  },
  120_000,
);
