import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { modelMissingReason, syntheticPhoto } from './helpers.ts';
import { connectDisplay, freePort, spawnRelay, upload, waitHealthy } from './relay-helpers.ts';

/** The relay as `npm run serve` runs it: its own process, so it can be killed for real. */
const skipReason = await modelMissingReason('u2netp');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-proc-'));
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

test('bad environment: exits non-zero before listening, naming every bad variable', async () => {
  const port = await freePort();
  const served = spawnRelay({
    PORT: String(port),
    LOG_LEVEL: 'chatty',
    MAX_UPLOAD_SIZE: 'lots',
    CORS_ORIGINS: 'not a url',
  });
  const code = await served.exited;
  expect(code).toBe(2);
  for (const name of ['LOG_LEVEL', 'MAX_UPLOAD_SIZE', 'CORS_ORIGINS'])
    expect(served.output()).toContain(`${name}=`);
  expect(
    await fetch(`http://127.0.0.1:${port}/healthz`).then(
      () => 'listening',
      () => 'not listening',
    ),
  ).toBe('not listening');
});

describe.skipIf(skipReason)('durability and shutdown', () => {
  test('kill -9 mid-burst, restart on the same DATA_DIR: every photo answered 200 is there, none stuck', async () => {
    const port = await freePort();
    const adminToken = 'kill-test-admin-token-0123456789';
    const env = {
      PORT: String(port),
      DATA_DIR: dataDir,
      UPLOADS_PER_MINUTE: '10000',
      ADMIN_TOKEN: adminToken,
    };
    const first = spawnRelay(env);
    await waitHealthy(first);
    const photos = await Promise.all(
      Array.from({ length: 10 }, (_, i) => syntheticPhoto(1000 + i * 8, 750)),
    );
    const answered: string[] = [];
    const attempts = photos.map((photo, i) =>
      upload(first.url, photo, { description: `burst-${i}` }).then(
        (response) => {
          if (response.status === 200) answered.push(String(response.body.id));
        },
        () => undefined, // the connection died with the process
      ),
    );
    while (answered.length < 3) await sleep(10);
    first.child.kill('SIGKILL');
    await first.exited;
    await Promise.all(attempts);
    expect(answered.length).toBeGreaterThanOrEqual(3);
    expect(answered.length).toBeLessThan(10); // the kill really landed mid-burst

    const second = spawnRelay(env);
    try {
      await waitHealthy(second);
      let items: { id: string; status: string; description: string }[] = [];
      const deadline = Date.now() + 30_000;
      do {
        await sleep(200);
        // The operator's list: guests see only photos on the walls, never queued or processing.
        items = (await (
          await fetch(`${second.url}/admin/api/photos?limit=100`, {
            headers: { Authorization: `Bearer ${adminToken}` },
          })
        ).json()) as typeof items;
      } while (
        items.some((item) => item.status === 'queued' || item.status === 'processing') &&
        Date.now() < deadline
      );
      const byId = new Map(items.map((item) => [item.id, item]));
      for (const id of answered) expect(byId.get(id)?.status, `photo ${id}`).toBe('done');
      expect(
        items.filter((item) => item.status === 'queued' || item.status === 'processing'),
      ).toEqual([]);
      // Photos accepted but not yet answered when the process died were resumed, not dropped.
      expect(items.every((item) => item.status === 'done')).toBe(true);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  }, 120_000);

  test('SIGTERM: stops promptly with displays and keep-alive connections open, exit 0', async () => {
    const port = await freePort();
    const served = spawnRelay({ PORT: String(port), DATA_DIR: dataDir });
    await waitHealthy(served);
    const display = await connectDisplay(`ws://127.0.0.1:${port}/ws`);
    const agent = await fetch(`${served.url}/healthz`, { keepalive: true });
    expect(agent.status).toBe(200);
    const closed = new Promise<number>((resolve) =>
      display.socket.once('close', (code) => resolve(code)),
    );
    const started = Date.now();
    served.child.kill('SIGTERM');
    expect(await served.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(8000);
    expect(await closed).toBe(1001);
  }, 60_000);
});
