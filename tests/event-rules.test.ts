/**
 * The rules an event day leans on, each against a real relay and the real model: exactly once
 * with Idempotency-Key, moderation while a photo is in line, attempts and crash loops, the PIN
 * kept by the data folder, the sweep, a damaged background image, the dashboard's pushed feed.
 * A gate in front of the real engine holds photos "in line" for as long as a test needs.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import type { DashboardMessage } from '../shared/protocol.ts';
import { loadRelayConfig } from '../electron/config/relay-config.ts';
import { createEngine, type Engine } from '../electron/engine/index.ts';
import { createRelay } from '../electron/relay/app.ts';
import { createLogger } from '../electron/relay/logger.ts';
import { PhotoStore } from '../electron/store/photo-store.ts';
import { modelMissingReason, syntheticPhoto } from './helpers.ts';
import { connectDisplay, PIN, startTestRelay, upload, type TestRelay } from './relay-helpers.ts';

const skipReason = await modelMissingReason('u2netp');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The real engine, but segment() waits while the gate is closed. */
function gatedEngine() {
  let open = true;
  let waiters: (() => void)[] = [];
  const gate = {
    close() {
      open = false;
    },
    open() {
      open = true;
      for (const waiter of waiters.splice(0)) waiter();
    },
    createEngine: async (
      model: string,
      config: ReturnType<typeof loadRelayConfig>,
    ): Promise<Engine> => {
      const real = await createEngine({ model, modelsDir: config.modelsDir, threads: 1 });
      return Object.assign(Object.create(real) as Engine, {
        model: real.model,
        async segment(...args: Parameters<Engine['segment']>) {
          if (!open) await new Promise<void>((resolve) => waiters.push(resolve));
          return real.segment(...args);
        },
        dispose: () => {
          waiters = [];
          return real.dispose();
        },
      });
    },
  };
  return gate;
}

async function filesOf(relay: TestRelay, id: string): Promise<string[]> {
  const found: string[] = [];
  for (const folder of ['originals', 'cutouts', 'masks']) {
    for (const name of await readdir(path.join(relay.dataDir, folder)))
      if (name.startsWith(id)) found.push(`${folder}/${name}`);
  }
  return found;
}

function adminFetch(relay: TestRelay, route: string, init: RequestInit = {}) {
  return fetch(`${relay.url}/admin/api${route}`, {
    ...init,
    headers: {
      Authorization: `Bearer ${relay.relay.config.adminToken}`,
      ...(init.headers as Record<string, string> | undefined),
    },
  });
}

/** Resolves once the relay has `count` photos in its store (any state). */
async function photoCount(relay: TestRelay, count: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (relay.relay.store.list(1000).length >= count) return;
    await sleep(25);
  }
  throw new Error(`the relay never had ${count} photos`);
}

describe.skipIf(skipReason)('exactly once with Idempotency-Key', () => {
  let relay: TestRelay;
  const gate = gatedEngine();
  beforeAll(async () => {
    relay = await startTestRelay({}, undefined, { createEngine: gate.createEngine });
  });
  afterAll(() => relay.close());

  test('a resend after the answer, and one while the first is in line, get the same id; one photo, one broadcast', async () => {
    const display = await connectDisplay(relay.wsUrl);
    const photo = await syntheticPhoto(400, 300);
    const key = randomUUID();
    const first = await upload(relay.url, photo, { headers: { 'Idempotency-Key': key } });
    expect(first.status).toBe(200);
    const again = await upload(relay.url, photo, { headers: { 'Idempotency-Key': key } });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);

    gate.close();
    const other = randomUUID();
    const inLine = upload(relay.url, photo, { headers: { 'Idempotency-Key': other } });
    const resend = upload(relay.url, photo, { headers: { 'Idempotency-Key': other } });
    await photoCount(relay, 2);
    await sleep(200);
    gate.open();
    const [a, b] = await Promise.all([inLine, resend]);
    expect(a.status).toBe(200);
    expect(b.body.id).toBe(a.body.id);

    await sleep(300);
    expect(relay.relay.store.list(100)).toHaveLength(2);
    expect(display.messages).toHaveLength(2);
    display.close();
  });

  test('the same key with another photo is 422; a key whose first try was refused is free', async () => {
    const key = randomUUID();
    const refused = await upload(relay.url, Buffer.from('not an image at all'), {
      headers: { 'Idempotency-Key': key },
    });
    expect(refused.status).toBe(415);
    const photo = await syntheticPhoto(320, 240);
    const accepted = await upload(relay.url, photo, { headers: { 'Idempotency-Key': key } });
    expect(accepted.status).toBe(200);
    const reused = await upload(relay.url, await syntheticPhoto(330, 240), {
      headers: { 'Idempotency-Key': key },
    });
    expect(reused).toMatchObject({ status: 422, body: { code: 'E_IDEMPOTENCY_KEY_REUSED' } });
    const bad = await upload(relay.url, photo, { headers: { 'Idempotency-Key': 'a b' } });
    expect(bad).toMatchObject({ status: 400, body: { code: 'E_IDEMPOTENCY_KEY_INVALID' } });
  });
});

