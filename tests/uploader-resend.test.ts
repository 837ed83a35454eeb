/**
 * The uploader page in real Chromium against a real relay: when the relay processed a photo but
 * its answer never reached the phone (the Wi-Fi dropped on the way back), the phone's resend
 * carries the same Idempotency-Key and the event still has one photo, shown once. A photo the
 * operator deleted while it was in line is final on the phone: shown as removed, never resent.
 */
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { modelMissingReason, repoRoot, syntheticPhoto } from './helpers.ts';
import { chromiumMissingReason, launchChromium } from './browser.ts';
import { connectDisplay, PIN, startTestRelay, type TestRelay } from './relay-helpers.ts';

const skipReason = (await modelMissingReason('u2netp')) ?? chromiumMissingReason();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(skipReason)('the uploader resends as the same photo', () => {
  let browser: Browser;
  let relay: TestRelay;
  beforeAll(async () => {
    execFileSync(
      process.execPath,
      [path.join(repoRoot, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'],
      { cwd: repoRoot, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'production' } },
    );
    relay = await startTestRelay();
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await (browser as Browser | undefined)?.close();
    await (relay as TestRelay | undefined)?.close();
  });

  test('an answer lost on the way back: the resend has the same key, one photo, one broadcast', async () => {
    const display = await connectDisplay(relay.wsUrl);
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    const keys: string[] = [];
    let lost = false;
    // The first upload reaches the relay for real; only its answer is thrown away.
    await page.route('**/upload/', async (route) => {
      keys.push((await route.request().allHeaders())['idempotency-key'] ?? '');
      if (lost) return route.continue();
      lost = true;
      await route.fetch();
      await route.abort('connectionreset');
    });
    await page.goto(`${relay.url}/?pin=${PIN}`);
    await page.getByTestId('gallery').setInputFiles({
      name: 'lost-answer.jpg',
      mimeType: 'image/jpeg',
      buffer: await syntheticPhoto(800, 600),
    });
    await page.getByText('On the screen!').waitFor({ timeout: 60_000 });
    expect(keys.length).toBeGreaterThanOrEqual(2);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(keys).size).toBe(1);
    await sleep(300);
    const photos = relay.relay.store
      .list(100)
      .filter((p) => p.originalFilename === 'lost-answer.jpg');
    expect(photos).toHaveLength(1);
    expect(display.messages).toHaveLength(1);
    display.close();
    await context.close();
  });
});
