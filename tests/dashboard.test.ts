import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page, Request } from 'playwright-core';
import sharp from 'sharp';
import yauzl from 'yauzl';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CLOSE_CODES, type AdminOverview } from '../shared/protocol.ts';
import { modelMissingReason, repoRoot, syntheticPhoto } from './helpers.ts';
import {
  builtPagesMissingReason,
  chromiumMissingReason,
  launchChromium,
  openDashboard,
} from './browser.ts';
import { connectDisplay, PIN, startTestRelay, upload, type TestRelay } from './relay-helpers.ts';

/** The operator's dashboard in real Chromium against a real relay (pages built by pages.test). */
const artifacts = path.join(repoRoot, 'tests/artifacts');
const skipReason =
  (await modelMissingReason('u2netp')) ?? chromiumMissingReason() ?? builtPagesMissingReason();
if (skipReason) console.warn(`Skipping dashboard tests: ${skipReason}`);

/** The admin API's list endpoints a polling dashboard would call (thumbnails are not lists). */
const POLLED = [
  '/admin/api/photos',
  '/admin/api/metrics',
  '/admin/api/clients',
  '/admin/api/walls',
];

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

describe.skipIf(skipReason)('operator dashboard in Chromium', () => {
  let browser: Browser;
  let relay: TestRelay;
  let dashboard: Page;
  let wall: Page;
  /** Every request the main dashboard page made, in order. */
  const requests: Request[] = [];
  const admin = async <T>(path: string, init: RequestInit = {}): Promise<T> => {
    const response = await fetch(`${relay.url}/admin/api${path}`, {
      ...init,
      headers: {
        Authorization: `Bearer ${relay.relay.config.adminToken}`,
        'Content-Type': 'application/json',
      },
    });
    expect(response.ok).toBe(true);
    return (response.status === 204 ? undefined : await response.json()) as T;
  };

  beforeAll(async () => {
    await mkdir(artifacts, { recursive: true });
    relay = await startTestRelay();
    browser = await launchChromium();
    const wallContext = await browser.newContext({
      viewport: { width: 1280, height: 720 },
      userAgent: 'Mozilla/5.0 (SMART-TV; Linux; Tizen 7.0) LobbyWall',
    });
    wall = await wallContext.newPage();
    await wall.goto(`${relay.url}/display?pin=${PIN}&interval=60&layout=grid`);
    // The operator's laptop: 1440×900, the photo feed must be on the first screen.
    dashboard = await openDashboard(browser, relay.url, relay.relay.config.adminToken, {
      acceptDownloads: true,
      onRequest: (request) => requests.push(request),
    });
  }, 60_000);
  afterAll(async () => {
    await (browser as Browser | undefined)?.close();
    await (relay as TestRelay | undefined)?.close();
  });

  test('without the token: nothing but a refusal; a wrong token is refused too', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${relay.url}/admin`);
    await page.getByRole('alert').getByText('needs the admin token').waitFor();
    expect(await page.locator('.panel').count()).toBe(0);
    await page.context().close();
    const wrong = await (await browser.newContext()).newPage();
    await wrong.goto(`${relay.url}/admin#token=not-the-token`);
    await wrong.getByRole('alert').getByText('needs the admin token').waitFor({ timeout: 10_000 });
    expect(await wrong.locator('.panel').count()).toBe(0);
    await wrong.context().close();
    const japanese = await (await browser.newContext({ locale: 'ja-JP' })).newPage();
    await japanese.goto(`${relay.url}/admin#token=${relay.relay.config.adminToken}`);
    await japanese.getByRole('heading', { name: '写真' }).waitFor();
    await japanese.getByText('ライブ').waitFor();
    await japanese.context().close();
  });

  test('one dashboard WebSocket with the token; the token left the address bar', async () => {
    expect(dashboard.url()).not.toContain('token');
    const page = await (await browser.newContext()).newPage();
    const sockets: string[] = [];
    let open = 0;
    page.on('websocket', (socket) => {
      sockets.push(socket.url());
      open++;
      socket.on('close', () => open--);
    });
    await page.goto(`${relay.url}/admin#token=${relay.relay.config.adminToken}`);
    await page.locator('[data-testid="feed-status"][data-state="live"]').waitFor();
    await page.waitForTimeout(2500); // a metrics push or two: still the same one socket
    expect(open).toBe(1);
    expect(sockets.length).toBeGreaterThanOrEqual(1);
    const url = new URL(sockets.at(-1)!);
    expect(url.pathname).toBe('/ws');
    expect(url.searchParams.get('protocol')).toBe('2');
    expect(url.searchParams.get('role')).toBe('dashboard');
    expect(url.searchParams.get('token')).toBe(relay.relay.config.adminToken);
    await page.context().close();
  });

  test('a connected display appears in Clients and its credential in Walls', async () => {
    const row = dashboard.locator('tr[data-role="display"]', { hasText: 'LobbyWall' });
    await row.waitFor({ timeout: 10_000 });
    await dashboard
      .locator('tr[data-wall-id][data-connected="true"]', { hasText: 'LobbyWall' })
      .waitFor({ timeout: 10_000 });
  });

  test('a guest with the uploader page open appears as an uploader; Disconnect drops it', async () => {
    const phone = await (
      await browser.newContext({
        viewport: { width: 390, height: 844 },
        isMobile: true,
        userAgent: 'GuestPhone/1.0 Mobile',
      })
    ).newPage();
    await phone.goto(`${relay.url}/?pin=${PIN}`);
    const row = dashboard.locator('tr[data-role="uploader"]', { hasText: 'GuestPhone' }).first();
    await row.waitFor({ timeout: 10_000 });
    const id = await row.getAttribute('data-client-id');
    await row.getByRole('button', { name: 'Disconnect' }).click();
    await dashboard.locator(`tr[data-client-id="${id}"]`).waitFor({ state: 'detached' });
    await phone.context().close();
  });

  test('a photo uploaded through the public API appears without reload or polling', async () => {
    await expect
      .poll(() => dashboard.getByTestId('starts').textContent(), { timeout: 10_000 })
      .toBe('1');
    expect(await dashboard.getByTestId('disk-free').textContent()).toMatch(/\d/);
    const okBefore = Number(await dashboard.getByTestId('uploads-ok').textContent());
    const { status, body } = await upload(relay.url, await syntheticPhoto(800, 600), {
      description: 'pushed, not polled',
      filename: 'pushed.jpg',
    });
    expect(status).toBe(200);
    const item = dashboard.locator(`.feed li[data-photo-id="${String(body.id)}"]`);
    await item.waitFor({ timeout: 10_000 });
    await dashboard
      .locator(`.feed li[data-photo-id="${String(body.id)}"][data-status="done"]`)
      .waitFor({ timeout: 10_000 });
    // The newest photo is the first row.
    expect(await dashboard.locator('.feed li').first().getAttribute('data-photo-id')).toBe(body.id);
    expect(await item.locator('.description').textContent()).toBe('pushed, not polled');
    // The metrics are pushed every 2 s: the upload is counted without a request for them.
    await expect
      .poll(async () => Number(await dashboard.getByTestId('uploads-ok').textContent()), {
        timeout: 10_000,
      })
      .toBeGreaterThan(okBefore);
    const polled = requests
      .map((request) => new URL(request.url()).pathname)
      .filter((pathname) => POLLED.includes(pathname));
    expect(polled).toEqual([]);
  });

  test('drag-and-drop upload: progress, then the photo in Photos and in the metrics', async () => {
    const bytes = (await syntheticPhoto(900, 600)).toString('base64');
    const dataTransfer = await dashboard.evaluateHandle(`(() => {
      const dt = new DataTransfer();
      const bytes = Uint8Array.from(atob('${bytes}'), (c) => c.charCodeAt(0));
      dt.items.add(new File([bytes], 'dropped.jpg', { type: 'image/jpeg' }));
      return dt;
    })()`);
    await dashboard.dispatchEvent('[data-testid="dropzone"]', 'drop', { dataTransfer });
    await dashboard
      .locator('.jobs li[data-state="done"]', { hasText: 'dropped.jpg' })
      .waitFor({ timeout: 30_000 });
    await dashboard
      .locator('.feed li[data-status="done"]', { hasText: 'dropped.jpg' })
      .waitFor({ timeout: 10_000 });
    await expect
      .poll(async () => Number(await dashboard.getByTestId('uploads-ok').textContent()), {
        timeout: 10_000,
      })
      .toBeGreaterThanOrEqual(2);
    await wall.locator('figure.shown img').first().waitFor({ timeout: 10_000 });
  });

  test('at 1440×900 the photo feed is on the first screen, without scrolling', async () => {
    // A fresh page: the other tests' clicks scroll the main one.
    const page = await (
      await browser.newContext({ viewport: { width: 1440, height: 900 } })
    ).newPage();
    await page.goto(`${relay.url}/admin#token=${relay.relay.config.adminToken}`);
    await page.locator('.feed li[data-status="done"]').first().waitFor({ timeout: 10_000 });
    expect(await page.evaluate('window.scrollY')).toBe(0);
    const heading = await page.getByRole('heading', { name: 'Photos', exact: true }).boundingBox();
    const firstRow = await page.locator('.feed li').first().boundingBox();
    expect(heading).not.toBeNull();
    expect(firstRow).not.toBeNull();
    expect(heading!.y).toBeGreaterThanOrEqual(0);
    expect(heading!.y).toBeLessThan(900);
    expect(firstRow!.y).toBeLessThan(900);
    // The whole first row, its buttons included, not only its top edge.
    expect(firstRow!.y + firstRow!.height).toBeLessThanOrEqual(900);
    await page.screenshot({ path: path.join(artifacts, 'dashboard-1440x900.png') });
    await page.context().close();
  });

  test('hiding a photo in the dashboard removes it from the open display wall', async () => {
    const { body } = await upload(relay.url, await syntheticPhoto(700, 500), {
      description: 'to be hidden',
    });
    const onWall = wall.locator(`figure[data-photo-id="${String(body.id)}"]`);
    await onWall.waitFor({ timeout: 10_000 });
    const item = dashboard.locator(`.feed li[data-photo-id="${String(body.id)}"]`);
    await item.getByRole('button', { name: 'Hide' }).click();
    await onWall.waitFor({ state: 'detached', timeout: 10_000 });
    // The hidden state comes back through the feed.
    await item.getByRole('button', { name: 'Show' }).waitFor();
    await item.locator('.badge', { hasText: 'hidden' }).waitFor();
    expect(await item.getAttribute('class')).toContain('hidden-photo');
  });

  test('approval mode holds a photo back until approved', async () => {
    await dashboard.getByLabel(/Approval mode/).check();
    await expect
      .poll(async () => (await admin<AdminOverview>('/overview')).approvalMode)
      .toBe(true);
    const { body } = await upload(relay.url, await syntheticPhoto(640, 480), {
      description: 'needs approval',
    });
    const item = dashboard.locator(`.feed li[data-photo-id="${String(body.id)}"]`);
    await item.getByRole('button', { name: 'Approve' }).waitFor({ timeout: 10_000 });
    await wall.waitForTimeout(500);
    expect(await wall.locator(`figure[data-photo-id="${String(body.id)}"]`).count()).toBe(0);
    await dashboard.screenshot({ path: path.join(artifacts, 'dashboard.png'), fullPage: true });
    await item.getByRole('button', { name: 'Approve' }).click();
    await wall.locator(`figure[data-photo-id="${String(body.id)}"]`).waitFor({ timeout: 10_000 });
    await item.getByRole('button', { name: 'Approve' }).waitFor({ state: 'detached' });
    await dashboard.getByLabel(/Approval mode/).uncheck();
    await expect
      .poll(async () => (await admin<AdminOverview>('/overview')).approvalMode)
      .toBe(false);
  });

  test('a background image uploaded from Settings can then be chosen and saved', async () => {
    const image = await sharp({
      create: { width: 640, height: 360, channels: 3, background: { r: 20, g: 120, b: 200 } },
    })
      .png()
      .toBuffer();
    const sent = dashboard.waitForRequest(
      (request) =>
        request.method() === 'PUT' &&
        new URL(request.url()).pathname === '/admin/api/background-image',
    );
    await dashboard
      .getByLabel('Choose a background image')
      .setInputFiles({ name: 'backdrop.png', mimeType: 'image/png', buffer: image });
    // The image's own bytes with its own type, not JSON (which met the 16 kB JSON parser).
    expect((await sent).headers()['content-type']).toBe('image/png');
    const settings = dashboard.locator('.panel-settings');
    await settings.getByRole('status').getByText('Background image uploaded').waitFor();
    const radio = settings.getByRole('radio', { name: 'Image' });
    expect(await radio.isEnabled()).toBe(true);
    await radio.check();
    await settings.getByRole('button', { name: 'Save settings' }).click();
    await settings.getByRole('status').getByText('Saved.').waitFor();
    const overview = await admin<AdminOverview>('/overview');
    expect(overview.settings.background).toBe('image');
    expect(overview.hasBackgroundImage).toBe(true);
    await admin('/settings', {
      method: 'PUT',
      body: JSON.stringify({ background: 'transparent' }),
    });
    await expect
      .poll(() => settings.getByRole('radio', { name: 'Transparent' }).isChecked())
      .toBe(true);
  });

  test('the cut-out mode is chosen in Settings and saved', async () => {
    const settings = dashboard.locator('.panel-settings');
    const select = settings.getByTestId('cutout-mode');
    expect(await select.inputValue()).toBe(
      (await admin<AdminOverview>('/overview')).settings.cutoutMode,
    );
    await select.selectOption('fast');
    await settings.getByRole('button', { name: 'Save settings' }).click();
    await settings.getByRole('status').getByText('Saved.').waitFor();
    expect((await admin<AdminOverview>('/overview')).settings.cutoutMode).toBe('fast');
    await select.selectOption('quality');
    await settings.getByRole('button', { name: 'Save settings' }).click();
    await expect
      .poll(async () => (await admin<AdminOverview>('/overview')).settings.cutoutMode)
      .toBe('quality');
  });

  test('Download all: the browser saves the zip to disk from a single-use link', async () => {
    const [download] = await Promise.all([
      dashboard.waitForEvent('download', { timeout: 30_000 }),
      dashboard.getByRole('button', { name: 'Download all (zip)' }).click(),
    ]);
    expect(download.url()).toContain('ticket=');
    expect(download.suggestedFilename()).toMatch(/\.zip$/);
    const file = await download.path();
    const names = await zipEntries(await readFile(file));
    expect(names).toContain('photos.json');
    expect(names.some((name) => name.startsWith('cutouts/'))).toBe(true);
    // The zip never went through the page (no fetch of it into memory).
    expect(
      requests.filter((request) => new URL(request.url()).pathname === '/admin/api/export.zip'),
    ).toEqual([]);
    // Single use: the same link is refused the second time.
    expect((await fetch(new URL(download.url(), relay.url))).ok).toBe(false);
  });

  test('Revoke cuts a wall off: closed with wallRevoked, gone from the lists', async () => {
    const tv = await connectDisplay(relay.wsUrl, `pin=${PIN}&protocol=2&role=display`, {
      'User-Agent': 'RevokeMeTV/1.0',
    });
    const closed = new Promise<number>((resolve) => tv.socket.once('close', resolve));
    const hello = JSON.parse((await tv.waitFor(1))[0]!) as { type: string; wallToken?: string };
    expect(hello.type).toBe('hello');
    expect(hello.wallToken).toBeTruthy();
    const wallRow = dashboard.locator('tr[data-wall-id][data-connected="true"]', {
      hasText: 'RevokeMeTV',
    });
    await wallRow.waitFor({ timeout: 10_000 });
    const clientRow = dashboard.locator('tr[data-role="display"]', { hasText: 'RevokeMeTV' });
    await clientRow.waitFor({ timeout: 10_000 });
    await wallRow.getByRole('button', { name: 'Revoke' }).click();
    expect(await closed).toBe(CLOSE_CODES.wallRevoked);
    await dashboard
      .locator('tr[data-wall-id]', { hasText: 'RevokeMeTV' })
      .waitFor({ state: 'detached', timeout: 10_000 });
    await clientRow.waitFor({ state: 'detached', timeout: 10_000 });
    // The other wall is untouched.
    await dashboard.locator('tr[data-role="display"]', { hasText: 'LobbyWall' }).waitFor();
  });

  test('a dropped dashboard socket reconnects and the next snapshot replaces the state', async () => {
    const page = await (
      await browser.newContext({ userAgent: 'Mozilla/5.0 ReconnectingDashboard/1.0' })
    ).newPage();
    const sockets: string[] = [];
    page.on('websocket', (socket) => sockets.push(socket.url()));
    await page.goto(`${relay.url}/admin#token=${relay.relay.config.adminToken}`);
    await page.locator('[data-testid="feed-status"][data-state="live"]').waitFor();
    const own = page.locator('tr[data-role="dashboard"]', { hasText: 'ReconnectingDashboard' });
    await own.getByRole('button', { name: 'Disconnect' }).click();
    await expect.poll(() => sockets.length, { timeout: 10_000 }).toBe(2);
    await page.locator('[data-testid="feed-status"][data-state="live"]').waitFor();
    // Deleted while this page still shows it: a photo removed through the API leaves the feed.
    const first = await page.locator('.feed li').first().getAttribute('data-photo-id');
    await admin(`/photos/${first}`, { method: 'DELETE' });
    await page.locator(`.feed li[data-photo-id="${first}"]`).waitFor({ state: 'detached' });
    const { body } = await upload(relay.url, await syntheticPhoto(600, 400), {
      description: 'after the reconnect',
    });
    await page.locator(`.feed li[data-photo-id="${String(body.id)}"]`).waitFor({ timeout: 10_000 });
    await page.context().close();
  });

  test('nothing was polled during the whole session', () => {
    const polled = requests
      .map((request) => `${request.method()} ${new URL(request.url()).pathname}`)
      .filter((line) => POLLED.some((pathname) => line.endsWith(` ${pathname}`)));
    expect(polled).toEqual([]);
  });
});
