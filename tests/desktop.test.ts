import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDesktopServices } from '../electron/app/desktop-services.ts';
import { modelMissingReason, repoRoot } from './helpers.ts';

/** The desktop shell's composition, in plain Node (Electron itself cannot be launched here). */
const skipReason = await modelMissingReason('u2netp');

test('only the shell files import electron (the rest runs in plain Node)', async () => {
  const importing: string[] = [];
  for (const folder of ['electron', 'shared']) {
    const entries = await readdir(path.join(repoRoot, folder), { recursive: true });
    for (const entry of entries.filter((name) => /\.(ts|mts|cts|js|mjs|cjs)$/.test(name))) {
      const source = await readFile(path.join(repoRoot, folder, entry), 'utf8');
      if (/from 'electron'|require\('electron'\)/.test(source))
        importing.push(`${folder}/${entry}`);
    }
  }
  expect(importing.sort()).toEqual(['electron/app/main.ts', 'electron/app/preload.cjs']);
});

test('the window is created with secure defaults', async () => {
  const main = await readFile(path.join(repoRoot, 'electron/app/main.ts'), 'utf8');
  for (const setting of [
    'contextIsolation: true',
    'sandbox: true',
    'nodeIntegration: false',
    "action: 'deny'",
    'requestSingleInstanceLock',
    'callback(false)',
  ]) {
    expect(main).toContain(setting);
  }
});

describe.skipIf(skipReason)('desktop composition', () => {
  let userData: string;
  beforeAll(async () => {
    userData = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-desktop-'));
  });
  afterAll(() => rm(userData, { recursive: true, force: true }));

  test('config → store → engine → relay; the dashboard on loopback; stop in reverse, twice is safe', async () => {
    const services = await startDesktopServices({
      userDataDir: userData,
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        EVENT_PIN: '2580',
        PERF_LOG_SECONDS: '0',
        LOG_LEVEL: 'ERROR',
      },
    });
    expect(services.config.dataDir).toBe(path.join(userData, 'data'));
    expect(services.dashboardUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/admin$/);
    const base = services.dashboardUrl.replace(/\/admin$/, '');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const overview = await fetch(`${base}/admin/api/overview`, {
      headers: { Authorization: `Bearer ${services.config.adminToken}` },
    });
    expect(overview.status).toBe(200);
    await services.stop();
    await services.stop();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});
