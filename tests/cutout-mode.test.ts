import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, loadRelayConfig } from '../electron/config/relay-config.ts';
import { modelMissingReason, syntheticPhoto } from './helpers.ts';
import { startTestRelay, upload, type TestRelay } from './relay-helpers.ts';

/**
 * The relay honours the cut-out mode: `quality` by default, the dashboard's setting for the next
 * photos, CUTOUT_MODE from the environment. The stored mask tells which pipeline made a photo:
 * `fast` keeps the model's 320×320 output, `quality` its working mask (long edge 640 here).
 */
const skipReason = await modelMissingReason('u2netp');
if (skipReason) console.warn(`Skipping the cut-out mode tests: ${skipReason}`);

/** Width and height from the stored mask file's header (uint32 LE each). */
async function maskSize(relay: TestRelay, id: string): Promise<[number, number]> {
  const file = await relay.relay.store.readMask(id);
  return [file.readUInt32LE(0), file.readUInt32LE(4)];
}

async function uploadOne(relay: TestRelay): Promise<string> {
  const answer = await upload(relay.url, await syntheticPhoto(1280, 960));
  expect(answer.status).toBe(200);
  return (answer.body as { id: string }).id;
}

test('CUTOUT_MODE: quality or fast, anything else refused by name', () => {
  expect(loadRelayConfig({}).cutoutMode).toBeUndefined();
  expect(loadRelayConfig({ CUTOUT_MODE: 'fast' }).cutoutMode).toBe('fast');
  expect(() => loadRelayConfig({ CUTOUT_MODE: 'best' })).toThrow(ConfigError);
  expect(() => loadRelayConfig({ CUTOUT_MODE: 'best' })).toThrow(/CUTOUT_MODE/);
  // As people write it: case and spaces do not matter, empty is unset.
  expect(loadRelayConfig({ CUTOUT_MODE: ' Fast ' }).cutoutMode).toBe('fast');
  expect(loadRelayConfig({ CUTOUT_MODE: '' }).cutoutMode).toBeUndefined();
});

describe.skipIf(skipReason)('the relay and the cut-out mode', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay();
  });
  afterAll(() => relay.close());

  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${relay.url}/admin/api${path}`, {
      ...init,
      headers: {
        Authorization: `Bearer ${relay.relay.config.adminToken}`,
        'Content-Type': 'application/json',
      },
    });

  test('quality by default; the dashboard setting switches the next photos', async () => {
    const overview = (await (await admin('/overview')).json()) as {
      settings: { cutoutMode: string };
    };
    expect(overview.settings.cutoutMode).toBe('quality');
    expect(await maskSize(relay, await uploadOne(relay))).toEqual([640, 480]);

    const saved = await admin('/settings', {
      method: 'PUT',
      body: JSON.stringify({ cutoutMode: 'fast' }),
    });
    expect(saved.status).toBe(200);
    expect(((await saved.json()) as { cutoutMode: string }).cutoutMode).toBe('fast');
    expect(await maskSize(relay, await uploadOne(relay))).toEqual([320, 320]);

    const refused = await admin('/settings', {
      method: 'PUT',
      body: JSON.stringify({ cutoutMode: 'best' }),
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { message: string }).message).toMatch(/cutoutMode/);
  });

  test("a full-size render follows the mode its photo was made in, not today's setting", async () => {
    await admin('/settings', { method: 'PUT', body: JSON.stringify({ cutoutMode: 'quality' }) });
    const id = await uploadOne(relay);
    await admin('/settings', { method: 'PUT', body: JSON.stringify({ cutoutMode: 'fast' }) });
    const response = await admin(`/photos/${id}/cutout?size=full`);
    expect(response.status).toBe(200);
    const served = Buffer.from(await response.arrayBuffer());
    const record = relay.relay.store.get(id)!;
    const original = await relay.relay.store.readOriginal(record);
    const file = await relay.relay.store.readMask(id);
    const mask = {
      width: file.readUInt32LE(0),
      height: file.readUInt32LE(4),
      data: new Uint8Array(file.subarray(8)),
    };
    const asQuality = await relay.relay.engine.render(original, mask, { mode: 'quality' });
    const asFast = await relay.relay.engine.render(original, mask, { mode: 'fast' });
    expect(served.equals(asQuality.image)).toBe(true);
    expect(served.equals(asFast.image)).toBe(false);
  });
});

describe.skipIf(skipReason)('CUTOUT_MODE at start', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay({ CUTOUT_MODE: 'fast' });
  });
  afterAll(() => relay.close());

  test('the environment decides the mode', async () => {
    expect(await maskSize(relay, await uploadOne(relay))).toEqual([320, 320]);
  });
});
