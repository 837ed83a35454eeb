import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PhotoRelayError } from '../shared/errors.ts';
import type { ServerMessageV2 } from '../shared/protocol.ts';
import type { RelayConfig } from '../electron/config/relay-config.ts';
import { createEngine, type Engine } from '../electron/engine/index.ts';
import { EngineTurns } from '../electron/relay/engine-turns.ts';
import { FULL_RENDER_LIMITS } from '../electron/relay/processor.ts';
import { modelMissingReason, noisyPhoto, sharedFile, syntheticPhoto } from './helpers.ts';
import {
  connectDisplay,
  PIN,
  startTestRelay,
  upload,
  type Display,
  type TestRelay,
} from './relay-helpers.ts';

/**
 * Issue 10 §1: guests see what the walls see, nothing more. A hidden, a held (approval mode) and
 * a failed photo are absent from every guest route for the PIN and for a wall's credential, and
 * present for the operator; originals (with their EXIF GPS position) and full-size renders are
 * the operator's; nothing a guest is served carries EXIF; full-size renders are bounded (queue,
 * disk budget) and never take an upload's turn. Real relay, real model.
 */
const skipReason = await modelMissingReason('u2netp');
if (skipReason) console.warn(`Skipping guest visibility tests: ${skipReason}`);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
const MISSING_ID = '00000000-0000-0000-0000-000000000000';
/** FULL_RENDER_CACHE_MB for the relay under test. */
const CACHE_MB = 1;

describe('low-priority engine turns (full-size renders)', () => {
  test('granted only while no photo waits, never the last free turn, never beside a suspect', async () => {
    const turns = new EngineTurns(2);
    const log: string[] = [];
    const ends = new Map<string, () => void>();
    const take = (name: string, kind: 'photo' | 'suspect' | 'low') =>
      void (kind === 'low' ? turns.takeLow() : turns.take(kind === 'suspect')).then((end) => {
        log.push(name);
        ends.set(name, end);
      });
    take('render1', 'low');
    take('render2', 'low');
    await tick();
    expect(log).toEqual(['render1']); // one turn stays free for a photo
    take('a', 'photo');
    await tick();
    expect(log).toEqual(['render1', 'a']); // the photo did not wait for the render
    take('b', 'photo');
    ends.get('render1')!();
    await tick();
    expect(log).toEqual(['render1', 'a', 'b']); // the freed turn went to the waiting photo
    ends.get('a')!();
    await tick();
    expect(log).toEqual(['render1', 'a', 'b', 'render2']); // no photo waits any more
    take('suspect', 'suspect');
    take('render3', 'low');
    ends.get('b')!();
    ends.get('render2')!();
    ends.get('render2')!(); // ending twice gives back one turn only
    await tick();
    expect(log).toEqual(['render1', 'a', 'b', 'render2', 'suspect']); // alone: no render beside it
    ends.get('suspect')!();
    await tick();
    expect(log.at(-1)).toBe('render3');

    const single = new EngineTurns(1);
    const order: string[] = [];
    void single.takeLow().then((end) => {
      order.push('render');
      setTimeout(end, 5);
    });
    void single.take(false).then(() => order.push('photo'));
    await sleep(20);
    expect(order).toEqual(['render', 'photo']); // capacity 1: a render may use the only turn
  });
});

/** The real engine, with gates a test can close: segments (photos in line), renders, a failure. */
function controlledEngine() {
  const gate = () => {
    let open = true;
    let waiters: (() => void)[] = [];
    return {
      close: () => void (open = false),
      open: () => {
        open = true;
        for (const resolve of waiters.splice(0)) resolve();
      },
      pass: () =>
        open ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve)),
      drop: () => void (waiters = []),
    };
  };
  const segments = gate();
  const renders = gate();
  const state = { failNext: false, renderCalls: 0, rendersInEngine: 0, maxRendersInEngine: 0 };
  return {
    segments,
    renders,
    state,
    openAll() {
      segments.open();
      renders.open();
    },
    createEngine: async (model: string, config: RelayConfig): Promise<Engine> => {
      const real = await createEngine({ model, modelsDir: config.modelsDir, threads: 1 });
      return Object.assign(Object.create(real) as Engine, {
        model: real.model,
        async segment(...args: Parameters<Engine['segment']>) {
          if (state.failNext) {
            state.failNext = false;
            throw new PhotoRelayError('E_PROCESSING_FAILED', 'this photo fails (test)');
          }
          await segments.pass();
          return real.segment(...args);
        },
        async render(...args: Parameters<Engine['render']>) {
          state.renderCalls++;
          state.rendersInEngine++;
          state.maxRendersInEngine = Math.max(state.maxRendersInEngine, state.rendersInEngine);
          try {
            await renders.pass();
            return await real.render(...args);
          } finally {
            state.rendersInEngine--;
          }
        },
        dispose: () => {
          segments.drop();
          renders.drop();
          return real.dispose();
        },
      });
    },
  };
}