describe.skipIf(skipReason)('keys expire; one relay per data folder', () => {
  test('a key older than 24 h is free again (a new photo, not a 507)', async () => {
    const relay = await startTestRelay();
    try {
      const key = randomUUID();
      const photo = await syntheticPhoto(320, 240);
      const first = await upload(relay.url, photo, { headers: { 'Idempotency-Key': key } });
      const now = Date.now();
      const later = vi.spyOn(Date, 'now').mockReturnValue(now + 25 * 3600 * 1000);
      try {
        const again = await upload(relay.url, photo, { headers: { 'Idempotency-Key': key } });
        expect(again.status).toBe(200);
        expect(again.body.id).not.toBe(first.body.id);
      } finally {
        later.mockRestore();
      }
    } finally {
      await relay.close();
    }
  });

  test('a second relay on the same data folder is refused; a lock left by a dead process is taken over', async () => {
    const relay = await startTestRelay();
    const config = relay.relay.config;
    const second = await createRelay(config, { logger: createLogger('error') }).catch(
      (error: unknown) => error as Error,
    );
    expect(second).toBeInstanceOf(Error);
    expect((second as Error).message).toMatch(
      new RegExp(`in use by another Photo Relay \\(process ${process.pid}\\)`),
    );
    await relay.close(true);
    await writeFile(path.join(relay.dataDir, 'relay.lock'), '999999999');
    const again = await startTestRelay({}, relay.dataDir);
    expect((await upload(again.url, await syntheticPhoto(300, 200))).status).toBe(200);
    await again.close();
  });
});

