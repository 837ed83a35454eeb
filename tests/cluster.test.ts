import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ClusterStatus } from '../shared/cluster.ts';
import {
  admin,
  redisMissingReason,
  spawnClusterRelay,
  sharedPhotoEntry,
  startTwoRelays,
  spawnWorker,
  startRedis,
  stopProcess,
  waitWorkerReady,
  workerHealth,
  type ServedWorker,
  type TestRedis,
  until,
} from './cluster-helpers.ts';
import { modelMissingReason, syntheticPhoto } from './helpers.ts';
import { connectDisplay, PIN, upload, type Display } from './relay-helpers.ts';

/**
 * One event, several machines, all real: a redis-server of the test's own, two relays and two
 * inference workers as separate processes on loopback, real walls on both relays in both wire
 * protocols, the real model.
 */
const skipReason = redisMissingReason() ?? (await modelMissingReason('u2netp'));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Walls {
  v1: Display;
  v2: Display;
}

async function wallsOn(relay: { port: number }): Promise<Walls> {
  const ws = `ws://127.0.0.1:${relay.port}/ws`;
  return {
    v1: await connectDisplay(ws),
    v2: await connectDisplay(ws, `pin=${PIN}&protocol=2&role=display`),
  };
}

/** How many times a wall got the photo with this description. */
function timesShown(wall: Display, description: string): number {
  return wall.messages.filter((text) => {
    const message = JSON.parse(text) as {
      type?: string;
      metadata?: { description: string };
      photo?: { description: string };
    };
    return (
      message.metadata?.description === description ||
      (message.type === 'photo' && message.photo?.description === description)
    );
  }).length;
}

function removedIds(wall: Display): string[] {
  return wall.messages
    .map((text) => JSON.parse(text) as { type?: string; id?: string })
    .filter((message) => message.type === 'removed')
    .map((message) => message.id!);
}

