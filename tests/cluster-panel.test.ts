import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ClusterStatus } from '../shared/cluster.ts';
import type { AdminOverview } from '../shared/protocol.ts';
import {
  builtPagesMissingReason,
  chromiumMissingReason,
  launchChromium,
  openDashboard,
} from './browser.ts';
import { modelMissingReason, repoRoot, syntheticPhoto } from './helpers.ts';
import { startTestRelay, upload, type TestRelay } from './relay-helpers.ts';

/**
 * The dashboard's Machines panel in real Chromium against one real relay with no REDIS_URL (the
 * cluster-mode check, against a real Redis, lives with the cluster tests).
 */
const artifacts = path.join(repoRoot, 'tests/artifacts');
const skipReason =
  (await modelMissingReason('u2netp')) ?? chromiumMissingReason() ?? builtPagesMissingReason();
if (skipReason) console.warn(`Skipping Machines panel tests: ${skipReason}`);

const CLUSTER_PATH = '/admin/api/cluster';

describe.skipIf(skipReason)('Machines panel, one relay on its own', () => {
  let browser: Browser;
  let relay: TestRelay;
  let dashboard: Page;
  /** When the dashboard asked for the cluster status (ms since the page was opened). */
  const asked: number[] = [];
  let openedAt = 0;

  const clusterStatus = async (): Promise<ClusterStatus> => {
    const response = await fetch(`${relay.url}${CLUSTER_PATH}`, {
      headers: { Authorization: `Bearer ${relay.relay.config.adminToken}` },
    });
    expect(response.status).toBe(200);
    return (await response.json()) as ClusterStatus;
  };
  /** What a browser does when the tab is hidden or shown (Chromium headless never hides it). */
  const setVisibility = (state: 'visible' | 'hidden') =>
    dashboard.evaluate(`(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => '${state}' });
      document.dispatchEvent(new Event('visibilitychange'));
    })()`);

  beforeAll(async () => {
    await mkdir(artifacts, { recursive: true });
    relay = await startTestRelay();
    browser = await launchChromium();
    openedAt = Date.now();
    dashboard = await openDashboard(browser, relay.url, relay.relay.config.adminToken, {
      onRequest: (request) => {
        if (new URL(request.url()).pathname === CLUSTER_PATH) asked.push(Date.now() - openedAt);
      },
    });
  }, 60_000);
  afterAll(async () => {
    await (browser as Browser | undefined)?.close();
    await (relay as TestRelay | undefined)?.close();
  });

  test('the relay answers single mode: no Redis, this relay, its local engine', async () => {
    const status = await clusterStatus();
    expect(status.mode).toBe('single');
    expect(status.role).toBe('relay');
    expect(status.redis).toBeNull();
    expect(status.queue).toBeNull();
    expect(status.relays).toHaveLength(1);
    expect(status.relays[0]!.self).toBe(true);
    expect(status.relays[0]!.id).toBe(status.selfId);
    expect(status.workers).toHaveLength(1);
    expect(status.workers[0]!.kind).toBe('local');
    // Without the token the route answers nothing.
    expect((await fetch(`${relay.url}${CLUSTER_PATH}`)).status).toBe(403);
  });

  test('the panel says the relay runs on its own and how to add machines', async () => {
    const panel = dashboard.getByTestId('cluster-panel');
    await dashboard.getByRole('heading', { name: 'Machines' }).waitFor();
    await panel.and(dashboard.locator('[data-mode="single"]')).waitFor({ timeout: 10_000 });
    const single = panel.getByTestId('cluster-single');
    expect(await single.textContent()).toContain('runs on its own');
    expect(await single.locator('code').allTextContents()).toEqual([
      'REDIS_URL',
      'npx photo-relay worker',
    ]);
    // Nothing of a cluster on a single relay.
    expect(await panel.getByTestId('cluster-redis-state').count()).toBe(0);
    expect(await panel.getByTestId('cluster-queue').count()).toBe(0);
    expect(await panel.getByTestId('cluster-unshared').count()).toBe(0);
    expect(await panel.getByTestId('cluster-error').count()).toBe(0);
  });

  test('this relay and its local worker, as the relay reports them', async () => {
    const status = await clusterStatus();
    const self = status.relays[0]!;
    const engine = status.workers[0]!;
    const panel = dashboard.getByTestId('cluster-panel');
    const rows = panel.getByTestId('cluster-relay-row');
    expect(await rows.count()).toBe(1);
    const row = rows.first();
    expect(await row.getAttribute('data-relay-id')).toBe(self.id);
    expect(await row.getAttribute('data-self')).toBe('true');
    expect(await row.getAttribute('data-online')).toBe(String(self.online));
    expect(await row.getAttribute('data-url')).toBe(self.url);
    expect(await row.getByTestId('cluster-relay-url').textContent()).toBe(new URL(self.url).host);
    expect(await row.getByTestId('cluster-relay-self').textContent()).toBe('this relay');
    expect(await row.getByTestId('cluster-relay-online').textContent()).toBe(
      self.online ? 'online' : 'offline',
    );
    expect(await row.getByTestId('cluster-relay-local-worker').textContent()).toBe(
      self.localWorker ? 'yes' : 'no',
    );

    const workers = panel.getByTestId('cluster-worker-row');
    expect(await workers.count()).toBe(1);
    const worker = workers.first();
    expect(await worker.getAttribute('data-worker-id')).toBe(engine.id);
    expect(await worker.getAttribute('data-kind')).toBe('local');
    expect(await worker.getByTestId('cluster-worker-kind').textContent()).toBe('local');
    expect(await worker.getByTestId('cluster-worker-host').textContent()).toBe(engine.host);
    expect(await worker.getByTestId('cluster-worker-threads').textContent()).toBe(
      String(engine.threads),
    );
    // The model the relay runs (the same name the Join panel shows).
    expect(await worker.getByTestId('cluster-worker-model').textContent()).toBe(engine.model);
    const overview = (await (
      await fetch(`${relay.url}/admin/api/overview`, {
        headers: { Authorization: `Bearer ${relay.relay.config.adminToken}` },
      })
    ).json()) as AdminOverview;
    expect(engine.model).toBe(overview.model);

    await dashboard.screenshot({ path: path.join(artifacts, 'cluster-panel-single.png') });
  });

  test('a processed photo shows up in the worker row within a poll or two', async () => {
    const before = (await clusterStatus()).workers[0]!.done;
    const { status } = await upload(relay.url, await syntheticPhoto(600, 400));
    expect(status).toBe(200);
    await expect
      .poll(async () => (await clusterStatus()).workers[0]!.done, { timeout: 30_000 })
      .toBe(before + 1);
    const done = dashboard.getByTestId('cluster-worker-row').getByTestId('cluster-worker-done');
    await expect
      .poll(async () => Number(await done.textContent()), { timeout: 6_000 })
      .toBe(before + 1);
    expect(await dashboard.getByTestId('cluster-worker-failed').textContent()).toBe('0');
  });

  test('asked every 2 s while visible, never while hidden, at once when shown again', async () => {
    // While visible: one request at a time, about every 2 s.
    const from = asked.length;
    await dashboard.waitForTimeout(6_500);
    const visible = asked.slice(from);
    expect(visible.length).toBeGreaterThanOrEqual(2);
    expect(visible.length).toBeLessThanOrEqual(4);
    for (let i = 1; i < visible.length; i++) {
      expect(visible[i]! - visible[i - 1]!).toBeGreaterThanOrEqual(1_900);
    }

    await setVisibility('hidden');
    const hiddenFrom = asked.length;
    await dashboard.waitForTimeout(5_000);
    expect(asked.length).toBe(hiddenFrom);

    const shownAt = Date.now() - openedAt;
    await setVisibility('visible');
    await expect.poll(() => asked.length, { timeout: 1_000 }).toBeGreaterThan(hiddenFrom);
    expect(asked[hiddenFrom]! - shownAt).toBeLessThan(1_000);
  });
});