/** A real photo (or a synthetic one where ../shared is absent) tagged with a GPS position. */
async function photoWithGps(): Promise<Buffer> {
  const real = sharedFile('photos/people/rembg_girl-1.jpg');
  const base = real ? sharp(real) : sharp(await syntheticPhoto(800, 600));
  return base
    .withExif({
      IFD0: { Make: 'TestPhone', Model: 'Guest 1' },
      IFD3: {
        GPSLatitudeRef: 'N',
        GPSLatitude: '35/1 39/1 2958/100',
        GPSLongitudeRef: 'E',
        GPSLongitude: '139/1 44/1 2814/100',
      },
    })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/** The GPS latitude (degrees) in an image's EXIF, read from the TIFF structure; undefined if none. */
async function gpsLatitude(image: Uint8Array): Promise<number | undefined> {
  const exif = (await sharp(image).metadata()).exif;
  if (!exif) return undefined;
  const tiff = exif.subarray(exif.toString('latin1', 0, 4) === 'Exif' ? 6 : 0);
  const le = tiff.toString('latin1', 0, 2) === 'II';
  const u16 = (at: number) => (le ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at));
  const u32 = (at: number) => (le ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at));
  const entry = (ifd: number, tag: number) => {
    for (let i = 0; i < u16(ifd); i++) if (u16(ifd + 2 + i * 12) === tag) return ifd + 2 + i * 12;
    return undefined;
  };
  const gpsPointer = entry(u32(4), 0x8825);
  if (gpsPointer === undefined) return undefined;
  const latitude = entry(u32(gpsPointer + 8), 0x0002);
  if (latitude === undefined) return undefined;
  const values = u32(latitude + 8);
  const rational = (i: number) => u32(values + i * 8) / u32(values + i * 8 + 4);
  return rational(0) + rational(1) / 60 + rational(2) / 3600;
}

/** A PNG with no EXIF, XMP or text chunk at all (where a GPS position could hide). */
async function expectNoMetadata(png: Buffer): Promise<void> {
  const meta = await sharp(png).metadata();
  expect(meta.format).toBe('png');
  expect(meta.exif).toBeUndefined();
  expect(meta.xmp).toBeUndefined();
  const chunks: string[] = [];
  for (let at = 8; at + 8 <= png.length; at += 12 + png.readUInt32BE(at)) {
    chunks.push(png.toString('latin1', at + 4, at + 8));
  }
  expect(chunks.at(-1)).toBe('IEND');
  expect(chunks.filter((type) => ['eXIf', 'tEXt', 'zTXt', 'iTXt'].includes(type))).toEqual([]);
  expect(png.includes('Exif')).toBe(false);
  expect(await gpsLatitude(png)).toBeUndefined();
}

async function hello(display: Display) {
  const message = JSON.parse((await display.waitFor(1))[0]!) as ServerMessageV2;
  if (message.type !== 'hello') throw new Error(`expected a hello, got ${message.type}`);
  return message;
}

/** Sizes of the kept full-size renders on disk. */
async function keptFullRenders(relay: TestRelay): Promise<{ name: string; size: number }[]> {
  const dir = path.join(relay.dataDir, 'cutouts');
  const names = (await readdir(dir)).filter((name) => name.endsWith('.full.png'));
  return Promise.all(
    names.map(async (name) => ({ name, size: (await stat(path.join(dir, name))).size })),
  );
}

