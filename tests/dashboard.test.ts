import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { modelMissingReason, repoRoot, syntheticPhoto } from './helpers.ts';
import { chromiumMissingReason, launchChromium } from './browser.ts';
import { PIN, startTestRelay, upload, type TestRelay } from './relay-helpers.ts';

/** The operator's dashboard in real Chromium against a real relay (pages built by pages.test). */
const artifacts = path.join(repoRoot, 'tests/artifacts');
const skipReason =
  (await modelMissingReason('u2netp')) ??
  chromiumMissingReason() ??
  (existsSync(path.join(repoRoot, 'dist/renderer/pages/admin/index.html'))
    ? undefined
    : 'needs the built pages (npm run build:pages)');
if (skipReason) console.warn(`Skipping dashboard tests: ${skipReason}`);

describe.skipIf(skipReason)('operator dashboard in Chromium', () => {
  let browser: Browser;
  let relay: TestRelay;
  let dashboard: Page;
  let wall: Page;

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
    dashboard = await (
      await browser.newContext({ viewport: { width: 1440, height: 1000 } })
    ).newPage();
    await dashboard.goto(`${relay.url}/admin#token=${relay.relay.config.adminToken}`);
  }, 60_000);
  afterAll(async () => {
    await (browser as Browser | undefined)?.close();
    await (relay as TestRelay | undefined)?.close();
  });

  test('without the token: nothing but a refusal', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${relay.url}/admin`);
    await page.getByRole('alert').getByText('needs the admin token').waitFor();
    expect(await page.locator('.panel').count()).toBe(0);
    await page.context().close();
    const japanese = await (await browser.newContext({ locale: 'ja-JP' })).newPage();
    await japanese.goto(`${relay.url}/admin#token=${relay.relay.config.adminToken}`);
    await japanese.getByRole('heading', { name: '写真' }).waitFor();
    await japanese.context().close();
  });

  test('a connected display appears in Clients; the token left the address bar', async () => {
    await dashboard
      .locator('tr[data-role="display"]', { hasText: 'LobbyWall' })
      .waitFor({ timeout: 10_000 });
    expect(dashboard.url()).not.toContain('token');
  });

  test('a guest with the uploader page open appears in Clients as an uploader', async () => {
    const phone = await (
      await browser.newContext({
        viewport: { width: 390, height: 844 },
        isMobile: true,
        userAgent: 'GuestPhone/1.0 Mobile',
      })
    ).newPage();
    await phone.goto(`${relay.url}/?pin=${PIN}`);
    await dashboard
      .locator('tr[data-role="uploader"]', { hasText: 'GuestPhone' })
      .waitFor({ timeout: 10_000 });
    await phone.context().close();
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
      .toBeGreaterThanOrEqual(1);
    await wall.locator('figure.shown img').first().waitFor({ timeout: 10_000 });
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
    await item.getByRole('button', { name: 'Show' }).waitFor();
  });

  test('approval mode holds a photo back until approved', async () => {
    await dashboard.getByLabel(/Approval mode/).check();
    await expect
      .poll(
        async () =>
          (
            (await (
              await fetch(`${relay.url}/admin/api/overview`, {
                headers: { Authorization: `Bearer ${relay.relay.config.adminToken}` },
              })
            ).json()) as { approvalMode: boolean }
          ).approvalMode,
      )
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
    await dashboard.getByLabel(/Approval mode/).uncheck();
  });
});
