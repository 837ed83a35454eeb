import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { parseSharedMessage } from '../electron/cluster/shared-messages.ts';
import { ConfigError, loadRelayConfig } from '../electron/config/relay-config.ts';
import { WallCredentials } from '../electron/relay/wall-credentials.ts';
import { PhotoStore } from '../electron/store/photo-store.ts';
import { wallRelays } from '../shared/wall-relays.ts';
import { sharedPhotoEntry } from './cluster-helpers.ts';

/**
 * What a shared event takes from outside without a process to run: REDIS_URL's rule, the shared
 * log's entries as untrusted input, wall credentials that stay revoked, and the relays a wall
 * page may move to. (The processes themselves: cluster.test.ts, cluster-browser.test.ts.)
 */
const relayConfig = (REDIS_URL: string) =>
  loadRelayConfig({ EVENT_PIN: '123456', DATA_DIR: os.tmpdir(), REDIS_URL });

describe('REDIS_URL', () => {
  test('a Redis on this machine needs no password; one elsewhere must have one', () => {
    for (const url of ['redis://127.0.0.1:6379', 'redis://localhost:6380', 'redis://[::1]:6379'])
      expect(relayConfig(url).redisUrl).toBe(url);
    for (const url of ['redis://:s3cret@10.0.0.5:6379', 'rediss://user:s3cret@redis.lan:6380'])
      expect(relayConfig(url).redisUrl).toBe(url);
    for (const url of [
      'redis://10.0.0.5:6379',
      'rediss://redis.lan:6380',
      'redis://user@10.0.0.5',
    ]) {
      expect(() => relayConfig(url)).toThrow(ConfigError);
      expect(() => relayConfig(url)).toThrow(/without a password.*requirepass/);
    }
  });
});

describe('the shared log’s entries', () => {
  const photo = sharedPhotoEntry({
    description: '<img src=x onerror=alert(1)>',
    processingTime: 12.5,
    width: 640,
    height: 480,
  });
  const entry = (message: unknown) => parseSharedMessage(JSON.stringify(message));

  test('well-formed entries are taken as they are (text is text, never HTML)', () => {
    const parsed = entry({
      type: 'photo',
      from: 'relay-1a2b3c4d',
      seq: 7,
      url: 'http://10.0.0.5:8000',
      photo,
    });
    expect(parsed).toEqual({
      ok: true,
      message: {
        type: 'photo',
        from: 'relay-1a2b3c4d',
        seq: 7,
        url: 'http://10.0.0.5:8000',
        photo,
      },
    });
    expect(entry({ type: 'removed', from: 'relay-1', id: photo.id }).ok).toBe(true);
  });

  test.each([
    ['not JSON', '{'],
    ['a path for an id', { type: 'removed', from: 'relay-1', id: '../../etc/passwd' }],
    [
      'a photo id with a slash',
      { type: 'photo', from: 'r', url: 'http://a', photo: { ...photo, id: 'a/b' } },
    ],
    [
      'an extension with a dot',
      { type: 'photo', from: 'r', url: 'http://a', photo: { ...photo, inputFormat: '../x' } },
    ],
    ['a relay address that is not http', { type: 'photo', from: 'r', url: 'file:///etc', photo }],
    ['an unknown type', { type: 'exec', from: 'r' }],
    [
      'a setting that is not shared',
      {
        type: 'settings',
        from: 'r',
        settings: {
          pin: '123456',
          approvalMode: false,
          background: 'transparent',
          displayMaxEdge: 1920,
          cutoutMode: 'fast',
          model: 'u2netp',
        },
      },
    ],
    [
      'a PIN that is not letters and digits',
      {
        type: 'settings',
        from: 'r',
        settings: {
          pin: '<b>1234',
          approvalMode: false,
          background: 'transparent',
          displayMaxEdge: 1920,
          cutoutMode: 'fast',
        },
      },
    ],
    [
      'a display size out of range',
      {
        type: 'settings',
        from: 'r',
        settings: {
          pin: null,
          approvalMode: false,
          background: 'transparent',
          displayMaxEdge: 1e9,
          cutoutMode: 'fast',
        },
      },
    ],
    [
      'a wall whose hash is not sha256',
      {
        type: 'wall',
        from: 'r',
        wall: {
          id: randomUUID(),
          tokenHash: 'x',
          label: '',
          createdAt: photo.timestamp,
          lastSeenAt: photo.timestamp,
        },
      },
    ],
    ['a seq that is not a positive integer', { type: 'removed', from: 'r', id: photo.id, seq: -1 }],
  ])('refused whole: %s', (_why, message) => {
    const parsed = typeof message === 'string' ? parseSharedMessage(message) : entry(message);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.why.length).toBeGreaterThan(0);
  });
});

describe('wall credentials across relays', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  test('a revoked wall is not brought back by late news of it, even after a restart', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-walls-'));
    dirs.push(dir);
    let store = new PhotoStore(dir);
    let walls = new WallCredentials(store, () => []);
    const issued = walls.issue('lobby wall')!;
    const row = store.listWalls().find((wall) => wall.id === issued.id)!;
    expect(walls.verify(issued.token)).toBe(issued.id);
    expect(walls.revoke(issued.id, { share: false })).toBe(true);
    expect(walls.adopt(row)).toBe(false);
    store.close();
    store = new PhotoStore(dir);
    walls = new WallCredentials(store, () => []);
    expect(walls.adopt(row)).toBe(false);
    expect(walls.verify(issued.token)).toBeUndefined();
    // Another relay's new wall is adopted as before.
    expect(walls.adopt({ ...row, id: randomUUID() })).toBe(true);
    store.close();
  });
});

describe('the relays a wall may move to (relays=)', () => {
  test('its own relay first, then each listed http(s) origin once; nothing else', () => {
    expect(
      wallRelays(
        ' http://10.0.0.6:8000/display?x=1 ,javascript:alert(1),https://b.lan,http://10.0.0.6:8000,ftp://c,,not a url',
        'http://10.0.0.5:8000',
      ),
    ).toEqual(['http://10.0.0.5:8000', 'http://10.0.0.6:8000', 'https://b.lan']);
    expect(wallRelays(null, 'http://a:1')).toEqual(['http://a:1']);
    // Nothing that would mean something else in a Content-Security-Policy.
    expect(
      wallRelays('http://*,http://a"b;c,http://a%3Bb,http://x%2Cy,http://[::1]:8001', 'http://a:1'),
    ).toEqual(['http://a:1', 'http://[::1]:8001']);
    const many = Array.from({ length: 20 }, (_, i) => `http://10.0.0.${i + 10}:8000`).join(',');
    expect(wallRelays(many, 'http://a:1')).toHaveLength(9);
  });
});