describe.skipIf(skipReason)('guests see what the walls see, nothing more', () => {
  const engine = controlledEngine();
  let relay: TestRelay;
  let gpsPhoto: Buffer;
  let wallToken: string;
  /** Connected before any upload: what the walls were sent. */
  let original: Display;
  let wall: Display;
  const ids = { shown: '', hidden: '', held: '', failed: '' };

  const admin = (route: string, init: RequestInit = {}) =>
    fetch(`${relay.url}/admin/api${route}`, {
      ...init,
      headers: {
        Authorization: `Bearer ${relay.relay.config.adminToken}`,
        ...(init.body ? { 'Content-Type': 'application/json' } : {}),
      },
    });
  const guests = (): { name: string; headers: Record<string, string> }[] => [
    { name: 'PIN', headers: { 'X-Event-Pin': PIN } },
    { name: 'wall', headers: { 'X-Wall-Token': wallToken } },
  ];
  const get = (route: string, headers: Record<string, string>) =>
    fetch(`${relay.url}${route}`, { headers });
  /** Status and body, with the photo id in the message replaced (a missing id must read alike). */
  const answer = async (response: Response, id: string) => {
    const body = (await response.json()) as Record<string, unknown>;
    return {
      status: response.status,
      body: { ...body, message: String(body.message).replaceAll(id, '<id>') },
    };
  };

  beforeAll(async () => {
    relay = await startTestRelay({ FULL_RENDER_CACHE_MB: String(CACHE_MB) }, undefined, {
      createEngine: engine.createEngine,
    });
    original = await connectDisplay(relay.wsUrl);
    wall = await connectDisplay(relay.wsUrl, `pin=${PIN}&protocol=2&role=display`);
    wallToken = (await hello(wall)).wallToken!;
    expect(wallToken).toBeTruthy();
    gpsPhoto = await photoWithGps();

    const shown = await upload(relay.url, gpsPhoto, { description: 'shown' });
    expect(shown.status).toBe(200);
    ids.shown = String(shown.body.id);

    // Hidden while still in line: it must never reach a wall.
    engine.segments.close();
    const pending = upload(relay.url, gpsPhoto, { description: 'hidden' });
    while (relay.relay.store.list(1)[0]?.description !== 'hidden') await sleep(10);
    ids.hidden = relay.relay.store.list(1)[0]!.id;
    expect((await admin(`/photos/${ids.hidden}/hide`, { method: 'POST' })).status).toBe(200);
    engine.segments.open();
    expect((await pending).status).toBe(200);

    const approval = (on: boolean) =>
      admin('/settings', { method: 'PUT', body: JSON.stringify({ approvalMode: on }) });
    expect((await approval(true)).status).toBe(200);
    const held = await upload(relay.url, gpsPhoto, { description: 'held' });
    expect(held.status).toBe(200);
    ids.held = String(held.body.id);
    expect((await approval(false)).status).toBe(200);

    engine.state.failNext = true;
    const failed = await upload(relay.url, gpsPhoto, { description: 'failed' });
    expect([failed.status, failed.body.code]).toEqual([500, 'E_PROCESSING_FAILED']);
    ids.failed = relay.relay.store.list(1)[0]!.id;
    await sleep(300); // any stray broadcast would have arrived
  });

  afterAll(async () => {
    engine.openAll();
    original.close();
    wall.close();
    await relay.close();
  });

  test('the operator sees all four photos in their states', async () => {
    const photos = (await (await admin('/photos?limit=100')).json()) as {
      id: string;
      status: string;
      hidden: boolean;
      approved: boolean;
    }[];
    const byId = new Map(photos.map((photo) => [photo.id, photo]));
    expect(byId.get(ids.shown)).toMatchObject({ status: 'done', hidden: false, approved: true });
    expect(byId.get(ids.hidden)).toMatchObject({ status: 'done', hidden: true });
    expect(byId.get(ids.held)).toMatchObject({ status: 'done', approved: false });
    expect(byId.get(ids.failed)).toMatchObject({ status: 'failed' });
    for (const id of [ids.hidden, ids.held]) {
      const cutout = await admin(`/photos/${id}/cutout`);
      expect([cutout.status, cutout.headers.get('content-type')]).toEqual([200, 'image/png']);
    }
    for (const id of Object.values(ids)) {
      const kept = await admin(`/photos/${id}/original`);
      expect(kept.status).toBe(200);
      expect(Buffer.from(await kept.arrayBuffer()).equals(gpsPhoto)).toBe(true);
    }
  });

  test('hidden, held and failed photos are absent from every guest route, for the PIN and a wall', async () => {
    const absent = [ids.hidden, ids.held, ids.failed];
    for (const guest of guests()) {
      const list = await get('/api/photos?limit=1000', guest.headers);
      expect(list.status, guest.name).toBe(200);
      const items = (await list.json()) as Record<string, unknown>[];
      expect(
        items.map((item) => item.id),
        guest.name,
      ).toEqual([ids.shown]);
      expect(Object.keys(items[0]!).sort()).toEqual(
        ['description', 'id', 'originalFilename', 'processingTime', 'status', 'timestamp'].sort(),
      );
      expect(items[0]!.status).toBe('done');

      const missing = await answer(
        await get(`/api/photos/${MISSING_ID}/cutout`, guest.headers),
        MISSING_ID,
      );
      expect(missing.status).toBe(404);
      // The PNG and protocol 2's compact WebP alike.
      for (const route of ['cutout', 'cutout.webp']) {
        for (const id of absent) {
          const cutout = await get(`/api/photos/${id}/${route}`, guest.headers);
          expect(await answer(cutout, id), `${guest.name} ${route}`).toEqual(missing);
        }
        const shown = await get(`/api/photos/${ids.shown}/${route}`, guest.headers);
        expect(shown.status, `${guest.name} ${route}`).toBe(200);
      }
      // Full-size renders are the operator's, even of a photo on the walls.
      const full = await get(`/api/photos/${ids.shown}/cutout?size=full`, guest.headers);
      expect(await answer(full, ids.shown), `${guest.name} full`).toEqual(missing);
    }

    // Detail and original need the PIN (a wall's credential opens only the list and cut-outs).
    const pin = { 'X-Event-Pin': PIN };
    const missingDetail = await answer(await get(`/api/photos/${MISSING_ID}`, pin), MISSING_ID);
    expect(missingDetail).toMatchObject({ status: 404, body: { code: 'E_NOT_FOUND' } });
    for (const id of absent) {
      expect(await answer(await get(`/api/photos/${id}`, pin), id)).toEqual(missingDetail);
    }
    const detail = (await (await get(`/api/photos/${ids.shown}`, pin)).json()) as {
      status: string;
      error: unknown;
    };
    expect(detail).toMatchObject({ status: 'done', error: null });
    for (const id of [...Object.values(ids), MISSING_ID]) {
      const kept = await get(`/api/photos/${id}/original`, pin);
      expect(await answer(kept, id), 'original').toEqual(missingDetail);
    }
    const wallHeaders = { 'X-Wall-Token': wallToken };
    expect((await get(`/api/photos/${ids.shown}`, wallHeaders)).status).toBe(401);
    expect((await get(`/api/photos/${ids.shown}/original`, wallHeaders)).status).toBe(401);

    // Protocol 2's history, for a wall reconnecting with its credential and a display with the PIN.
    for (const query of [`wall=${wallToken}`, `pin=${PIN}`]) {
      const display = await connectDisplay(relay.wsUrl, `${query}&protocol=2&role=display`);
      const history = (await hello(display)).history.map((photo) => photo.id);
      display.close();
      expect(history, query.split('=')[0]).toEqual([ids.shown]);
    }

    // What the walls were sent while the four photos came in: only the shown one.
    const sent = original.messages.map(
      (message) => (JSON.parse(message) as { metadata: { description: string } }).metadata,
    );
    expect(sent.map((metadata) => metadata.description)).toEqual(['shown']);
    const events = wall.messages.slice(1).map((message) => JSON.parse(message) as ServerMessageV2);
    expect(events.flatMap((event) => (event.type === 'photo' ? [event.photo.id] : []))).toEqual([
      ids.shown,
    ]);
  });

  test('a GPS-tagged original is never served to a guest, and no image a guest gets has EXIF', async () => {
    expect(await gpsLatitude(gpsPhoto)).toBeCloseTo(35 + 39 / 60 + 29.58 / 3600, 6);
    // The operator keeps the photo as it came, GPS included.
    const kept = Buffer.from(await (await admin(`/photos/${ids.shown}/original`)).arrayBuffer());
    expect(await gpsLatitude(kept)).toBeCloseTo(35.658, 3);

    for (const guest of guests()) {
      const cutout = await get(`/api/photos/${ids.shown}/cutout`, guest.headers);
      expect(cutout.headers.get('content-type')).toBe('image/png');
      await expectNoMetadata(Buffer.from(await cutout.arrayBuffer()));
      const compact = await get(`/api/photos/${ids.shown}/cutout.webp`, guest.headers);
      const meta = await sharp(Buffer.from(await compact.arrayBuffer())).metadata();
      expect([meta.format, meta.exif, meta.xmp]).toEqual(['webp', undefined, undefined]);
      const list = await (await get('/api/photos', guest.headers)).text();
      expect(list).not.toMatch(/gps|exif|TestPhone/i);
    }
    const detail = await (await get(`/api/photos/${ids.shown}`, { 'X-Event-Pin': PIN })).text();
    expect(detail).not.toMatch(/gps|exif|TestPhone/i);
    // Protocol 1 carries the image itself.
    const [message] = original.messages.map(
      (text) => JSON.parse(text) as { imageData: string; metadata: Record<string, unknown> },
    );
    expect(Object.keys(message!.metadata).sort()).toEqual([
      'description',
      'originalFilename',
      'processingTime',
    ]);
    await expectNoMetadata(Buffer.from(message!.imageData, 'base64'));
    // And the operator's full-size render has none either.
    const full = await admin(`/photos/${ids.shown}/cutout?size=full`);
    expect(full.status).toBe(200);
    await expectNoMetadata(Buffer.from(await full.arrayBuffer()));
  });

  test('full-size renders: a bounded queue (503 beyond it), uploads never wait for them, the disk cache stays under budget', async () => {
    const { running, waiting, retryAfterSeconds } = FULL_RENDER_LIMITS;
    const total = running + waiting + 2;
    const photos: { id: string; width: number; height: number }[] = [];
    for (let i = 0; i < total; i++) {
      const [width, height] = [900 + i * 8, 700];
      const sent = await upload(relay.url, await noisyPhoto(width, height));
      expect(sent.status).toBe(200);
      photos.push({ id: String(sent.body.id), width, height });
    }

    engine.renders.close();
    const callsBefore = engine.state.renderCalls;
    const settled = new Set<number>();
    const requests = photos.map((photo, i) =>
      admin(`/photos/${photo.id}/cutout?size=full`).then((response) => {
        settled.add(i);
        return response;
      }),
    );
    // The two beyond the line are refused at once; the rest wait.
    while (settled.size < total - running - waiting) await sleep(10);
    await sleep(200);
    expect(settled.size).toBe(total - running - waiting);
    const refused = await Promise.all([...settled].map((i) => requests[i]!));
    for (const response of refused) {
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe(String(retryAfterSeconds));
      expect(((await response.json()) as { code: string }).code).toBe('E_QUEUE_FULL');
    }
    // Only one render is inside the engine (a low-priority turn never takes the last free one)…
    expect(engine.state.renderCalls - callsBefore).toBe(1);
    // …so an upload goes through while renders are stuck.
    const started = performance.now();
    const meanwhile = await upload(relay.url, await syntheticPhoto(640, 480));
    expect(meanwhile.status).toBe(200);
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(settled.size).toBe(total - running - waiting);

    engine.renders.open();
    const accepted = photos.filter((_photo, i) => !settled.has(i));
    const rendered = await Promise.all(
      photos.map(async (photo, i) => ({ photo, response: await requests[i]! })),
    );
    for (const { photo, response } of rendered.filter((r) => accepted.includes(r.photo))) {
      expect(response.status).toBe(200);
      const meta = await sharp(Buffer.from(await response.arrayBuffer())).metadata();
      expect([meta.width, meta.height]).toEqual([photo.width, photo.height]);
    }
    expect(engine.state.maxRendersInEngine).toBe(1);

    // The cache: under its budget, oldest deleted first, the newest kept.
    const budget = CACHE_MB * 1024 * 1024;
    const kept = await keptFullRenders(relay);
    const keptBytes = kept.reduce((sum, file) => sum + file.size, 0);
    expect(keptBytes).toBeLessThanOrEqual(budget);
    expect(kept.length).toBeLessThan(accepted.length); // some were deleted to make room
    expect(kept.length).toBeGreaterThan(0);

    // A kept render is served from disk, without the engine.
    const keptId = kept[0]!.name.slice(0, 36);
    const calls = engine.state.renderCalls;
    const again = await admin(`/photos/${keptId}/cutout?size=full`);
    expect(again.status).toBe(200);
    expect(engine.state.renderCalls).toBe(calls);

    // A render larger than the whole budget is served but not kept.
    const big = await upload(relay.url, await noisyPhoto(2200, 1600));
    expect(big.status).toBe(200);
    const bigFull = await admin(`/photos/${String(big.body.id)}/cutout?size=full`);
    expect(bigFull.status).toBe(200);
    expect((await bigFull.arrayBuffer()).byteLength).toBeGreaterThan(budget);
    const after = await keptFullRenders(relay);
    expect(after.map((file) => file.name)).not.toContain(`${String(big.body.id)}.full.png`);
    expect(after.reduce((sum, file) => sum + file.size, 0)).toBeLessThanOrEqual(budget);
  });
});
