import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from 'vitest';
import { modelMissingReason, repoRoot, syntheticPhoto } from './helpers.ts';
import { freePort, upload } from './relay-helpers.ts';

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
    const child = spawn(process.execPath, [path.join(repoRoot, 'out/app/electron/serve.js')], {
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        EVENT_PIN: '4321',
        DATA_DIR: dataDir,
        LOG_LEVEL: 'ERROR',
        PERF_LOG_SECONDS: '0',
        NODE_OPTIONS: '',
      },
      stdio: 'ignore',
    });
    try {
      const base = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 100; i++) {
        if (
          await fetch(`${base}/healthz`).then(
            (r) => r.ok,
            () => false,
          )
        )
          break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const response = await upload(base, await syntheticPhoto(400, 300));
      expect(response.status).toBe(200);
      expect((await fetch(`${base}/admin`)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      await rm(dataDir, { recursive: true, force: true });
    }
  },
  120_000,
);
