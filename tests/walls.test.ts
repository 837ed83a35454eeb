import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Browser, BrowserContext, Page, WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import {
  CLOSE_CODES,
  type ClientInfo,
  type DashboardMessage,
  type ServerMessageV2,
  type WallInfo,
} from '../shared/protocol.ts';
import { ISSUES_PER_ADDRESS, MAX_WALLS } from '../electron/relay/wall-credentials.ts';
import { chromiumMissingReason, launchChromium } from './browser.ts';
import { modelMissingReason, repoRoot, syntheticPhoto } from './helpers.ts';
import {
  connectDisplay,
  freePort,
  PIN,
  startTestRelay,
  upload,
  type Display,
  type TestRelay,
} from './relay-helpers.ts';

/**
 * Issue 9 §3: a PIN rotation closes the guest sockets opened with the old PIN (4001), while walls
 * hold a credential of their own (given when they join with the PIN), kept across restarts,
 * listed to the operator and revocable (4002). Real relay, real model.
 */
const skipReason = await modelMissingReason('u2netp');
if (skipReason) console.warn(`Skipping wall credential tests: ${skipReason}`);
const browserSkip = skipReason ?? chromiumMissingReason();
if (browserSkip && !skipReason) console.warn(`Skipping wall page tests: ${browserSkip}`);

const V2_DISPLAY = 'protocol=2&role=display';
type Hello = Extract<ServerMessageV2, { type: 'hello' }>;

function admin(relay: TestRelay, route: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${relay.url}/admin/api${route}`, {
    ...init,
    headers: { Authorization: `Bearer ${relay.relay.config.adminToken}` },
  });
}

async function adminJson<T>(relay: TestRelay, route: string, init?: RequestInit): Promise<T> {
  const response = await admin(relay, route, init);
  expect(response.status).toBe(200);
  return (await response.json()) as T;
}

/** How the socket closed: code and reason. */
function closed(display: Display): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) =>
    display.socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
}

/** A refused upgrade's status and catalog body. */
function refusal(wsUrl: string, query: string): Promise<{ status: number; code: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${wsUrl}?${query}`);
    socket.on('open', () => {
      socket.close();
      reject(new Error('the upgrade was accepted'));
    });
    socket.on('error', () => undefined);
    socket.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, code: (JSON.parse(body) as { code: string }).code }),
      );
    });
  });
}

async function hello(display: Display): Promise<Hello> {
  const message = JSON.parse((await display.waitFor(1))[0]!) as ServerMessageV2;
  expect(message.type).toBe('hello');
  return message as Hello;
}

/** A protocol-2 display joining with the PIN (or `auth`), named by its user agent. */
async function joinWall(relay: TestRelay, label: string, auth = `pin=${PIN}`) {
  const display = await connectDisplay(relay.wsUrl, `${auth}&${V2_DISPLAY}`, {
    'User-Agent': label,
  });
  return { display, hello: await hello(display) };
}

async function wallNamed(relay: TestRelay, label: string): Promise<WallInfo | undefined> {
  return (await adminJson<WallInfo[]>(relay, '/walls')).find((wall) => wall.label === label);
}

async function errorCode(response: Response): Promise<[number, string]> {
  return [response.status, ((await response.json()) as { code: string }).code];
}