describe.skipIf(skipReason)('moderation while a photo is in line', () => {
  let relay: TestRelay;
  const gate = gatedEngine();
  beforeAll(async () => {
    relay = await startTestRelay({}, undefined, { createEngine: gate.createEngine });
  });
  afterAll(() => relay.close());

  test('deleted while queued: its upload is 410 at once, nothing is broadcast, no file is left, a resend stays 410', async () => {
    const display = await connectDisplay(relay.wsUrl, `pin=${PIN}&protocol=2&role=display`);
    await display.waitFor(1); // hello
    gate.close();
    const key = randomUUID();
    const photo = await syntheticPhoto(400, 300);
    const pending = upload(relay.url, photo, { headers: { 'Idempotency-Key': key } });
    const before = relay.relay.store.list(1000).length;
    await photoCount(relay, before + 1);
    const [record] = relay.relay.store.list(1);
    const deleted = await adminFetch(relay, `/photos/${record!.id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(204);
    const answer = await pending; // answered while the gate is still closed
    expect(answer).toMatchObject({ status: 410, body: { code: 'E_PHOTO_DELETED' } });
    gate.open();
    await sleep(1500);
    expect(display.messages.map((m) => (JSON.parse(m) as { type: string }).type)).toEqual([
      'hello',
      'removed',
    ]);
    expect(await filesOf(relay, record!.id)).toEqual([]);
    const resend = await upload(relay.url, photo, { headers: { 'Idempotency-Key': key } });
    expect(resend).toMatchObject({ status: 410, body: { code: 'E_PHOTO_DELETED' } });
    expect(relay.relay.store.get(record!.id)).toBeUndefined();
    display.close();
  });

  test('hidden before it is done: never broadcast; shown later, it arrives once', async () => {
    const display = await connectDisplay(relay.wsUrl);
    gate.close();
    const pending = upload(relay.url, await syntheticPhoto(420, 300));
    const before = relay.relay.store.list(1000).length;
    await photoCount(relay, before + 1);
    const [record] = relay.relay.store.list(1);
    expect((await adminFetch(relay, `/photos/${record!.id}/hide`, { method: 'POST' })).status).toBe(
      200,
    );
    gate.open();
    expect((await pending).status).toBe(200);
    await sleep(300);
    expect(display.messages).toHaveLength(0);
    expect(relay.relay.store.listOnWalls(100).map((r) => r.id)).not.toContain(record!.id);
    await adminFetch(relay, `/photos/${record!.id}/show`, { method: 'POST' });
    await display.waitFor(1);
    await sleep(200);
    expect(display.messages).toHaveLength(1);
    display.close();
  });
});

describe('attempts and crash loops (the store)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-store-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  test('in progress at two deaths → failed E_ENGINE_CRASHED; a stop does not count', async () => {
    const store = new PhotoStore(dir);
    const input = {
      bytes: Buffer.from('x'),
      inputFormat: 'jpeg',
      description: '',
      originalFilename: 'a.jpg',
      receivedAt: new Date(),
    };
    const crashing = await store.accept(input);
    const stopped = await store.accept(input);
    // Run 1 dies with the first in progress; a stop interrupts the second (not counted).
    expect(store.markProcessing(crashing.id)).toMatchObject({ attempts: 1 });
    expect(store.markProcessing(stopped.id)).toMatchObject({ status: 'processing' });
    store.backToQueue(stopped.id);
    let recovered = store.recoverUnfinished(2);
    expect(recovered.crashLooped).toEqual([]);
    expect(recovered.resume.map((r) => r.id)).toEqual([crashing.id, stopped.id]);
    // Run 2 dies with it in progress again.
    store.markProcessing(crashing.id);
    recovered = store.recoverUnfinished(2);
    expect(recovered.crashLooped.map((r) => [r.id, r.status, r.errorCode, r.attempts])).toEqual([
      [crashing.id, 'failed', 'E_ENGINE_CRASHED', 2],
    ]);
    expect(recovered.resume.map((r) => r.id)).toEqual([stopped.id]);
    expect(store.get(stopped.id)!.attempts).toBe(0);
    // Retry from the dashboard keeps the count: a known crasher still runs alone.
    expect(store.requeue(crashing.id)).toMatchObject({ status: 'queued', attempts: 2 });
    store.close();
  });

  test('the sweep removes temp files and files no row points at, and keeps the rest', async () => {
    const store = new PhotoStore(dir);
    const kept = await store.accept({
      bytes: Buffer.from('y'),
      inputFormat: 'png',
      description: '',
      originalFilename: 'b.png',
      receivedAt: new Date(),
    });
    const orphan = path.join(dir, 'originals', `${randomUUID()}.jpg`);
    const temp = path.join(dir, 'cutouts', `${kept.id}.png.${randomUUID()}.tmp`);
    await writeFile(orphan, 'o');
    await writeFile(temp, 't');
    expect(await store.sweep()).toBe(2);
    expect(await readdir(path.join(dir, 'originals'))).toContain(`${kept.id}.png`);
    expect(await readdir(path.join(dir, 'cutouts'))).toEqual([]);
    store.close();
  });
});

describe.skipIf(skipReason)('the event survives restarts', () => {
  test('the PIN is made once per data folder; a rotation is kept; a changed EVENT_PIN is a new decision', async () => {
    const unset = { EVENT_PIN: '' };
    let relay = await startTestRelay(unset);
    const dataDir = relay.dataDir;
    const pin = relay.relay.settings.current().pin!;
    expect(pin).toMatch(/^\d{6}$/);
    await relay.close(true);
    relay = await startTestRelay(unset, dataDir);
    expect(relay.relay.settings.current().pin).toBe(pin);
    const photo = await syntheticPhoto(300, 200);
    expect((await upload(relay.url, photo, { pin })).status).toBe(200);
    const rotated = (await (await adminFetch(relay, '/pin/rotate', { method: 'POST' })).json()) as {
      pin: string;
    };
    await relay.close(true);
    relay = await startTestRelay(unset, dataDir);
    expect(relay.relay.settings.current().pin).toBe(rotated.pin);
    expect((await upload(relay.url, photo, { pin })).status).toBe(401);
    await relay.close(true);
    relay = await startTestRelay({ EVENT_PIN: 'hall2026' }, dataDir);
    expect(relay.relay.settings.current().pin).toBe('hall2026');
    await adminFetch(relay, '/pin/rotate', { method: 'POST' });
    const afterRotation = relay.relay.settings.current().pin;
    await relay.close(true);
    // The same EVENT_PIN again is no new decision: the rotation stands.
    relay = await startTestRelay({ EVENT_PIN: 'hall2026' }, dataDir);
    expect(relay.relay.settings.current().pin).toBe(afterRotation);
    await relay.close();
  });

  test('a damaged background image falls back to transparent and never fails an upload', async () => {
    let relay = await startTestRelay();
    const dataDir = relay.dataDir;
    const background = await syntheticPhoto(640, 480);
    const put = await adminFetch(relay, '/background-image', {
      method: 'PUT',
      headers: { 'Content-Type': 'image/jpeg' },
      body: background,
    });
    expect(put.status).toBe(200);
    await adminFetch(relay, '/settings', {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ background: 'image' }),
    });
    await relay.close(true);
    // Damaged on disk between runs: the header survives, the data does not.
    await writeFile(
      path.join(dataDir, 'background-image.jpeg'),
      Buffer.concat([background.subarray(0, 600), Buffer.alloc(4000, 0x55)]),
    );
    relay = await startTestRelay({}, dataDir);
    expect(relay.relay.settings.current().background).toBe('transparent');
    expect((await upload(relay.url, await syntheticPhoto(300, 200))).status).toBe(200);
    const broken = await adminFetch(relay, '/background-image', {
      method: 'PUT',
      headers: { 'Content-Type': 'image/jpeg' },
      body: Buffer.concat([background.subarray(0, 600), Buffer.alloc(4000, 0x55)]),
    });
    expect(broken.status).toBe(422);
    await relay.close();
  });
});

describe.skipIf(skipReason)('the dashboard feed and downloads', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay();
  });
  afterAll(() => relay.close());

  test('role=dashboard needs the admin token; it gets a snapshot, then every change of a photo', async () => {
    const base = relay.wsUrl.replace('127.0.0.1', 'localhost');
    const refused = await new Promise<number>((resolve) => {
      const socket = new WebSocket(`${base}?protocol=2&role=dashboard&token=wrong`);
      socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.on('open', () => resolve(101));
    });
    expect(refused).toBe(403);
    const messages: DashboardMessage[] = [];
    const socket = new WebSocket(
      `${base}?protocol=2&role=dashboard&token=${relay.relay.config.adminToken}`,
    );
    socket.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as DashboardMessage | { type: 'hello' };
      if (message.type !== 'hello') messages.push(message);
    });
    await new Promise((resolve) => socket.once('open', resolve));
    await sleep(200);
    const snapshot = messages[0];
    expect(snapshot?.type).toBe('admin.snapshot');
    if (snapshot?.type !== 'admin.snapshot') return;
    expect(snapshot.metrics.lifecycle.starts).toBe(1);
    expect(snapshot.metrics.disk.freeBytes).toBeGreaterThan(0);
    expect(snapshot.clients.some((client) => client.role === 'dashboard')).toBe(true);

    const { body } = await upload(relay.url, await syntheticPhoto(300, 200));
    await sleep(200);
    const states = messages
      .filter((m) => m.type === 'admin.photo' && m.photo.id === body.id)
      .map((m) => (m.type === 'admin.photo' ? m.photo.status : ''));
    expect(states[0]).toBe('queued');
    expect(states).toContain('processing');
    expect(states.at(-1)).toBe('done');
    await adminFetch(relay, `/photos/${String(body.id)}`, { method: 'DELETE' });
    await sleep(100);
    expect(messages.at(-1)).toEqual({ type: 'admin.photo-removed', id: body.id });
    socket.close();
  });

  test('"Download all" is a single-use link that streams the zip', async () => {
    const link = (await (await adminFetch(relay, '/export-links', { method: 'POST' })).json()) as {
      url: string;
    };
    const first = await fetch(`${relay.url}${link.url}`);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toMatch(/zip/);
    expect((await first.arrayBuffer()).byteLength).toBeGreaterThan(100);
    expect((await fetch(`${relay.url}${link.url}`)).status).toBe(403);
  });
});
