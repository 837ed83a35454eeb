/**
 * What a refused or waiting upload may hold, against a real relay on raw sockets: a refusal that
 * comes before the photo's part leaves no temp file and no open descriptor, and a fresh upload
 * whose body is arriving holds its place in line, so the next one is refused before its body.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { modelMissingReason, syntheticPhoto } from './helpers.ts';
import {
  permitEngine,
  PIN,
  rawClient,
  settlesWithin,
  startTestRelay,
  upload,
  type TestRelay,
} from './relay-helpers.ts';

const skipReason = await modelMissingReason('u2netp');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const BOUNDARY = 'leak-test-boundary';

/** Descriptors of this process (the relay runs in it) open on files under `dir`. */
function openFilesUnder(dir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) open.push(target);
    } catch {
      // closed between the listing and the readlink
    }
  }
  return open;
}

const incomingDir = (relay: TestRelay) => path.join(relay.dataDir, 'incoming');

function requestHead(relay: TestRelay, length: number, headers = ''): string {
  const { host } = new URL(relay.url);
  return (
    `POST /upload/ HTTP/1.1\r\nHost: ${host}\r\nX-Event-Pin: ${PIN}\r\n${headers}` +
    `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${length}\r\n\r\n`
  );
}

const imagePartHead = () =>
  Buffer.from(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n` +
      'Content-Type: image/jpeg\r\n\r\n',
  );
const formEnd = () => Buffer.from(`\r\n--${BOUNDARY}--\r\n`);

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe.skipIf(skipReason)('a description refused before the photo part', () => {
  let relay: TestRelay;
  let photo: Buffer;
  beforeAll(async () => {
    relay = await startTestRelay();
    photo = await syntheticPhoto(640, 480);
  });
  afterAll(() => relay.close());

  /** The form with a 1,001-character description first, then the photo. */
  function descriptionFirst(): Buffer {
    return Buffer.concat([
      Buffer.from(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="description"\r\n\r\n` +
          `${'x'.repeat(1001)}\r\n`,
      ),
      imagePartHead(),
      photo,
      formEnd(),
    ]);
  }

  test('sent in one write: answered 400, no temp file, no open descriptor', async () => {
    const body = descriptionFirst();
    const client = await rawClient(relay.url, { localAddress: '127.0.0.2' });
    await client.write(Buffer.concat([Buffer.from(requestHead(relay, body.length)), body]));
    const answer = await client.answer;
    expect([answer.status, answer.json.code]).toEqual([400, 'E_DESCRIPTION_TOO_LONG']);
    client.socket.end();
    await client.closed;
    await sleep(300);
    expect(await readdir(incomingDir(relay))).toEqual([]);
    expect(openFilesUnder(incomingDir(relay))).toEqual([]);
  });

  test('the photo arriving after the answer: no temp file, no open descriptor', async () => {
    const body = descriptionFirst();
    // Up to a few KB into the photo, so the photo's part has begun when the refusal comes.
    const split = body.indexOf(photo) + 4096;
    const client = await rawClient(relay.url, { localAddress: '127.0.0.3', allowHalfOpen: true });
    await client.write(
      Buffer.concat([Buffer.from(requestHead(relay, body.length)), body.subarray(0, split)]),
    );
    const answer = await client.answer;
    expect([answer.status, answer.json.code]).toEqual([400, 'E_DESCRIPTION_TOO_LONG']);
    await sleep(200);
    await client.write(body.subarray(split));
    client.socket.end();
    await client.closed;
    await sleep(300);
    expect(openFilesUnder(incomingDir(relay))).toEqual([]);
    expect(await readdir(incomingDir(relay))).toEqual([]);
    // The relay is none the worse: the next photo is stored.
    expect((await upload(relay.url, photo)).status).toBe(200);
  });
});

describe.skipIf(skipReason)('a body in flight holds its place in line', () => {
  const engine = permitEngine();
  let relay: TestRelay;
  let photo: Buffer;
  beforeAll(async () => {
    relay = await startTestRelay({ QUEUE_SIZE: '2' }, undefined, {
      createEngine: engine.createEngine,
    });
    photo = await syntheticPhoto(400, 300);
  });
  afterAll(async () => {
    engine.permit(1000);
    await relay.close();
  });

  test('one place free and one fresh body arriving: the next fresh upload is refused before its body', async () => {
    const pending = () => relay.relay.store.list(100).filter((r) => r.status !== 'done').length;
    // The engine holds one photo: one place of two is free.
    const first = upload(relay.url, photo);
    await until(() => pending() === 1, 'one photo in the engine');
    // A fresh body is arriving (half of it sent) from one address…
    const body = Buffer.concat([imagePartHead(), photo, formEnd()]);
    const slow = await rawClient(relay.url, { localAddress: '127.0.0.4' });
    await slow.write(
      Buffer.concat([
        Buffer.from(requestHead(relay, body.length)),
        body.subarray(0, body.length / 2),
      ]),
    );
    await sleep(200);
    // …so another fresh upload has no place: answered while it has sent its head only.
    const next = await rawClient(relay.url, { localAddress: '127.0.0.5', allowHalfOpen: true });
    await next.write(
      Buffer.concat([Buffer.from(requestHead(relay, body.length)), body.subarray(0, 100)]),
    );
    expect(await settlesWithin(next.answer, 3000)).toBe(true);
    const refused = await next.answer;
    expect([refused.status, refused.json.code]).toEqual([503, 'E_QUEUE_FULL']);
    next.socket.destroy();
    // The body in flight takes the place it held.
    await slow.write(body.subarray(body.length / 2));
    await until(() => pending() === 2, 'the slow photo in line');
    engine.permit(100);
    expect((await slow.answer).status).toBe(200);
    expect((await first).status).toBe(200);
    slow.socket.destroy();
  });
});