describe.skipIf(skipReason)('wall credentials', () => {
  let relay: TestRelay;
  /** The event PIN now (the rotation test changes it). */
  let pin = PIN;
  beforeAll(async () => {
    relay = await startTestRelay();
  });
  afterAll(() => relay.close());

  test('a display joining with the PIN is given a credential, listed in Walls and Clients', async () => {
    const { display, hello: greeting } = await joinWall(relay, 'LobbyTV/1.0');
    const token = greeting.wallToken!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/); // 24 random bytes, base64url

    const wall = await wallNamed(relay, 'LobbyTV/1.0');
    expect(wall).toMatchObject({ connected: true });
    expect(wall!.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    const clients = await adminJson<ClientInfo[]>(relay, '/clients');
    expect(clients.find((client) => client.userAgent === 'LobbyTV/1.0')).toMatchObject({
      role: 'display',
      protocol: 2,
      wallId: wall!.id,
    });

    // Original-protocol displays and uploaders hold only the PIN: no credential, no wallId.
    const original = await connectDisplay(relay.wsUrl, `pin=${PIN}`, { 'User-Agent': 'OldTV' });
    const phone = await connectDisplay(relay.wsUrl, `pin=${PIN}&protocol=2&role=uploader`, {
      'User-Agent': 'Phone',
    });
    expect((await hello(phone)).wallToken).toBeUndefined();
    const listed = await adminJson<ClientInfo[]>(relay, '/clients');
    for (const agent of ['OldTV', 'Phone'])
      expect(listed.find((client) => client.userAgent === agent)?.wallId).toBeNull();

    // Stored as a sha256, never the token itself.
    const db = new Database(path.join(relay.dataDir, 'photos.db'), { readonly: true });
    try {
      const row = db.prepare('SELECT * FROM walls WHERE id = ?').get(wall!.id) as Record<
        string,
        string
      >;
      expect(row.token_hash).toBe(createHash('sha256').update(token).digest('hex'));
      expect(JSON.stringify(row)).not.toContain(token);
    } finally {
      db.close();
    }

    // The token opens the wall's reads (query or header) but not uploads.
    expect((await fetch(`${relay.url}/api/photos?wall=${token}`)).status).toBe(200);
    expect(
      (await fetch(`${relay.url}/api/photos`, { headers: { 'X-Wall-Token': token } })).status,
    ).toBe(200);
    const sent = await upload(relay.url, await syntheticPhoto(64, 64), {
      pin: null,
      headers: { 'X-Wall-Token': token },
    });
    expect([sent.status, sent.body.code]).toEqual([401, 'E_PIN_REQUIRED']);
    expect((await fetch(`${relay.url}/admin/api/walls`)).status).toBe(403);

    for (const socket of [display, original, phone]) socket.close();
  });

  test('rotating the PIN closes guest sockets with 4001; the wall stays and gets the next photo', async () => {
    const { display: wall, hello: greeting } = await joinWall(relay, 'RotationTV/1.0');
    const original = await connectDisplay(relay.wsUrl);
    const phone = await connectDisplay(relay.wsUrl, `pin=${PIN}&protocol=2&role=uploader`);
    const originalClosed = closed(original);
    const phoneClosed = closed(phone);
    let wallClosed = false;
    wall.socket.once('close', () => (wallClosed = true));

    const rotated = await adminJson<{ pin: string; closed: number }>(relay, '/pin/rotate', {
      method: 'POST',
    });
    pin = rotated.pin;
    expect(rotated.closed).toBe(2);
    const reason = 'the event PIN was changed';
    expect(await originalClosed).toEqual({ code: CLOSE_CODES.pinRotated, reason });
    expect(await phoneClosed).toEqual({ code: CLOSE_CODES.pinRotated, reason });

    // The old PIN is refused; the wall still receives the next photo and can fetch its cut-out.
    await expect(connectDisplay(relay.wsUrl)).rejects.toMatchObject({ status: 401 });
    const sent = await upload(relay.url, await syntheticPhoto(320, 240), {
      pin: rotated.pin,
      description: 'after the rotation',
    });
    expect(sent.status).toBe(200);
    const messages = await wall.waitFor(2);
    const event = JSON.parse(messages[1]!) as Extract<ServerMessageV2, { type: 'photo' }>;
    expect(event).toMatchObject({ type: 'photo', photo: { id: sent.body.id } });
    expect(wallClosed).toBe(false);
    const cutout = await fetch(`${relay.url}${event.photo.cutoutUrl}?wall=${greeting.wallToken!}`);
    expect([cutout.status, cutout.headers.get('content-type')]).toEqual([200, 'image/png']);
    expect((await fetch(`${relay.url}${event.photo.cutoutUrl}?pin=${PIN}`)).status).toBe(401);

    // A second socket of the same wall needs no PIN at all.
    const again = await joinWall(relay, 'RotationTV/1.0', `wall=${greeting.wallToken!}`);
    expect(again.hello.wallToken).toBeUndefined();
    expect(again.hello.history[0]?.id).toBe(sent.body.id);
    wall.close();
    again.display.close();
  });

  test('a wall reconnects with its token after a relay restart, without the PIN', async () => {
    const { display, hello: greeting } = await joinWall(relay, 'RestartTV/1.0', `pin=${pin}`);
    const before = (await wallNamed(relay, 'RestartTV/1.0'))!;
    display.close();
    await relay.close(true);
    relay = await startTestRelay({}, relay.dataDir);

    const back = await joinWall(relay, 'RestartTV/1.0', `wall=${greeting.wallToken!}`);
    expect(back.hello.wallToken).toBeUndefined();
    const after = (await wallNamed(relay, 'RestartTV/1.0'))!;
    expect(after).toMatchObject({ id: before.id, createdAt: before.createdAt, connected: true });
    expect(after.lastSeenAt >= before.lastSeenAt).toBe(true);
    const clients = await adminJson<ClientInfo[]>(relay, '/clients');
    expect(clients.find((client) => client.wallId === before.id)).toBeTruthy();
    back.display.close();
  });

  test('revoke closes the wall with 4002, updates the dashboard; the token is refused 401 E_WALL_REVOKED', async () => {
    const dashboard = await connectDisplay(
      relay.wsUrl,
      `protocol=2&role=dashboard&token=${relay.relay.config.adminToken}`,
    );
    const { display, hello: greeting } = await joinWall(relay, 'RevokedTV/1.0', `pin=${pin}`);
    const token = greeting.wallToken!;
    const wall = (await wallNamed(relay, 'RevokedTV/1.0'))!;
    const other = await joinWall(relay, 'KeptTV/1.0', `pin=${pin}`);
    const snapshot = JSON.parse((await dashboard.waitFor(2))[1]!) as DashboardMessage;
    expect(snapshot.type).toBe('admin.snapshot');
    if (snapshot.type === 'admin.snapshot') expect(snapshot.walls).toEqual(expect.any(Array));
    // Each join was pushed to the dashboard with the wall list.
    const pushedWalls = () =>
      dashboard.messages
        .map((text) => JSON.parse(text) as DashboardMessage)
        .flatMap((message) => (message.type === 'admin.clients' ? [message.walls] : []));
    await expect
      .poll(() =>
        pushedWalls()
          .at(-1)
          ?.find((entry) => entry.label === 'KeptTV/1.0'),
      )
      .toMatchObject({ connected: true });

    const goneSocket = closed(display);
    expect((await admin(relay, `/walls/${wall.id}`, { method: 'DELETE' })).status).toBe(204);
    expect(await goneSocket).toEqual({
      code: CLOSE_CODES.wallRevoked,
      reason: 'this display was removed by the operator',
    });
    expect(await wallNamed(relay, 'RevokedTV/1.0')).toBeUndefined();
    await expect
      .poll(() =>
        pushedWalls()
          .at(-1)
          ?.some((entry) => entry.id === wall.id),
      )
      .toBe(false);
    expect(await errorCode(await admin(relay, `/walls/${wall.id}`, { method: 'DELETE' }))).toEqual([
      404,
      'E_NOT_FOUND',
    ]);

    expect(await refusal(relay.wsUrl, `wall=${token}&${V2_DISPLAY}`)).toEqual({
      status: 401,
      code: 'E_WALL_REVOKED',
    });
    expect(await errorCode(await fetch(`${relay.url}/api/photos?wall=${token}`))).toEqual([
      401,
      'E_WALL_REVOKED',
    ]);
    // The other wall is untouched.
    expect(other.display.socket.readyState).toBe(WebSocket.OPEN);
    expect(await wallNamed(relay, 'KeptTV/1.0')).toMatchObject({ connected: true });
    other.display.close();
    dashboard.close();
  });
});

