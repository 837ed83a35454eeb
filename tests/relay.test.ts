import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, loadRelayConfig } from '../electron/config/relay-config.ts';
import { createRelay } from '../electron/relay/app.ts';
import { createLogger } from '../electron/relay/logger.ts';
import { modelMissingReason, noisyPhoto, sharedFile, syntheticPhoto } from './helpers.ts';
import { connectDisplay, PIN, startTestRelay, upload, type TestRelay } from './relay-helpers.ts';

const skipReason = await modelMissingReason('u2netp');
if (skipReason) console.warn(`Skipping relay tests: ${skipReason}`);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('configuration', () => {
  test('every bad variable is named at once', () => {
    let error: unknown;
    try {
      loadRelayConfig({
        PORT: 'eighty',
        LOG_LEVEL: 'LOUD',
        MAX_UPLOAD_SIZE: '-3',
        MODEL: 'u3net',
        EVENT_PIN: '1',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const name of ['PORT', 'LOG_LEVEL', 'MAX_UPLOAD_SIZE', 'MODEL', 'EVENT_PIN']) {
      expect(problems).toContain(`${name}=`);
    }
  });

  test('defaults: port 8000 on all interfaces, INFO, 10 MB, the PIN left to the data folder', () => {
    const config = loadRelayConfig({ LOG_LEVEL: 'warning' });
    expect(config).toMatchObject({
      port: 8000,
      host: '0.0.0.0',
      logLevel: 'warn',
      maxUploadBytes: 10 * 1024 * 1024,
    });
    expect(config.eventPin).toBeUndefined();
    expect(loadRelayConfig({ EVENT_PIN: 'off' }).eventPin).toBeNull();
    expect(loadRelayConfig({ EVENT_PIN: 'abcd1234' }).eventPin).toBe('abcd1234');
  });

  test('an unusable DATA_DIR is a clear error, not a crash', async ({ skip }) => {
    if (skipReason) return skip(skipReason);
    const config = loadRelayConfig({ DATA_DIR: '/proc/version/data', PORT: '0' });
    const error = await createRelay(config, { logger: createLogger('error') }).catch(
      (e: unknown) => e,
    );
    expect((error as { code: string }).code).toBe('E_STORAGE_FAILED');
    expect((error as Error).message).toMatch(/\/proc\/version\/data/);
  });
});

describe.skipIf(skipReason)('the original contract', () => {
  let relay: TestRelay;
  let photo: Buffer;
  beforeAll(async () => {
    relay = await startTestRelay();
    photo = await syntheticPhoto(640, 480);
  });
  afterAll(() => relay.close());

  test('GET /healthz', async () => {
    const response = await fetch(`${relay.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'ok', model: 'u2netp' });
  });

  test('POST /upload/ answers exactly the original JSON after the display got exactly one image message', async () => {
    const display = await connectDisplay(relay.wsUrl);
    // (A double quote would reach us as %22: FormData encodes it, as browsers do.)
    const hostileName = "<img src=x onerror=alert(1)>'; rm -rf ~ ../../etc/passwd.jpg";
    const hostileText = '</script><script>alert("hi")</script> & 日本語 🎉';
    const response = await upload(relay.url, photo, {
      description: hostileText,
      filename: hostileName,
    });
    expect(response.status).toBe(200);
    expect(Object.keys(response.body).sort()).toEqual([
      'id',
      'message',
      'processingTime',
      'status',
    ]);
    expect(response.body.status).toBe('success');
    expect(response.body.message).toBe('Image processed and broadcast successfully');
    expect(typeof response.body.processingTime).toBe('number');
    // The message was sent before the answer: it is already here or on the wire.
    const [raw] = await display.waitFor(1);
    const message = JSON.parse(raw!) as Record<string, unknown> & {
      imageData: string;
      timestamp: string;
      metadata: Record<string, unknown>;
    };
    expect(Object.keys(message).sort()).toEqual(['imageData', 'metadata', 'timestamp']);
    expect(Object.keys(message.metadata).sort()).toEqual([
      'description',
      'originalFilename',
      'processingTime',
    ]);
    expect(message.metadata).toEqual({
      description: hostileText,
      originalFilename: hostileName,
      processingTime: response.body.processingTime,
    });
    expect(message.imageData).not.toMatch(/^data:/);
    const png = Buffer.from(message.imageData, 'base64');
    const meta = await sharp(png).metadata();
    expect([meta.format, meta.width, meta.height, meta.hasAlpha]).toEqual(['png', 640, 480, true]);
    expect(message.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const list = (await (
      await fetch(`${relay.url}/api/photos?limit=1&pin=${PIN}`)
    ).json()) as Record<string, unknown>[];
    expect(list).toEqual([
      {
        id: response.body.id,
        status: 'done',
        timestamp: message.timestamp,
        description: hostileText,
        originalFilename: hostileName,
        processingTime: response.body.processingTime,
      },
    ]);
    await sleep(200);
    expect(display.messages).toHaveLength(1);
    display.close();
  });

  test("cut-outs download by id; originals and the full-size cut-out (made on request) are the operator's", async () => {
    const big = await syntheticPhoto(1200, 800);
    const { body } = await upload(relay.url, big);
    const id = String(body.id);
    const operator = { headers: { Authorization: `Bearer ${relay.relay.config.adminToken}` } };
    const original = await fetch(`${relay.url}/admin/api/photos/${id}/original`, operator);
    expect(Buffer.from(await original.arrayBuffer()).equals(big)).toBe(true);
    const cutout = await fetch(`${relay.url}/api/photos/${id}/cutout`, {
      headers: { 'X-Event-Pin': PIN },
    });
    expect(cutout.headers.get('content-type')).toBe('image/png');
    const full = await fetch(`${relay.url}/admin/api/photos/${id}/cutout?size=full`, operator);
    const fullMeta = await sharp(Buffer.from(await full.arrayBuffer())).metadata();
    expect([fullMeta.width, fullMeta.height]).toEqual([1200, 800]);
    // The old public paths answer 404 to guests (tests/guest-visibility.test.ts), 401 without PIN.
    expect((await fetch(`${relay.url}/api/photos/${id}/original?pin=${PIN}`)).status).toBe(404);
    expect((await fetch(`${relay.url}/api/photos/${id}/cutout?size=full&pin=${PIN}`)).status).toBe(
      404,
    );
    expect((await fetch(`${relay.url}/api/photos/${id}/original`)).status).toBe(401);
    expect(
      (await fetch(`${relay.url}/api/photos/00000000-0000-0000-0000-000000000000?pin=${PIN}`))
        .status,
    ).toBe(404);
  });

  test('every bad input gets its status and code, and nothing is broadcast', async () => {
    const display = await connectDisplay(relay.wsUrl);
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    );
    const pdf = Buffer.from('%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF');
    const heic = Buffer.from([
      0,
      0,
      0,
      0x18,
      ...Buffer.from('ftypheic'),
      0,
      0,
      0,
      0,
      ...Buffer.from('mif1heic'),
    ]);
    const truncated = photo.subarray(0, Math.round(photo.length * 0.6));
    const cases: [string, Promise<Awaited<ReturnType<typeof upload>>>, number, string][] = [
      [
        'no image',
        upload(relay.url, photo, { noImage: true, description: 'x' }),
        400,
        'E_BAD_FORM',
      ],
      ['empty file', upload(relay.url, new Uint8Array()), 400, 'E_EMPTY_FILE'],
      [
        'two files',
        upload(relay.url, photo, { extra: [['image', new Blob([photo]), 'b.jpg']] }),
        400,
        'E_BAD_FORM',
      ],
      [
        'unknown file field',
        upload(relay.url, photo, { extra: [['photo', new Blob([photo]), 'b.jpg']] }),
        400,
        'E_BAD_FORM',
      ],
      [
        'long description',
        upload(relay.url, photo, { description: 'x'.repeat(1001) }),
        400,
        'E_DESCRIPTION_TOO_LONG',
      ],
      ['no PIN', upload(relay.url, photo, { pin: null }), 401, 'E_PIN_REQUIRED'],
      [
        'text named .jpg',
        upload(relay.url, Buffer.from('hello'), { filename: 'a.jpg' }),
        415,
        'E_UNSUPPORTED_FORMAT',
      ],
      ['PDF', upload(relay.url, pdf, { type: 'image/jpeg' }), 415, 'E_UNSUPPORTED_FORMAT'],
      ['SVG with script', upload(relay.url, svg, { type: 'image/png' }), 415, 'E_SVG_UNSUPPORTED'],
      [
        'fake HEIC',
        upload(relay.url, heic, { filename: 'IMG_0001.HEIC' }),
        415,
        'E_HEIC_UNSUPPORTED',
      ],
      ['truncated', upload(relay.url, truncated), 422, 'E_TRUNCATED_IMAGE'],
      [
        'corrupt',
        upload(
          relay.url,
          Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(500, 7)]),
        ),
        422,
        'E_CORRUPT_IMAGE',
      ],
    ];
    for (const [name, pending, status, code] of cases) {
      const response = await pending;
      expect([name, response.status, response.body.code]).toEqual([name, status, code]);
      expect(response.body.status).toBe('error');
      expect(String(response.body.message).length).toBeGreaterThan(5);
    }
    const heicResponse = await upload(relay.url, heic);
    expect(String(heicResponse.body.message)).toMatch(/JPEG/);
    for (const relative of [
      'edge-cases/sharp_giant_20000x14000.jpg',
      'edge-cases/sharp_truncated.jpg',
      'edge-cases/sharp_corrupt_header.jpg',
    ]) {
      const file = sharedFile(`photos/${relative}`);
      if (!file) continue; // the generated cases above cover these kinds
      const response = await upload(relay.url, await readFile(file));
      expect([relative, response.status]).toEqual([relative, 422]);
    }
    await sleep(300);
    expect(display.messages).toEqual([]);
    display.close();
  });

  test('protocol 2: hello with history, then photo events with URLs', async () => {
    const display = await connectDisplay(relay.wsUrl, `pin=${PIN}&protocol=2&role=display`);
    const [helloRaw] = await display.waitFor(1);
    const hello = JSON.parse(helloRaw!) as {
      type: string;
      protocol: number;
      history: { id: string }[];
      serverTime: string;
    };
    expect(hello).toMatchObject({ type: 'hello', protocol: 2 });
    expect(hello.history.length).toBeGreaterThan(0);
    const { body } = await upload(relay.url, photo, { description: 'v2' });
    const [, photoRaw] = await display.waitFor(2);
    const event = JSON.parse(photoRaw!) as {
      type: string;
      photo: { id: string; cutoutUrl: string; description: string };
    };
    expect(event).toMatchObject({ type: 'photo', photo: { id: body.id, description: 'v2' } });
    const cutout = await fetch(`${relay.url}${event.photo.cutoutUrl}?pin=${PIN}`);
    expect(cutout.status).toBe(200);
    display.close();
  });

  test('WebSocket: PIN required, foreign origins refused, own and listed origins allowed', async () => {
    await expect(connectDisplay(relay.wsUrl, '')).rejects.toMatchObject({ status: 401 });
    await expect(connectDisplay(relay.wsUrl, 'pin=0000')).rejects.toMatchObject({ status: 401 });
    await expect(
      connectDisplay(relay.wsUrl, `pin=${PIN}`, { Origin: 'http://evil.example' }),
    ).rejects.toMatchObject({ status: 403 });
    const own = await connectDisplay(relay.wsUrl, `pin=${PIN}`, { Origin: relay.url });
    own.close();
  });

  test('CORS: only the relay itself and CORS_ORIGINS; foreign POSTs refused', async () => {
    const preflight = await fetch(`${relay.url}/upload/`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    const foreign = await upload(relay.url, photo, { headers: { Origin: 'http://evil.example' } });
    expect([foreign.status, foreign.body.code]).toEqual([403, 'E_ORIGIN_FORBIDDEN']);
    const listed = await startTestRelay({ CORS_ORIGINS: 'http://kiosk.local:5173' });
    try {
      const ok = await fetch(`${listed.url}/healthz`, {
        headers: { Origin: 'http://kiosk.local:5173' },
      });
      expect(ok.headers.get('access-control-allow-origin')).toBe('http://kiosk.local:5173');
      const display = await connectDisplay(listed.wsUrl, `pin=${PIN}`, {
        Origin: 'http://kiosk.local:5173',
      });
      display.close();
    } finally {
      await listed.close();
    }
  });

  test('metrics: Prometheus text with the PIN; the admin API only with its token', async () => {
    const text = await (await fetch(`${relay.url}/metrics?pin=${PIN}`)).text();
    for (const name of [
      'photo_relay_ws_connections',
      'photo_relay_processing_seconds_bucket',
      'photo_relay_uploads_total',
      'photo_relay_errors_total',
      'photo_relay_queue_depth',
      'photo_relay_process_resident_memory_bytes',
    ]) {
      expect(text).toContain(name);
    }
    expect((await fetch(`${relay.url}/metrics`)).status).toBe(401);
    const denied = await fetch(`${relay.url}/admin/api/metrics`, {
      headers: { Authorization: 'Bearer nope' },
    });
    expect(denied.status).toBe(403);
    const admin = await fetch(`${relay.url}/admin/api/metrics`, {
      headers: { Authorization: `Bearer ${relay.relay.config.adminToken}` },
    });
    expect(admin.status).toBe(200);
    expect(await admin.json()).toMatchObject({ model: 'u2netp', queue: { limit: 32 } });
  });
});

describe.skipIf(skipReason)('limits and failures', () => {
  test('10 wrong PINs per 10 s, then 429 with Retry-After for that address', async () => {
    const relay = await startTestRelay();
    try {
      const photo = await syntheticPhoto(64, 64);
      for (let i = 0; i < 10; i++)
        expect((await upload(relay.url, photo, { pin: '0000' })).status).toBe(401);
      const blocked = await upload(relay.url, photo);
      expect([blocked.status, blocked.body.code]).toEqual([429, 'E_RATE_LIMITED']);
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
      await expect(connectDisplay(relay.wsUrl)).rejects.toMatchObject({ status: 429 });
    } finally {
      await relay.close();
    }
  });

  test('over MAX_UPLOAD_SIZE is 413; per-address upload limit is 429', async () => {
    const relay = await startTestRelay({ MAX_UPLOAD_SIZE: '0.5', UPLOADS_PER_MINUTE: '3' });
    try {
      const big = await sharp({
        create: {
          width: 1200,
          height: 1200,
          channels: 3,
          background: '#808080',
          noise: { type: 'gaussian', mean: 128, sigma: 60 },
        },
      })
        .jpeg({ quality: 100 })
        .toBuffer();
      expect(big.length).toBeGreaterThan(0.5 * 1024 * 1024);
      const tooBig = await upload(relay.url, big);
      expect([tooBig.status, tooBig.body.code]).toEqual([413, 'E_FILE_TOO_LARGE']);
      const small = await syntheticPhoto(64, 64);
      await upload(relay.url, small);
      await upload(relay.url, small);
      const limited = await upload(relay.url, small);
      expect([limited.status, limited.body.code]).toEqual([429, 'E_RATE_LIMITED']);
      expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    } finally {
      await relay.close();
    }
  });

  test('a full queue answers 503 with Retry-After; everything answered 200 was broadcast', async () => {
    const relay = await startTestRelay({ QUEUE_SIZE: '2' });
    try {
      const display = await connectDisplay(relay.wsUrl);
      const photos = await Promise.all(
        Array.from({ length: 6 }, (_, i) => syntheticPhoto(900 + i, 700)),
      );
      const results = await Promise.all(
        photos.map((p, i) => upload(relay.url, p, { description: `q${i}` })),
      );
      const statuses = results.map((r) => r.status).sort();
      expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
      expect(statuses).toContain(503);
      for (const refused of results.filter((r) => r.status === 503)) {
        expect(refused.body.code).toBe('E_QUEUE_FULL');
        expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      }
      const accepted = results.filter((r) => r.status === 200).length;
      await display.waitFor(accepted);
      await sleep(200);
      expect(display.messages).toHaveLength(accepted);
      display.close();
    } finally {
      await relay.close();
    }
  });

  test('the worker dying once on a photo is survived; twice is a 500, the original kept and the failure recorded', async () => {
    const relay = await startTestRelay();
    const crash = async (times: number) => {
      for (let i = 0; i < times; i++) {
        const restarts = relay.relay.engine.stats().workerRestarts;
        while (relay.relay.engine.stats().inWorker === 0) await sleep(2);
        relay.relay.engine.crashWorkerForTest();
        while (relay.relay.engine.stats().workerRestarts === restarts) await sleep(2);
      }
    };
    try {
      const survivor = upload(relay.url, await syntheticPhoto(1600, 1200));
      await crash(1);
      expect((await survivor).status).toBe(200);
      expect(relay.relay.store.list(1)[0]).toMatchObject({ status: 'done', attempts: 2 });

      const photo = await syntheticPhoto(1600, 1200);
      const pending = upload(relay.url, photo, { description: 'doomed' });
      await crash(2);
      const response = await pending;
      expect([response.status, response.body.code]).toEqual([500, 'E_ENGINE_CRASHED']);
      const [record] = relay.relay.store.list(1);
      expect(record).toMatchObject({
        status: 'failed',
        description: 'doomed',
        errorCode: 'E_ENGINE_CRASHED',
      });
      const original = await fetch(`${relay.url}/admin/api/photos/${record!.id}/original`, {
        headers: { Authorization: `Bearer ${relay.relay.config.adminToken}` },
      });
      expect(Buffer.from(await original.arrayBuffer()).equals(photo)).toBe(true);
      // The engine recovered: the next upload works.
      expect((await upload(relay.url, await syntheticPhoto(300, 200))).status).toBe(200);
    } finally {
      await relay.close();
    }
  });

  test('heartbeat: a client that stops answering pings is dropped; live ones stay', async () => {
    const relay = await startTestRelay({ WS_HEARTBEAT_SECONDS: '1' });
    try {
      const live = await connectDisplay(relay.wsUrl);
      const dead = await new Promise<WebSocket>((resolve, reject) => {
        const socket = new WebSocket(`${relay.wsUrl}?pin=${PIN}`, { autoPong: false });
        socket.once('open', () => resolve(socket));
        socket.once('error', reject);
      });
      const closed = new Promise<number>((resolve) => dead.once('close', (code) => resolve(code)));
      const started = Date.now();
      expect(await closed).toBe(1006); // terminated, not closed politely
      expect(Date.now() - started).toBeLessThan(5000);
      await sleep(1500);
      expect(live.socket.readyState).toBe(WebSocket.OPEN);
      live.close();
    } finally {
      await relay.close();
    }
  });

  test('a display that stops reading is skipped; the others get every photo at once', async () => {
    const relay = await startTestRelay({ WS_MAX_BUFFERED_MB: '1' });
    try {
      const fast = await connectDisplay(relay.wsUrl);
      const slow = await connectDisplay(relay.wsUrl);
      // Stop reading on the slow display: the relay's socket buffer for it fills up.
      (slow.socket as unknown as { _socket: { pause(): void } })._socket.pause();
      const photos = await Promise.all(
        Array.from({ length: 12 }, (_, i) => noisyPhoto(1400 + i, 1000)),
      );
      for (const [i, photo] of photos.entries()) {
        expect((await upload(relay.url, photo, { description: `s${i}` })).status).toBe(200);
      }
      await fast.waitFor(12, 10_000);
      const metrics = await (await fetch(`${relay.url}/metrics?pin=${PIN}`)).text();
      const drops = Number(/photo_relay_broadcast_drops_total (\d+)/.exec(metrics)?.[1] ?? 0);
      expect(drops).toBeGreaterThan(0);
      fast.close();
      slow.socket.terminate();
    } finally {
      await relay.close();
    }
  });

  test('many uploads in parallel with many displays: every 200 reaches every display exactly once', async () => {
    const relay = await startTestRelay();
    try {
      const displays = await Promise.all(
        Array.from({ length: 12 }, () => connectDisplay(relay.wsUrl)),
      );
      const v2 = await connectDisplay(relay.wsUrl, `pin=${PIN}&protocol=2`);
      const photos = await Promise.all(
        Array.from({ length: 10 }, (_, i) => syntheticPhoto(700 + i * 10, 500)),
      );
      const results = await Promise.all(
        photos.map((p, i) => upload(relay.url, p, { description: `burst-${i}` })),
      );
      expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
      for (const display of displays) {
        await display.waitFor(10);
        const descriptions = display.messages.map(
          (m) => (JSON.parse(m) as { metadata: { description: string } }).metadata.description,
        );
        expect(descriptions.sort()).toEqual(
          Array.from({ length: 10 }, (_, i) => `burst-${i}`).sort(),
        );
      }
      await v2.waitFor(11);
      const ids = v2.messages
        .slice(1)
        .map((m) => (JSON.parse(m) as { photo: { id: string } }).photo.id);
      expect(ids.sort()).toEqual(results.map((r) => String(r.body.id)).sort());
      for (const display of [...displays, v2]) display.close();
    } finally {
      await relay.close();
    }
  });
});
