import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ERROR_CATALOG, PhotoRelayError } from '../shared/errors.ts';
import type { AdminMetrics } from '../shared/protocol.ts';
import { ConfigError, loadRelayConfig } from '../electron/config/relay-config.ts';
import { assertFreeDisk, diskSpace, forgetDiskSpace } from '../electron/store/disk-guard.ts';
import { builtPagesMissingReason, chromiumMissingReason, launchChromium } from './browser.ts';
import { modelMissingReason, repoRoot, syntheticPhoto } from './helpers.ts';
import { startTestRelay, upload, type TestRelay } from './relay-helpers.ts';

const skipReason = await modelMissingReason('u2netp');
if (skipReason) console.warn(`Skipping the relay's disk-guard tests: ${skipReason}`);

/** Every file under `dir` (the data folder), relative. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
}

describe('the free-space guard', () => {
  test('MIN_FREE_DISK_MB: 500 MB by default, 0 turns it off, nonsense is refused by name', () => {
    expect(loadRelayConfig({}).minFreeDiskBytes).toBe(500 * 1024 * 1024);
    expect(loadRelayConfig({ MIN_FREE_DISK_MB: '0' }).minFreeDiskBytes).toBe(0);
    expect(() => loadRelayConfig({ MIN_FREE_DISK_MB: 'lots' })).toThrow(ConfigError);
    expect(() => loadRelayConfig({ MIN_FREE_DISK_MB: 'lots' })).toThrow(/MIN_FREE_DISK_MB/);
  });

  test('refuses with E_DISK_FULL (507) under the minimum; a disk it cannot read is not refused', () => {
    const here = repoRoot;
    const { freeBytes, totalBytes } = diskSpace(here);
    expect(freeBytes).toBeGreaterThan(0);
    expect(totalBytes).toBeGreaterThanOrEqual(freeBytes);
    expect(() => assertFreeDisk(here, 0)).not.toThrow();
    expect(() => assertFreeDisk(here, 1)).not.toThrow();
    let refused: unknown;
    try {
      assertFreeDisk(here, totalBytes + 1);
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(PhotoRelayError);
    expect((refused as PhotoRelayError).code).toBe('E_DISK_FULL');
    expect((refused as PhotoRelayError).status).toBe(507);
    expect(ERROR_CATALOG.E_DISK_FULL.message).toMatch(/out of storage space.*Tell the operator/);
    // statfs fails on a folder that does not exist: the write itself will say what is wrong.
    expect(() => assertFreeDisk(path.join(here, 'no-such-folder'), 1e15)).not.toThrow();
    expect(diskSpace(path.join(here, 'no-such-folder'))).toEqual({ freeBytes: 0, totalBytes: 0 });
  });
});

describe('room for the bodies in flight', () => {
  test('free space less what the uploads in flight may still write is held to the minimum', () => {
    const here = repoRoot;
    // Within the 1 s cache every call sees the same figure.
    forgetDiskSpace();
    const { freeBytes } = diskSpace(here);
    const MB = 1024 * 1024;
    // 20 MB to spare: one body of 10 MB in flight fits, three do not.
    const min = freeBytes - 20 * MB;
    expect(() => assertFreeDisk(here, min, 10 * MB)).not.toThrow();
    expect(() => assertFreeDisk(here, min, 30 * MB)).toThrow(/storage/);
    expect(() => assertFreeDisk(here, min)).not.toThrow();
    // 0 is off, whatever is in flight.
    expect(() => assertFreeDisk(here, 0, freeBytes * 2)).not.toThrow();
  });
});

describe.skipIf(skipReason)('a relay that is out of space', () => {
  let relay: TestRelay;
  // 100 TB: more than any disk this runs on has free.
  const minFreeMb = 100_000_000;
  beforeAll(async () => {
    relay = await startTestRelay({ MIN_FREE_DISK_MB: String(minFreeMb) });
  });
  afterAll(() => relay.close());

  test('refuses an upload 507 with the error JSON, and stores nothing', async () => {
    const before = await filesUnder(relay.dataDir);
    const photo = await syntheticPhoto(640, 480);
    const refused = await upload(relay.url, photo, {
      headers: { 'Idempotency-Key': 'disk-full-1' },
    });
    expect(refused.status).toBe(507);
    expect(refused.body).toEqual({
      status: 'error',
      code: 'E_DISK_FULL',
      message: ERROR_CATALOG.E_DISK_FULL.message,
    });
    // Nothing kept: no original, no temp file, no record, and the key is still free.
    expect(await filesUnder(relay.dataDir)).toEqual(before);
    expect(relay.relay.store.list(100)).toEqual([]);
    expect(relay.relay.store.findUploadKey('disk-full-1')).toBeUndefined();
  });

  test('a resend of a known key is refused too (its body streams to incoming/ like any other)', async () => {
    const config = relay.relay.config;
    const photo = await syntheticPhoto(320, 240);
    config.minFreeDiskBytes = 0;
    try {
      const first = await upload(relay.url, photo, {
        headers: { 'Idempotency-Key': 'disk-known' },
      });
      expect(first.status).toBe(200);
    } finally {
      config.minFreeDiskBytes = minFreeMb * 1024 * 1024;
    }
    const again = await upload(relay.url, photo, { headers: { 'Idempotency-Key': 'disk-known' } });
    expect([again.status, again.body.code]).toEqual([507, 'E_DISK_FULL']);
    expect(await readdir(path.join(relay.dataDir, 'incoming'))).toEqual([]);
  });

  test('the dashboard metrics carry the minimum beside the free space', async () => {
    const response = await fetch(`${relay.url}/admin/api/metrics`, {
      headers: { Authorization: `Bearer ${relay.relay.config.adminToken}` },
    });
    const metrics = (await response.json()) as AdminMetrics;
    expect(metrics.disk.minFreeBytes).toBe(minFreeMb * 1024 * 1024);
    expect(metrics.disk.freeBytes).toBeGreaterThan(0);
    expect(metrics.disk.freeBytes).toBeLessThan(metrics.disk.minFreeBytes);
  });

  const pagesMissing = chromiumMissingReason() ?? builtPagesMissingReason();
  test.skipIf(pagesMissing)(
    'the dashboard says uploads are refused for lack of space',
    async () => {
      const browser: Browser = await launchChromium();
      try {
        const page = await browser.newPage();
        await page.goto(`${relay.url}/admin#token=${relay.relay.config.adminToken}`);
        const warning = page.locator('[data-testid="disk-warning"][data-state="refusing"]');
        await warning.waitFor({ timeout: 15_000 });
        expect(await warning.textContent()).toMatch(/Uploads are refused/);
      } finally {
        await browser.close();
      }
    },
  );
});