describe.skipIf(skipReason)('wall tokens and the failure limit', () => {
  test('wrong tokens count with wrong PINs: 429 after 10 from one address', async () => {
    const relay = await startTestRelay();
    try {
      const { display, hello: greeting } = await joinWall(relay, 'LimitTV/1.0');
      display.close();
      for (let i = 0; i < 3; i++)
        expect(
          (await upload(relay.url, await syntheticPhoto(32, 32), { pin: '0000' })).status,
        ).toBe(401);
      for (let i = 0; i < 4; i++)
        expect(
          await errorCode(
            await fetch(`${relay.url}/api/photos`, { headers: { 'X-Wall-Token': `guess-${i}` } }),
          ),
        ).toEqual([401, 'E_WALL_REVOKED']);
      for (let i = 0; i < 3; i++)
        expect(await refusal(relay.wsUrl, `wall=guess-ws-${i}&${V2_DISPLAY}`)).toEqual({
          status: 401,
          code: 'E_WALL_REVOKED',
        });
      // The 11th attempt is refused whatever it carries: a wrong token, the right token, the PIN.
      const limited = await fetch(`${relay.url}/api/photos?wall=guess-11`);
      expect(await errorCode(limited.clone())).toEqual([429, 'E_RATE_LIMITED']);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await fetch(`${relay.url}/api/photos?wall=${greeting.wallToken!}`)).status).toBe(429);
      expect(await refusal(relay.wsUrl, `pin=${PIN}&${V2_DISPLAY}`)).toEqual({
        status: 429,
        code: 'E_RATE_LIMITED',
      });
    } finally {
      await relay.close();
    }
  });

  test('guesses sent in parallel are counted before they are compared', async () => {
    const relay = await startTestRelay();
    try {
      const statuses = await Promise.all(
        Array.from({ length: 25 }, (_, i) =>
          fetch(
            `${relay.url}/api/photos/00000000-0000-0000-0000-000000000000/cutout?wall=g${i}`,
          ).then((response) => response.status),
        ),
      );
      expect(statuses.filter((status) => status === 401)).toHaveLength(10);
      expect(statuses.filter((status) => status === 429)).toHaveLength(15);
    } finally {
      await relay.close();
    }
  });
});

