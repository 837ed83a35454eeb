import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { modelMissingReason, repoRoot, syntheticPhoto } from './helpers.ts';
import { chromiumMissingReason, launchChromium } from './browser.ts';
import { freePort, PIN, startTestRelay, type TestRelay } from './relay-helpers.ts';

/** The uploader and the display wall in real Chromium against a real relay and the real model. */
const artifacts = path.join(repoRoot, 'tests/artifacts');
const skipReason = (await modelMissingReason('u2netp')) ?? chromiumMissingReason();
if (skipReason) console.warn(`Skipping page tests: ${skipReason}`);

const phone = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  locale: 'en-US',
  userAgent:
    'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36',
};

describe.skipIf(skipReason)('LAN pages in Chromium', () => {
  let browser: Browser;
  let relay: TestRelay;
  let port: number;

  beforeAll(async () => {
    execFileSync(
      process.execPath,
      [path.join(repoRoot, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'],
      {
        cwd: repoRoot,
        stdio: 'inherit',
        // vitest sets NODE_ENV=test, which would make Vite build React's development bundle.
        env: { ...process.env, NODE_ENV: 'production' },
      },
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

  async function openDisplay(
    query = '',
  ): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
    const context = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    await page.goto(`${relay.url}/display?pin=${PIN}&interval=60${query}`);
    return { context, page, errors };
  }

  async function openUploader(locale = 'en-US', pin: string | null = PIN) {
    const context = await browser.newContext({ ...phone, locale });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    await page.goto(`${relay.url}/${pin ? `?pin=${pin}` : ''}`);
    return { context, page, errors };
  }

  async function shownOnWall(page: Page, description: string) {
    const figure = page.locator('figure.shown', { hasText: description });
    await figure.waitFor({ timeout: 30_000 });
    const width = await figure
      .locator('img')
      .evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth);
    expect(width).toBeGreaterThan(0);
  }

  test('a photo sent from the phone uploader appears on the display wall', async () => {
    const display = await openDisplay();
    const uploader = await openUploader();
    await uploader.page.getByLabel('Message (optional)').fill('Hello from the phone');
    await uploader.page.getByTestId('gallery').setInputFiles({
      name: 'guest.jpg',
      mimeType: 'image/jpeg',
      buffer: await syntheticPhoto(1600, 1200),
    });
    await uploader.page.getByText('On the screen!').waitFor({ timeout: 30_000 });
    const cutout = uploader.page.locator('img.cutout');
    await expect
      .poll(() =>
        cutout.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth),
      )
      .toBeGreaterThan(0);
    await shownOnWall(display.page, 'Hello from the phone');
    // Protocol 2's compact rendition, not the PNG (issue 12 §4).
    const src = await display.page
      .locator('figure.shown', { hasText: 'Hello from the phone' })
      .locator('img')
      .getAttribute('src');
    expect(src).toMatch(/^\/api\/photos\/[0-9a-f-]{36}\/cutout\.webp\?/);
    await uploader.page.screenshot({
      path: path.join(artifacts, 'uploader-phone.png'),
      fullPage: true,
    });
    await display.page.screenshot({ path: path.join(artifacts, 'display-1080p.png') });
    expect([...uploader.errors, ...display.errors]).toEqual([]);
    await uploader.context.close();
    await display.context.close();
  });

  test('a hostile description is shown as text, never as HTML', async () => {
    const display = await openDisplay();
    const uploader = await openUploader();
    const hostile = '<img src=x onerror="window.__pwned=1"><b>bold</b>';
    await uploader.page.getByLabel('Message (optional)').fill(hostile);
    await uploader.page.getByTestId('gallery').setInputFiles({
      name: '<script>alert(1)</script>.jpg',
      mimeType: 'image/jpeg',
      buffer: await syntheticPhoto(800, 600),
    });
    await uploader.page.getByText('On the screen!').waitFor({ timeout: 30_000 });
    await shownOnWall(display.page, hostile);
    expect(
      await display.page.locator('figcaption', { hasText: hostile }).first().textContent(),
    ).toBe(hostile);
    expect(await display.page.locator('img[src="x"], b').count()).toBe(0);
    expect(await uploader.page.locator('img[src="x"], b, script:not([src])').count()).toBe(0);
    expect(await display.page.evaluate('window.__pwned')).toBeUndefined();
    await uploader.context.close();
    await display.context.close();
  });

  test('a wrong PIN is explained; Japanese browsers get Japanese', async () => {
    const uploader = await openUploader('en-US', null);
    await uploader.page.getByLabel('Event PIN').fill('0000');
    await uploader.page.getByRole('button', { name: 'Join' }).click();
    await uploader.page.getByRole('alert').getByText('That PIN is not right').waitFor();
    await uploader.page.screenshot({ path: path.join(artifacts, 'uploader-wrong-pin.png') });
    await uploader.context.close();
    // A wrong PIN in the link (or remembered from another event) is caught at once, not per photo.
    const stale = await openUploader('en-US', '9999');
    await stale.page.getByLabel('Event PIN').waitFor();
    await stale.context.close();
    const japanese = await openUploader('ja-JP');
    await japanese.page.getByRole('heading', { name: '写真をシェア' }).waitFor();
    await japanese.context.close();
  });

  test('the wall survives a relay restart, and a photo chosen while the relay is down arrives', async () => {
    const display = await openDisplay('&layout=grid');
    const uploader = await openUploader();
    await display.page.locator('.status').waitFor({ state: 'detached', timeout: 30_000 });

    await relay.close(true);
    await display.page.locator('.status').waitFor({ timeout: 10_000 });
    await uploader.page.getByLabel('Message (optional)').fill('sent while down');
    await uploader.page.getByTestId('gallery').setInputFiles({
      name: 'offline.jpg',
      mimeType: 'image/jpeg',
      buffer: await syntheticPhoto(900, 700),
    });
    await uploader.page.locator('[data-state="waiting"]').waitFor();
    await uploader.page.getByText(/retrying in/).waitFor({ timeout: 10_000 });
    await display.page.screenshot({ path: path.join(artifacts, 'display-offline.png') });

    relay = await startTestRelay({ PORT: String(port) }, relay.dataDir);
    await uploader.page.getByText('On the screen!').waitFor({ timeout: 60_000 });
    await shownOnWall(display.page, 'sent while down');
    await display.page.locator('.status').waitFor({ state: 'detached', timeout: 30_000 });
    await display.page.screenshot({ path: path.join(artifacts, 'display-grid-1080p.png') });
    await uploader.context.close();
    await display.context.close();
  }, 120_000);

  test('the outbox survives a page reload while uploads fail', async () => {
    const display = await openDisplay();
    const uploader = await openUploader();
    // Uploads fail at the network level (as on a dropped Wi-Fi); the page itself still loads.
    await uploader.page.route('**/upload/', (route) => route.abort('internetdisconnected'));
    await uploader.page.getByLabel('Message (optional)').fill('survived a reload');
    await uploader.page.getByTestId('gallery').setInputFiles({
      name: 'reload.jpg',
      mimeType: 'image/jpeg',
      buffer: await syntheticPhoto(700, 500),
    });
    await uploader.page.getByText(/retrying in/).waitFor({ timeout: 10_000 });
    await uploader.page.reload();
    await uploader.page
      .locator('[data-state="waiting"]', { hasText: 'survived a reload' })
      .waitFor();
    await uploader.page.unroute('**/upload/');
    await uploader.page.getByText('On the screen!').waitFor({ timeout: 60_000 });
    await shownOnWall(display.page, 'survived a reload');
    await uploader.context.close();
    await display.context.close();
  }, 90_000);

  test('pages carry a strict Content-Security-Policy and load nothing from elsewhere', async () => {
    const response = await fetch(`${relay.url}/`);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
    const display = await openDisplay();
    const foreign: string[] = [];
    display.page.on('request', (request) => {
      const url = new URL(request.url());
      if (
        !['127.0.0.1', 'localhost'].includes(url.hostname) &&
        url.protocol !== 'data:' &&
        url.protocol !== 'blob:'
      ) {
        foreign.push(request.url());
      }
    });
    await display.page.reload();
    await display.page.waitForTimeout(500);
    expect(foreign).toEqual([]);
    await display.context.close();
  });
});
