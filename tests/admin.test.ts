import http from 'node:http';
import yauzl from 'yauzl';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { modelMissingReason, syntheticPhoto } from './helpers.ts';
import { connectDisplay, PIN, startTestRelay, upload, type TestRelay } from './relay-helpers.ts';

const skipReason = await modelMissingReason('u2netp');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function zipEntries(bytes: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(bytes, { lazyEntries: true }, (error, zip) => {
      if (error) return reject(error);
      const names: string[] = [];
      zip.on('entry', (entry: yauzl.Entry) => {
        names.push(entry.fileName);
        zip.readEntry();
      });
      zip.on('end', () => resolve(names));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}

describe.skipIf(skipReason)('the admin API (operator)', () => {
  let relay: TestRelay;
  let admin: (path: string, init?: RequestInit) => Promise<Response>;
  beforeAll(async () => {
    relay = await startTestRelay();
    admin = (path, init = {}) =>
      fetch(`${relay.url}/admin/api${path}`, {
        ...init,
        headers: {
          Authorization: `Bearer ${relay.relay.config.adminToken}`,
          'Content-Type': 'application/json',
          ...(init.headers as Record<string, string> | undefined),
        },
      });
  });
  afterAll(() => relay.close());

  test('refuses without the token, and with a foreign Host header', async () => {
    expect((await fetch(`${relay.url}/admin/api/overview`)).status).toBe(403);
    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host header.
    // (fetch will not let us set Host, so a plain http.request does.)
    const rebinding = await new Promise<number>((resolve, reject) => {
      const request = http.get(
        `${relay.url}/admin/api/overview`,
        {
          headers: {
            Host: 'evil.example',
            Authorization: `Bearer ${relay.relay.config.adminToken}`,
          },
        },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      );
      request.on('error', reject);
    });
    expect(rebinding).toBe(403);
    const overview = (await (await admin('/overview')).json()) as {
      pin: string;
      uploaderUrls: string[];
    };
    expect(overview.pin).toBe(PIN);
    expect(overview.uploaderUrls[0]).toMatch(new RegExp(`/\\?pin=${PIN}$`));
  });

  test('lists connected clients with role and device, and disconnects one', async () => {
    const display = await connectDisplay(relay.wsUrl, `pin=${PIN}&protocol=2&role=display`, {
      'User-Agent': 'LobbyTV/1.0',
    });
    const clients = (await (await admin('/clients')).json()) as {
      id: string;
      role: string;
      userAgent: string;
    }[];
    const tv = clients.find((client) => client.userAgent === 'LobbyTV/1.0');
    expect(tv).toMatchObject({ role: 'display' });
    const closed = new Promise<number>((resolve) =>
      display.socket.once('close', (code) => resolve(code)),
    );
    expect((await admin(`/clients/${tv!.id}`, { method: 'DELETE' })).status).toBe(204);
    expect(await closed).toBe(4000);
  });

  test('hiding takes a photo off every wall at once; deleting removes it entirely', async () => {
    const wall = await connectDisplay(relay.wsUrl, `pin=${PIN}&protocol=2`);
    const { body } = await upload(relay.url, await syntheticPhoto(500, 400), {
      description: 'oops',
    });
    const id = String(body.id);
    await wall.waitFor(2);
    expect((await admin(`/photos/${id}/hide`, { method: 'POST' })).status).toBe(200);
    await wall.waitFor(3);
    expect(JSON.parse(wall.messages[2]!)).toEqual({ type: 'removed', id });
    expect((await fetch(`${relay.url}/api/photos/${id}/cutout?pin=${PIN}`)).status).toBe(404);
    const again = await connectDisplay(relay.wsUrl, `pin=${PIN}&protocol=2`);
    const [hello] = await again.waitFor(1);
    expect(
      (JSON.parse(hello!) as { history: { id: string }[] }).history.map((p) => p.id),
    ).not.toContain(id);
    expect((await admin(`/photos/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(`${relay.url}/api/photos/${id}?pin=${PIN}`)).status).toBe(404);
    wall.close();
    again.close();
  });

  test('approval mode holds photos back until the operator approves', async () => {
    await admin('/settings', { method: 'PUT', body: JSON.stringify({ approvalMode: true }) });
    const original = await connectDisplay(relay.wsUrl);
    const { status, body } = await upload(relay.url, await syntheticPhoto(500, 400), {
      description: 'held',
    });
    expect(status).toBe(200);
    await sleep(300);
    expect(original.messages).toEqual([]);
    const photos = (await (await admin('/photos?limit=1')).json()) as {
      id: string;
      approved: boolean;
    }[];
    expect(photos[0]).toMatchObject({ id: body.id, approved: false });
    await admin(`/photos/${String(body.id)}/approve`, { method: 'POST' });
    const [message] = await original.waitFor(1);
    expect(
      (JSON.parse(message!) as { metadata: { description: string } }).metadata.description,
    ).toBe('held');
    await admin('/settings', { method: 'PUT', body: JSON.stringify({ approvalMode: false }) });
    original.close();
  });

  test('a failed photo can be retried from its kept original', async () => {
    const pending = upload(relay.url, await syntheticPhoto(1600, 1200), {
      description: 'retry me',
    });
    // The worker dies twice with it inside: set aside as a crasher.
    for (let i = 0; i < 2; i++) {
      const restarts = relay.relay.engine.stats().workerRestarts;
      while (relay.relay.engine.stats().inWorker === 0) await sleep(2);
      relay.relay.engine.crashWorkerForTest();
      while (relay.relay.engine.stats().workerRestarts === restarts) await sleep(2);
    }
    const { body } = await pending;
    expect(body.code).toBe('E_ENGINE_CRASHED');
    const [failed] = (await (await admin('/photos?limit=1')).json()) as {
      id: string;
      status: string;
    }[];
    expect(failed!.status).toBe('failed');
    expect((await admin(`/photos/${failed!.id}/retry`, { method: 'POST' })).status).toBe(202);
    let status = '';
    for (let i = 0; i < 100 && status !== 'done'; i++) {
      await sleep(100);
      status = (
        (await (await fetch(`${relay.url}/api/photos/${failed!.id}?pin=${PIN}`)).json()) as {
          status: string;
        }
      ).status;
    }
    expect(status).toBe('done');
  });

  test('the export zip holds every original and every cut-out', async () => {
    const response = await admin('/export.zip');
    expect(response.headers.get('content-type')).toBe('application/zip');
    const names = await zipEntries(Buffer.from(await response.arrayBuffer()));
    const photos = (await (await admin('/photos?limit=1000')).json()) as {
      id: string;
      status: string;
    }[];
    for (const photo of photos) {
      expect(names.some((name) => name.startsWith(`originals/${photo.id}.`))).toBe(true);
      if (photo.status === 'done') expect(names).toContain(`cutouts/${photo.id}.png`);
    }
    expect(names).toContain('photos.json');
  });

  test('metrics snapshot for the dashboard', async () => {
    const metrics = (await (await admin('/metrics')).json()) as {
      uploads: { ok: number };
      processingMs: { p50: number };
      queue: { limit: number };
    };
    expect(metrics.uploads.ok).toBeGreaterThan(0);
    expect(metrics.processingMs.p50).toBeGreaterThan(0);
    expect(metrics.queue.limit).toBe(32);
  });
});

describe.skipIf(skipReason)('operator settings and PIN', () => {
  test('a background colour applies to new cut-outs; bad settings are refused by name; PIN rotates', async () => {
    const relay = await startTestRelay();
    const auth = {
      Authorization: `Bearer ${relay.relay.config.adminToken}`,
      'Content-Type': 'application/json',
    };
    try {
      const bad = await fetch(`${relay.url}/admin/api/settings`, {
        method: 'PUT',
        headers: auth,
        body: JSON.stringify({ background: 'red', displayMaxEdge: 5 }),
      });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { message: string }).message).toMatch(
        /background.*displayMaxEdge/s,
      );
      const ok = await fetch(`${relay.url}/admin/api/settings`, {
        method: 'PUT',
        headers: auth,
        body: JSON.stringify({ background: '#00ff00', displayMaxEdge: 320 }),
      });
      expect(ok.status).toBe(200);
      const { body } = await upload(relay.url, await syntheticPhoto(800, 600));
      const cutout = await fetch(`${relay.url}/api/photos/${String(body.id)}/cutout?pin=${PIN}`);
      const { default: sharp } = await import('sharp');
      const meta = await sharp(Buffer.from(await cutout.arrayBuffer())).metadata();
      expect([meta.width, meta.height, meta.channels]).toEqual([320, 240, 3]);

      // A background image: the cut-out is put on it, scaled to cover.
      const { default: sharpLib } = await import('sharp');
      const blue = await sharpLib({
        create: { width: 200, height: 100, channels: 3, background: '#0000ff' },
      })
        .png()
        .toBuffer();
      expect(
        (
          await fetch(`${relay.url}/admin/api/background-image`, {
            method: 'PUT',
            headers: { ...auth, 'Content-Type': 'image/png' },
            body: blue,
          })
        ).status,
      ).toBe(200);
      await fetch(`${relay.url}/admin/api/settings`, {
        method: 'PUT',
        headers: auth,
        body: JSON.stringify({ background: 'image' }),
      });
      const onImage = await upload(relay.url, await syntheticPhoto(800, 600));
      const png = Buffer.from(
        await (
          await fetch(`${relay.url}/api/photos/${String(onImage.body.id)}/cutout?pin=${PIN}`)
        ).arrayBuffer(),
      );
      const { data, info } = await sharpLib(png).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.channels]).toEqual([320, 3]);
      expect([...data.subarray(0, 3)]).toEqual([0, 0, 255]); // top-left corner: the background

      const rotated = (await (
        await fetch(`${relay.url}/admin/api/pin/rotate`, { method: 'POST', headers: auth })
      ).json()) as { pin: string };
      expect(rotated.pin).toMatch(/^\d{6}$/);
      expect((await upload(relay.url, await syntheticPhoto(100, 100))).status).toBe(401);
      expect(
        (await upload(relay.url, await syntheticPhoto(100, 100), { pin: rotated.pin })).status,
      ).toBe(200);
    } finally {
      await relay.close();
    }
  });
});
