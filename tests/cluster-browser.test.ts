import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ClusterStatus } from '../shared/cluster.ts';
import {
  builtPagesMissingReason,
  chromiumMissingReason,
  launchChromium,
  openDashboard,
} from './browser.ts';
import {
  admin,
  redisMissingReason,
  spawnClusterRelay,
  startTwoRelays,
  startRedis,
  stopProcess,
  type TestRedis,
  until,
} from './cluster-helpers.ts';
import { modelMissingReason, syntheticPhoto } from './helpers.ts';
import { PIN, upload } from './relay-helpers.ts';

/**
 * A shared event in real Chromium: a redis-server of the test's own, two relay processes (each
 * with its local worker, THREADS=1), the operator's Machines panel on one of them, and a wall
 * given both relays' addresses that moves to the other when its relay is killed.
 */
const skipReason =
  redisMissingReason() ??
  (await modelMissingReason('u2netp')) ??
  chromiumMissingReason() ??
  builtPagesMissingReason();
if (skipReason) console.warn(`Skipping the shared event in Chromium: ${skipReason}`);

type Relay = Awaited<ReturnType<typeof spawnClusterRelay>>;

describe.skipIf(skipReason)('a shared event in Chromium', () => {
  let dir: string;
  let redis: TestRedis;
  let relayA: Relay;
  let relayB: Relay;
  let browser: Browser;
  let photo: Buffer;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-cluster-browser-'));
    redis = await startRedis(dir);
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: 'browser-event', THREADS: '1' };
    [relayA, relayB] = await startTwoRelays(dir, env);
    browser = await launchChromium();
    photo = await syntheticPhoto(900, 600);
  }, 180_000);

  afterAll(async () => {
    await (browser as Browser | undefined)?.close();
    const relays = [relayA, relayB] as (Relay | undefined)[];
    await Promise.all(relays.flatMap((relay) => (relay ? [stopProcess(relay)] : [])));
    await (redis as TestRedis | undefined)?.stop();
    await rm(dir, { recursive: true, force: true });
  }, 60_000);

  test('the Machines panel: both relays, both local workers, Redis away and back with the photos it kept', async () => {
    await expect
      .poll(
        async () =>
          (await admin<ClusterStatus>(relayA, '/cluster')).relays.filter((r) => r.online).length,
        { timeout: 20_000, interval: 250 },
      )
      .toBe(2);
    const dashboard = await openDashboard(browser, relayA.url, relayA.adminToken);
    const panel = dashboard.getByTestId('cluster-panel');
    await panel.and(dashboard.locator('[data-mode="cluster"]')).waitFor({ timeout: 10_000 });
    const redisLine = panel.getByTestId('cluster-redis-state');
    await redisLine.and(dashboard.locator('[data-state="connected"]')).waitFor();
    expect(await panel.getByTestId('cluster-redis-url').textContent()).toBe(redis.url);

    const relayRows = panel.getByTestId('cluster-relay-row');
    await expect.poll(() => relayRows.count(), { timeout: 10_000 }).toBe(2);
    const rows: [string | null, string | null][] = [];
    for (const row of await relayRows.all())
      rows.push([await row.getAttribute('data-url'), await row.getAttribute('data-self')]);
    expect(rows.sort()).toEqual(
      [
        [relayA.url, 'true'],
        [relayB.url, 'false'],
      ].sort(),
    );
    const workerRows = panel.getByTestId('cluster-worker-row');
    await expect.poll(() => workerRows.count(), { timeout: 10_000 }).toBe(2);
    for (const row of await workerRows.all())
      expect(await row.getAttribute('data-kind')).toBe('local');
    expect(await panel.getByTestId('cluster-queue-waiting').textContent()).toMatch(/^\d+$/);
    expect(await panel.getByTestId('cluster-unshared').count()).toBe(0);

    // Redis dies: the panel says so, and what this relay accepted meanwhile waits to be shared.
    await redis.kill();
    await redisLine.and(dashboard.locator(':not([data-state="connected"])')).waitFor({
      timeout: 15_000,
    });
    expect((await upload(relayA.url, photo, { description: 'while Redis was away' })).status).toBe(
      200,
    );
    await panel.getByTestId('cluster-unshared').waitFor({ timeout: 15_000 });
    expect(await panel.getByTestId('cluster-unshared').textContent()).toMatch(/1/);

    await redis.restart();
    await redisLine.and(dashboard.locator('[data-state="connected"]')).waitFor({ timeout: 20_000 });
    await panel.getByTestId('cluster-unshared').waitFor({ state: 'detached', timeout: 20_000 });
    // B has it too, once.
    await expect
      .poll(
        async () =>
          (await admin<{ description: string }[]>(relayB, '/photos')).filter(
            (p) => p.description === 'while Redis was away',
          ).length,
        { timeout: 20_000, interval: 250 },
      )
      .toBe(1);
    await dashboard.context().close();
  }, 120_000);

  test('a wall given both relays moves to B when A is killed, and shows what B receives', async () => {
    const page: Page = await (
      await browser.newContext({ viewport: { width: 1280, height: 720 } })
    ).newPage();
    // The operator's display link lists the other relay (the dashboard's QR code and link).
    let displayUrl = '';
    await until(
      async () => {
        const overview = await admin<{ displayUrls: string[] }>(relayA, '/overview');
        displayUrl = overview.displayUrls.find((url) => url.startsWith(relayA.url)) ?? '';
        return displayUrl.includes('relays=');
      },
      'A’s display link to list B',
      20_000,
    );
    expect(new URL(displayUrl).searchParams.get('relays')).toBe(relayB.url);
    await page.goto(`${displayUrl}&interval=60`);
    // The page may reach the relays it was handed that are http(s) origins, and no other origin.
    const handed = await fetch(
      `${relayA.url}/display?pin=${PIN}&relays=${encodeURIComponent(
        `${relayB.url}/x?y, javascript:alert(1),ftp://elsewhere,http://a"b;c`,
      )}`,
    );
    const policy = handed.headers.get('content-security-policy')!;
    expect(policy).toContain(`img-src 'self' blob: data: ${relayB.url};`);
    expect(policy).toContain(`${relayB.url} ${relayB.url.replace('http', 'ws')};`);
    expect(policy).not.toMatch(/javascript|ftp|elsewhere|"|\/x/);

    const shown = (description: string) =>
      page.locator('figure.shown', { has: page.locator('figcaption', { hasText: description }) });
    expect((await upload(relayA.url, photo, { description: 'on A' })).status).toBe(200);
    await shown('on A').waitFor({ timeout: 30_000 });
    // From the page's own relay: a relative address.
    expect(await shown('on A').locator('img').getAttribute('src')).toMatch(/^\/api\/photos\//);

    relayA.child.kill('SIGKILL');
    await relayA.exited;
    expect((await upload(relayB.url, photo, { description: 'on B' })).status).toBe(200);
    await shown('on B').waitFor({ timeout: 45_000 });
    const src = await shown('on B').locator('img').getAttribute('src');
    expect(src).toMatch(new RegExp(`^${relayB.url}/api/photos/[\\w-]+/cutout\\.webp\\?`));
    // The image really came from B (a loaded, non-empty picture).
    expect(
      await shown('on B')
        .locator('img')
        .evaluate((img) => {
          const picture = img as unknown as { complete: boolean; naturalWidth: number };
          return picture.complete && picture.naturalWidth > 0;
        }),
    ).toBe(true);
    // B counts it among its walls.
    await expect
      .poll(async () => (await admin<ClusterStatus>(relayB, '/cluster')).relays, {
        timeout: 10_000,
      })
      .toContainEqual(expect.objectContaining({ url: relayB.url, walls: 1 }));
    await page.context().close();
  }, 120_000);
});