describe.skipIf(skipReason)('several machines through Redis', () => {
  let dir: string;
  let redis: TestRedis;
  let relayA: Awaited<ReturnType<typeof spawnClusterRelay>>;
  let relayB: Awaited<ReturnType<typeof spawnClusterRelay>>;
  const workers: ServedWorker[] = [];
  let wallsA: Walls;
  let wallsB: Walls;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-cluster-'));
    redis = await startRedis(dir);
    env = { REDIS_URL: redis.url, REDIS_PREFIX: 'test-event', LOCAL_WORKER: '0', THREADS: '1' };
    [relayA, relayB] = await startTwoRelays(dir, env);
    workers.push(await spawnWorker(env), await spawnWorker(env));
    await Promise.all(workers.map((worker) => waitWorkerReady(worker)));
    wallsA = await wallsOn(relayA);
    wallsB = await wallsOn(relayB);
  }, 180_000);

  afterAll(async () => {
    // Whatever beforeAll got to start (it may have failed half-way).
    const started = [wallsA, wallsB] as (Walls | undefined)[];
    for (const walls of started) {
      walls?.v1.close();
      walls?.v2.close();
    }
    const processes = [relayA, relayB, ...workers] as (ServedWorker | undefined)[];
    await Promise.all(processes.flatMap((served) => (served ? [stopProcess(served)] : [])));
    await (redis as TestRedis | undefined)?.stop();
    await rm(dir, { recursive: true, force: true });
  }, 60_000);

  test('health and the dashboard say who plays which part', async () => {
    const health = (await (await fetch(`${relayA.url}/healthz`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ role: 'relay', cluster: 'cluster', redis: 'connected' });
    expect((await workerHealth(workers[0]!)).role).toBe('worker');
    const metrics = await (await fetch(workers[0]!.health.replace('healthz', 'metrics'))).text();
    expect(metrics).toContain('photo_relay_process_role{role="worker"} 1');
    await until(async () => {
      const status = await admin<ClusterStatus>(relayB, '/cluster');
      return status.relays.filter((r) => r.online).length === 2 && status.workers.length === 2;
    }, 'both relays and both workers in the cluster view');
    const status = await admin<ClusterStatus>(relayB, '/cluster');
    expect(status).toMatchObject({ mode: 'cluster', role: 'relay', redis: { state: 'connected' } });
    expect(status.relays.find((relay) => relay.self)?.url).toBe(relayB.url);
    expect(status.workers.every((worker) => worker.kind === 'remote' && worker.threads === 1)).toBe(
      true,
    );
    expect(status.queue).toMatchObject({ waiting: 0 });
  });

  test('B took the event PIN of A (B was started without one)', async () => {
    const answer = await fetch(`${relayB.url}/api/join`, { headers: { 'X-Event-Pin': PIN } });
    expect(answer.status).toBe(200);
  });

  test('a photo uploaded to A reaches every wall on A and B exactly once, made by a worker', async () => {
    const before = (await Promise.all(workers.map(workerHealth))).reduce((n, h) => n + h.done, 0);
    const answer = await upload(relayA.url, await syntheticPhoto(900, 700), {
      description: 'first-dance',
    });
    expect(answer.status).toBe(200);
    const walls = [wallsA.v1, wallsA.v2, wallsB.v1, wallsB.v2];
    await until(() => walls.every((wall) => timesShown(wall, 'first-dance') >= 1), 'every wall');
    await sleep(1500); // a duplicate would arrive within this
    for (const wall of walls) expect(timesShown(wall, 'first-dance')).toBe(1);
    const after = (await Promise.all(workers.map(workerHealth))).reduce((n, h) => n + h.done, 0);
    expect(after).toBe(before + 1);
    // B serves the cut-out it copied; the original stays on A.
    const list = await admin<{ id: string; description: string }[]>(relayB, '/photos');
    const id = list.find((photo) => photo.description === 'first-dance')!.id;
    expect(id).toBe(answer.body.id);
    const cutout = await fetch(`${relayB.url}/api/photos/${id}/cutout`, {
      headers: { 'X-Event-Pin': PIN },
    });
    expect(cutout.status).toBe(200);
    expect(cutout.headers.get('content-type')).toContain('image/png');
    const original = await fetch(`${relayB.url}/admin/api/photos/${id}/original`, {
      headers: { Authorization: `Bearer ${relayB.adminToken}` },
    });
    expect(original.status).toBe(404);
  }, 90_000);

  test('hide on B takes it off A’s walls; delete on A takes it off B’s', async () => {
    const list = await admin<{ id: string; description: string }[]>(relayA, '/photos');
    const id = list.find((photo) => photo.description === 'first-dance')!.id;
    await admin(relayB, `/photos/${id}/hide`, { method: 'POST' });
    await until(() => removedIds(wallsA.v2).includes(id), 'A’s wall told it is removed', 20_000);
    const guest = await fetch(`${relayA.url}/api/photos/${id}/cutout`, {
      headers: { 'X-Event-Pin': PIN },
    });
    expect(guest.status).toBe(404);
    await admin(relayB, `/photos/${id}/show`, { method: 'POST' });
    await until(() => timesShown(wallsA.v2, 'first-dance') === 2, 'shown again on A', 20_000);
    const response = await fetch(`${relayA.url}/admin/api/photos/${id}`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${relayA.adminToken}` },
    });
    expect(response.ok).toBe(true);
    await until(
      () => removedIds(wallsB.v2).filter((removed) => removed === id).length === 2,
      'B’s wall told it is removed',
      20_000,
    );
    await until(async () => {
      const photos = await admin<{ id: string }[]>(relayB, '/photos');
      return !photos.some((photo) => photo.id === id);
    }, 'gone from B');
  }, 60_000);

  test('the log is read as untrusted: bad entries refused, an unreachable photo waits aside, a resent entry is not applied again', async () => {
    const redisCli = (...args: string[]) =>
      spawnSync('redis-cli', ['-p', String(redis.port), ...args], { encoding: 'utf8' }).stdout;
    const xadd = (message: unknown) =>
      redisCli('XADD', 'test-event:log', '*', 'm', JSON.stringify(message));
    // A photo shown everywhere, hidden and shown again on A: its "hidden" entry is resent later.
    const sent = await upload(relayA.url, await syntheticPhoto(700, 500), {
      description: 'resent',
    });
    const id = String(sent.body.id);
    await until(() => timesShown(wallsB.v2, 'resent') === 1, 'B’s wall');
    await admin(relayA, `/photos/${id}/hide`, { method: 'POST' });
    await until(() => removedIds(wallsB.v2).includes(id), 'hidden on B', 20_000);
    await admin(relayA, `/photos/${id}/show`, { method: 'POST' });
    await until(() => timesShown(wallsB.v2, 'resent') === 2, 'shown again on B', 20_000);
    const entries = redisCli('XRANGE', 'test-event:log', '-', '+')
      .split('\n')
      .filter((line) => line.startsWith('{'));
    const hiddenEntry = entries.find((line) => {
      const message = JSON.parse(line) as { type: string; id?: string; hidden?: boolean };
      return message.type === 'moderated' && message.id === id && message.hidden;
    });
    expect(hiddenEntry).toMatch(/"seq":\d+/);
    const settingsOf = async (relay: typeof relayB) => {
      const overview = await admin<{ pin: string | null; settings: Record<string, unknown> }>(
        relay,
        '/overview',
      );
      return { pin: overview.pin, ...overview.settings };
    };
    const settingsBefore = await settingsOf(relayB);
    // The routes of the machines: nothing without the secret, "try again" with another one.
    const route = `${relayA.url}/cluster/photos/${id}/cutout`;
    expect((await fetch(route)).status).toBe(404);
    expect((await fetch(route, { headers: { 'x-photo-relay-cluster': 'not-it' } })).status).toBe(
      503,
    );

    const photo = sharedPhotoEntry({ description: 'ghost', originalFilename: 'ghost.jpg' });
    const evilDir = path.join(dir, 'evil');
    // Refused: an id naming a file outside the data folder; settings with a key not shared.
    xadd({
      type: 'photo',
      from: 'relay-evil',
      url: relayA.url,
      photo: { ...photo, id: `../../evil/x` },
    });
    xadd({
      type: 'settings',
      from: 'relay-evil',
      settings: { ...settingsBefore, displayMaxEdge: 512, adminToken: 'x' },
    });
    xadd({ type: 'settings', from: 'relay-evil', settings: { pin: '<b>', background: 'red' } });
    // Valid, but its relay is not there: waits aside, the log goes on.
    xadd({ type: 'photo', from: 'relay-gone', url: 'http://127.0.0.1:9', photo });
    // Sent again after a crash: older than what B applied from A since.
    redisCli('XADD', 'test-event:log', '*', 'm', hiddenEntry!);

    // What A does next reaches B at once: nothing above held the log up.
    const startedAt = Date.now();
    expect(
      (await upload(relayA.url, await syntheticPhoto(640, 480), { description: 'after-bad' }))
        .status,
    ).toBe(200);
    await until(() => timesShown(wallsB.v2, 'after-bad') === 1, 'B’s wall', 30_000);
    expect(Date.now() - startedAt).toBeLessThan(20_000);
    const onB = await admin<{ id: string; hidden: boolean }[]>(relayB, '/photos');
    expect(onB.find((p) => p.id === id)?.hidden).toBe(false); // the resent "hide" was not applied
    expect(onB.some((p) => p.id === photo.id)).toBe(false);
    expect(await settingsOf(relayB)).toEqual(settingsBefore);
    expect(existsSync(evilDir)).toBe(false);
    expect((await admin<ClusterStatus>(relayB, '/cluster')).waiting).toBe(1);
    expect(relayB.output().match(/cluster\.entry-refused/g)?.length).toBe(3);
    expect(timesShown(wallsB.v2, 'resent')).toBe(2);
  }, 90_000);

  test('two operators click at once on two relays: both relays end the same way', async () => {
    const sent = await upload(relayA.url, await syntheticPhoto(600, 400), { description: 'clash' });
    const id = String(sent.body.id);
    await until(() => timesShown(wallsB.v2, 'clash') === 1, 'B’s wall');
    const stateOn = async (relay: typeof relayA) =>
      (await admin<{ id: string; hidden: boolean }[]>(relay, '/photos')).find((p) => p.id === id)
        ?.hidden;
    for (let round = 0; round < 3; round++) {
      await Promise.all([
        admin(relayA, `/photos/${id}/hide`, { method: 'POST' }),
        admin(relayB, `/photos/${id}/show`, { method: 'POST' }),
      ]);
      await sleep(1500);
      await until(
        async () => (await stateOn(relayA)) === (await stateOn(relayB)),
        `round ${round}: A and B to agree`,
        10_000,
      );
    }
  }, 90_000);

  test('kill -9 the worker holding a job: another takes it and the photo arrives once', async () => {
    // Only one worker takes jobs while the photo goes in, so we know which one to kill.
    const [first, second] = workers as [ServedWorker, ServedWorker];
    await stopProcess(second);
    const answer = upload(relayA.url, await syntheticPhoto(1600, 1200), {
      description: 'worker-dies',
    });
    await until(
      async () => (await workerHealth(first).catch(() => ({ running: 0 }))).running > 0,
      'the job inside the first worker',
      30_000,
    );
    first.child.kill('SIGKILL');
    await first.exited;
    const replacement = await spawnWorker(env);
    workers.splice(0, 2, replacement);
    await waitWorkerReady(replacement);
    const answered = await answer;
    expect(answered.status).toBe(200);
    const walls = [wallsA.v1, wallsA.v2, wallsB.v1, wallsB.v2];
    await until(() => walls.every((wall) => timesShown(wall, 'worker-dies') >= 1), 'every wall');
    await sleep(1500);
    for (const wall of walls) expect(timesShown(wall, 'worker-dies')).toBe(1);
    expect((await workerHealth(replacement)).done).toBe(1);
  }, 120_000);

  test('Redis stops: A carries on alone; Redis back: B gets the photo, nothing doubled', async () => {
    await redis.kill();
    await until(
      async () => {
        const health = (await (await fetch(`${relayA.url}/healthz`)).json()) as { redis: string };
        return health.redis !== 'connected';
      },
      'A to see Redis gone',
      20_000,
    );
    const status = await admin<ClusterStatus>(relayA, '/cluster');
    expect(status.redis?.state).not.toBe('connected');
    const answer = await upload(relayA.url, await syntheticPhoto(800, 600), {
      description: 'while-redis-away',
    });
    expect(answer.status).toBe(200); // made by A's own engine
    await until(() => timesShown(wallsA.v2, 'while-redis-away') === 1, 'A’s wall');
    expect((await admin<ClusterStatus>(relayA, '/cluster')).unshared).toBeGreaterThan(0);
    expect(timesShown(wallsB.v2, 'while-redis-away')).toBe(0);

    await redis.restart();
    const walls = [wallsA.v1, wallsA.v2, wallsB.v1, wallsB.v2];
    await until(
      () => walls.every((wall) => timesShown(wall, 'while-redis-away') >= 1),
      'every wall after Redis is back',
    );
    await sleep(2000);
    for (const wall of walls) expect(timesShown(wall, 'while-redis-away')).toBe(1);
    await until(
      async () => (await admin<ClusterStatus>(relayA, '/cluster')).unshared === 0,
      'the outbox emptied',
    );
  }, 120_000);
});