/** A protocol-2 display that joined with the PIN from `address`, and what it received. */
interface Joined {
  socket: WebSocket;
  hello: Hello;
  messages: ServerMessageV2[];
}

/**
 * A protocol-2 display joining with the PIN from `address`: on Linux every 127.x.y.z is the
 * loopback interface, so one test process can stand in for many devices on the LAN.
 */
function joinFrom(relay: TestRelay, address: string, label = 'CrowdTV/1.0'): Promise<Joined> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${relay.wsUrl}?pin=${PIN}&${V2_DISPLAY}`, {
      localAddress: address,
      headers: { 'User-Agent': label },
    });
    const messages: ServerMessageV2[] = [];
    socket.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as ServerMessageV2;
      messages.push(message);
      if (message.type === 'hello') resolve({ socket, hello: message, messages });
    });
    socket.on('unexpected-response', (_req, res) => reject(new Error(`refused ${res.statusCode}`)));
    socket.on('error', reject);
  });
}

/** Closes the socket and waits until the relay let it go. */
function leave(joined: Joined): Promise<void> {
  return new Promise((resolve) => {
    if (joined.socket.readyState === WebSocket.CLOSED) resolve();
    joined.socket.once('close', () => resolve());
    joined.socket.close();
  });
}

/**
 * Review: a guest with the PIN could knock every wall off by joining again and again (each join
 * was given a credential, and past 500 the least recently seen were revoked). Now issuing is
 * limited per address and in total, nothing is ever dropped to make room, and a display past
 * either limit is still let in with the PIN, only without a credential of its own.
 */
describe.skipIf(skipReason)('issuing wall credentials is bounded', () => {
  test('the 4th join from one address within 10 minutes gets no wallToken, but a working socket', async () => {
    const relay = await startTestRelay();
    try {
      const first: Joined[] = [];
      for (let i = 0; i < ISSUES_PER_ADDRESS.points; i++)
        first.push(await joinFrom(relay, '127.0.0.9', `SameAddressTV/${i}`));
      for (const joined of first) expect(joined.hello.wallToken).toMatch(/^[A-Za-z0-9_-]{32}$/);

      const fourth = await joinFrom(relay, '127.0.0.9', 'SameAddressTV/4');
      expect(fourth.hello.wallToken).toBeUndefined();
      expect(fourth.hello.history).toEqual([]);
      // Held by the PIN alone: listed without a wall, and no credential was stored for it.
      const clients = await adminJson<ClientInfo[]>(relay, '/clients');
      expect(clients.find((client) => client.userAgent === 'SameAddressTV/4')).toMatchObject({
        role: 'display',
        wallId: null,
      });
      expect(await wallNamed(relay, 'SameAddressTV/4')).toBeUndefined();
      // Another address is not held back by this one.
      const neighbour = await joinFrom(relay, '127.0.0.10', 'NeighbourTV/1.0');
      expect(neighbour.hello.wallToken).toMatch(/^[A-Za-z0-9_-]{32}$/);

      // The socket works: the next photo reaches it, and its cut-out opens with the PIN.
      const sent = await upload(relay.url, await syntheticPhoto(160, 120), { description: '4th' });
      expect(sent.status).toBe(200);
      await expect
        .poll(() => fourth.messages.find((message) => message.type === 'photo'), {
          timeout: 30_000,
        })
        .toMatchObject({ photo: { id: sent.body.id, description: '4th' } });
      const photo = fourth.messages.find((message) => message.type === 'photo')!;
      expect((await fetch(`${relay.url}${photo.photo.cutoutUrl}?pin=${PIN}`)).status).toBe(200);
      await Promise.all([...first, fourth, neighbour].map(leave));
    } finally {
      await relay.close();
    }
  }, 60_000);

  test('a wall token survives 510 PIN joins from other sockets; past 500 displays join without one', async () => {
    const relay = await startTestRelay();
    try {
      const { display, hello: greeting } = await joinWall(relay, 'EventWall/1.0');
      const token = greeting.wallToken!;
      display.close();

      // 510 joins, 3 from each of 170 addresses (each address's full share), opened and closed.
      const joins = 510;
      const address = (i: number) => {
        const n = Math.floor(i / ISSUES_PER_ADDRESS.points);
        return `127.1.${Math.floor(n / 200)}.${(n % 200) + 1}`;
      };
      const hellos: Hello[] = [];
      for (let batch = 0; batch < joins; batch += 30) {
        const opened = await Promise.all(
          Array.from({ length: Math.min(30, joins - batch) }, (_, k) =>
            joinFrom(relay, address(batch + k), `Crowd/${batch + k}`),
          ),
        );
        hellos.push(...opened.map((joined) => joined.hello));
        await Promise.all(opened.map(leave));
      }

      // The first wall, seen before all of them and not connected meanwhile, still gets in.
      const back = await joinWall(relay, 'EventWall/1.0', `wall=${token}`);
      expect(back.hello.wallToken).toBeUndefined();
      expect(back.display.socket.readyState).toBe(WebSocket.OPEN);
      expect((await fetch(`${relay.url}/api/photos?wall=${token}`)).status).toBe(200);
      back.display.close();

      expect(hellos).toHaveLength(joins); // every one was let in
      const given = hellos.filter((entry) => entry.wallToken !== undefined);
      expect(given).toHaveLength(MAX_WALLS - 1); // the table is full; nothing was dropped for them
      const walls = await adminJson<WallInfo[]>(relay, '/walls');
      expect(walls).toHaveLength(MAX_WALLS);
      expect(walls.some((wall) => wall.label === 'EventWall/1.0')).toBe(true);

      // A new display now joins with the PIN alone; a Revoke makes room for one again.
      const late = await joinFrom(relay, '127.2.0.1', 'LateTV/1.0');
      expect(late.hello.wallToken).toBeUndefined();
      await leave(late);
      const crowd = walls.find((wall) => wall.label.startsWith('Crowd/'))!;
      expect((await admin(relay, `/walls/${crowd.id}`, { method: 'DELETE' })).status).toBe(204);
      const again = await joinFrom(relay, '127.2.0.2', 'AfterRevokeTV/1.0');
      expect(again.hello.wallToken).toMatch(/^[A-Za-z0-9_-]{32}$/);
      await leave(again);
    } finally {
      await relay.close();
    }
  }, 120_000);
});

describe.skipIf(browserSkip)('the wall page in Chromium', () => {
  const artifacts = path.join(repoRoot, 'tests/artifacts');
  let browser: Browser;
  let relay: TestRelay;
  let port: number;
  let pin = PIN;

  beforeAll(async () => {
    execFileSync(
      process.execPath,
      [path.join(repoRoot, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'],
      // The pages as shipped (vitest sets NODE_ENV=test, which would build React's dev bundle).
      { cwd: repoRoot, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'production' } },
    );
    await mkdir(artifacts, { recursive: true });
    port = await freePort();
    relay = await startTestRelay({ PORT: String(port) });
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await (browser as Browser | undefined)?.close();
    await (relay as TestRelay | undefined)?.close();
  });

  async function openWall(
    query: string,
    token?: string,
  ): Promise<{ context: BrowserContext; page: Page; sockets: string[]; crashes: string[] }> {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 720 },
      locale: 'en-US',
    });
    if (token) {
      await context.addInitScript({
        content: `localStorage.setItem('photo-relay.wall-token:' + location.origin, ${JSON.stringify(token)});`,
      });
    }
    const page = await context.newPage();
    const sockets: string[] = [];
    const crashes: string[] = [];
    page.on('websocket', (socket) => sockets.push(socket.url()));
    page.on('pageerror', (error) => crashes.push(error.message));
    await page.goto(`${relay.url}/display?interval=60&layout=grid${query}`);
    return { context, page, sockets, crashes };
  }

  /** The wall's credential as the page keeps it (localStorage, per relay origin). */
  const storedToken = (page: Page) =>
    page.evaluate<string | null>(
      "localStorage.getItem('photo-relay.wall-token:' + location.origin)",
    );

  async function sendAndSee(page: Page, description: string) {
    const sent = await upload(relay.url, await syntheticPhoto(400, 300), { pin, description });
    expect(sent.status).toBe(200);
    const figure = page.locator('figure.shown', { hasText: description });
    await figure.waitFor({ timeout: 30_000 });
    const image = figure.locator('img');
    expect(
      await image.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth),
    ).toBeGreaterThan(0);
    return image.getAttribute('src');
  }

  test('opened with ?pin=, the wall keeps showing photos after a rotation, a disconnect and a restart; Revoke stops it', async () => {
    const wall = await openWall(`&pin=${PIN}`);
    await expect.poll(() => storedToken(wall.page)).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const token = (await storedToken(wall.page))!;
    await sendAndSee(wall.page, 'before the rotation');

    pin = (await adminJson<{ pin: string }>(relay, '/pin/rotate', { method: 'POST' })).pin;
    const src = await sendAndSee(wall.page, 'after the rotation');
    expect(src).toContain(`wall=${token}`);
    expect(src).not.toContain('pin=');

    // Disconnected by the operator (4000): it comes back, with its token, not the old PIN.
    const clients = await adminJson<ClientInfo[]>(relay, '/clients');
    const mine = clients.find((client) => client.role === 'display' && client.wallId)!;
    const count = wall.sockets.length;
    expect((await admin(relay, `/clients/${mine.id}`, { method: 'DELETE' })).status).toBe(204);
    await expect.poll(() => wall.sockets.length, { timeout: 15_000 }).toBeGreaterThan(count);
    expect(wall.sockets.at(-1)).toContain(`wall=${token}`);
    expect(wall.sockets.at(-1)).not.toContain('pin=');
    await sendAndSee(wall.page, 'after a disconnect');

    // A restart on the same data folder: the rotated PIN and the wall's credential are kept.
    await relay.close(true);
    relay = await startTestRelay({ PORT: String(port) }, relay.dataDir);
    expect(relay.relay.settings.current().pin).toBe(pin);
    await sendAndSee(wall.page, 'after a restart');
    await wall.page.screenshot({ path: path.join(artifacts, 'display-after-rotation.png') });

    const listed = (await adminJson<WallInfo[]>(relay, '/walls')).find((entry) => entry.connected)!;
    expect((await admin(relay, `/walls/${listed.id}`, { method: 'DELETE' })).status).toBe(204);
    await wall.page
      .getByRole('alert')
      .getByText('This display was removed by the operator')
      .waitFor({ timeout: 10_000 });
    expect(await storedToken(wall.page)).toBeNull();
    expect(await wall.page.locator('figure').count()).toBe(0);
    const after = wall.sockets.length;
    await wall.page.waitForTimeout(3000);
    expect(wall.sockets.length).toBe(after); // it stopped reconnecting
    await wall.page.screenshot({ path: path.join(artifacts, 'display-removed.png') });
    expect(wall.crashes).toEqual([]);
    await wall.context.close();
  }, 150_000);

  test('a refused token says so; a link with the current PIN joins again; Japanese walls get Japanese', async () => {
    // A token this relay does not know (revoked while the display was off), no PIN in the link.
    const lost = await openWall('', 'x'.repeat(32));
    await lost.page
      .getByRole('alert')
      .getByText('This display was removed by the operator')
      .waitFor({ timeout: 15_000 });
    await lost.context.close();

    // The same, with the current PIN in the link: it joins again and is given a new credential.
    const rejoined = await openWall(`&pin=${pin}`, 'y'.repeat(32));
    const fresh = async () => {
      const token = await storedToken(rejoined.page);
      return token !== 'y'.repeat(32) && /^[A-Za-z0-9_-]{32}$/.test(token ?? '');
    };
    await expect.poll(fresh, { timeout: 15_000 }).toBe(true);
    await sendAndSee(rejoined.page, 'rejoined with the PIN');
    await rejoined.context.close();

    // An old link (a PIN that was rotated away), no credential: the page says what to do.
    const old = pin;
    pin = (await adminJson<{ pin: string }>(relay, '/pin/rotate', { method: 'POST' })).pin;
    const stale = await openWall(`&pin=${old}`);
    await stale.page
      .getByRole('alert')
      .getByText('The event PIN changed: open the new display link')
      .waitFor({ timeout: 15_000 });
    await stale.context.close();

    const context = await browser.newContext({ locale: 'ja-JP' });
    const page = await context.newPage();
    await page.goto(`${relay.url}/display`);
    await page.getByRole('alert').getByText('?pin=<イベントPIN>').waitFor();
    await context.close();
  }, 90_000);

  test('a wall held by the PIN alone (opened before walls had credentials) explains 4001 and stops', async () => {
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    // Stands in for a relay that gives no credential: a hello without wallToken, then 4001.
    const routed: WebSocketRoute[] = [];
    await page.routeWebSocket(/\/ws\?/, (socket) => {
      routed.push(socket);
      socket.send(
        JSON.stringify({
          type: 'hello',
          protocol: 2,
          serverTime: new Date().toISOString(),
          role: 'display',
          history: [],
        } satisfies ServerMessageV2),
      );
    });
    await page.goto(`${relay.url}/display?interval=60&pin=${pin}`);
    await page.locator('.status').waitFor({ state: 'detached', timeout: 15_000 });
    const live = routed.at(-1)!;
    expect(live.url()).toContain(`pin=${pin}`);
    const opened = routed.length;
    await live.close({ code: CLOSE_CODES.pinRotated, reason: 'the event PIN was changed' });
    await page
      .getByRole('alert')
      .getByText('The event PIN changed: open the new display link')
      .waitFor({ timeout: 10_000 });
    await page.waitForTimeout(2000);
    expect(routed).toHaveLength(opened); // no reconnect with the old PIN
    await context.close();
  });

  test('the uploader asks for the new PIN when the PIN is rotated', async () => {
    const context = await browser.newContext({
      locale: 'en-US',
      viewport: { width: 390, height: 844 },
    });
    const page = await context.newPage();
    await page.goto(`${relay.url}/?pin=${pin}`);
    await page.getByLabel('Message (optional)').waitFor();
    await expect
      .poll(async () =>
        (await adminJson<ClientInfo[]>(relay, '/clients')).some(
          (client) => client.role === 'uploader',
        ),
      )
      .toBe(true);
    pin = (await adminJson<{ pin: string }>(relay, '/pin/rotate', { method: 'POST' })).pin;
    await page
      .getByRole('alert')
      .getByText('The event PIN was changed. Enter the new PIN')
      .waitFor({ timeout: 10_000 });
    await page.getByLabel('Event PIN').fill(pin);
    await page.getByRole('button', { name: 'Join' }).click();
    await page.getByLabel('Message (optional)').waitFor();
    await page.screenshot({ path: path.join(artifacts, 'uploader-pin-rotated.png') });
    await context.close();
  });
});
