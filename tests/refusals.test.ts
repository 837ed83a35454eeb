/**
 * Every refusal can be read: an upload refused before its body was read (too large, wrong PIN)
 * reaches Node's fetch (undici), curl and Chromium's uploader page as its status and error JSON,
 * because the relay reads and discards the rest of the body (bounded) before closing, as
 * nginx's lingering close does. Uploads stream to a temporary file in the data folder.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PhotoStore } from '../electron/store/photo-store.ts';
import { ERROR_CATALOG } from '../shared/errors.ts';
import { chromiumMissingReason, launchChromium } from './browser.ts';
import { modelMissingReason, repoRoot, syntheticPhoto } from './helpers.ts';
import { PIN, startTestRelay, upload, type TestRelay } from './relay-helpers.ts';

const skipReason = await modelMissingReason('u2netp');
const MB = 1024 * 1024;

/** A real JPEG followed by padding up to `size` bytes (the relay refuses it by size alone). */
async function paddedJpeg(size: number): Promise<Buffer> {
  const photo = await syntheticPhoto(320, 240);
  return Buffer.concat([photo, Buffer.alloc(size - photo.length, 0x5a)]);
}

/** A multipart body with `file` in the field "image". */
function multipart(file: Buffer, filename = 'photo.jpg') {
  const boundary = 'relay-test-boundary';
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="${filename}"\r\n` +
      'Content-Type: image/jpeg\r\n\r\n',
  );
  return {
    body: Buffer.concat([head, file, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    type: `multipart/form-data; boundary=${boundary}`,
  };
}

/** Files left in the data folder's incoming/ (uploads being received). */
const incoming = (relay: TestRelay) => readdir(path.join(relay.dataDir, 'incoming'));

function run(command: string, args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout }));
  });
}

describe.skipIf(skipReason)('refusals the client can read', () => {
  let relay: TestRelay;
  let big: Buffer;
  let work: string;
  beforeAll(async () => {
    relay = await startTestRelay();
    big = await paddedJpeg(12 * MB);
    work = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-refusals-'));
  });
  afterAll(async () => {
    await relay.close();
    await rm(work, { recursive: true, force: true });
  });

  test("a 12 MB upload is read back as 413 JSON by Node's fetch, each time", async () => {
    for (let i = 0; i < 3; i++) {
      const answer = await upload(relay.url, big);
      expect([answer.status, answer.body.code]).toEqual([413, 'E_FILE_TOO_LARGE']);
      expect(answer.body.message).toMatch(/10 MB/);
      expect(answer.headers.get('connection')).toBe('close');
    }
    // Sent without a length (streamed): refused while it streams, the same answer.
    const { body, type } = multipart(big);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < body.length; at += 256 * 1024)
          controller.enqueue(body.subarray(at, at + 256 * 1024));
        controller.close();
      },
    });
    const response = await fetch(`${relay.url}/upload/`, {
      method: 'POST',
      body: stream,
      headers: { 'Content-Type': type, 'X-Event-Pin': PIN },
      duplex: 'half',
    });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { code: string }).code).toBe('E_FILE_TOO_LARGE');
    expect(await incoming(relay)).toEqual([]);
  });

  test('a wrong PIN on a 5 MB upload is read back as 401 JSON by fetch', async () => {
    const answer = await upload(relay.url, await paddedJpeg(5 * MB), { pin: '0000' });
    expect([answer.status, answer.body.code]).toEqual([401, 'E_PIN_WRONG']);
  });

  test('curl reads the 413 JSON, with and without Expect: 100-continue', async () => {
    const file = path.join(work, 'big.jpg');
    await writeFile(file, big);
    for (const expect100 of [true, false]) {
      const { code, stdout } = await run('curl', [
        '-s',
        '-w',
        '\n%{http_code}',
        '-H',
        `X-Event-Pin: ${PIN}`,
        ...(expect100 ? [] : ['-H', 'Expect:']),
        '-F',
        `image=@${file};type=image/jpeg`,
        `${relay.url}/upload/`,
      ]);
      expect(code).toBe(0);
      const [json, status] = stdout.split('\n');
      expect(status).toBe('413');
      expect((JSON.parse(json!) as { code: string }).code).toBe('E_FILE_TOO_LARGE');
    }
  });

  test('after the answer the relay keeps reading the body, then closes without a reset', async () => {
    const port = new URL(relay.url).port;
    const total = 12 * MB;
    // allowHalfOpen: the relay's FIN after its answer does not end our side: we go on sending.
    const socket = net.connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true });
    const errors: string[] = [];
    socket.on('error', (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      `POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Event-Pin: ${PIN}\r\n` +
        `Content-Type: multipart/form-data; boundary=b\r\nContent-Length: ${total}\r\n\r\n`,
    );
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    const write = (bytes: Buffer) =>
      new Promise<void>((resolve, reject) =>
        socket.write(bytes, (error) => (error ? reject(error) : resolve())),
      );
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    for (let sent = 0; sent < MB; sent += chunk.length) await write(chunk);
    for (let i = 0; i < 100 && !received.includes('}'); i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(received).toMatch(/^HTTP\/1\.1 413 /);
    expect(received).toMatch(/connection: close/i);
    expect(received).toContain('"code":"E_FILE_TOO_LARGE"');
    // The answer is out; 4 MB more are still taken (and thrown away), not met with a reset.
    for (let sent = 0; sent < 4 * MB; sent += chunk.length) await write(chunk);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(errors).toEqual([]);
    socket.end();
    const hadError = await new Promise<boolean>((resolve) => socket.once('close', resolve));
    expect([hadError, errors]).toEqual([false, []]);
  });

  test('an upload streams to incoming/ and is moved into originals/; 写真.jpg keeps its name', async () => {
    const photo = await syntheticPhoto(640, 480);
    const answer = await upload(relay.url, photo, { filename: '写真.jpg' });
    expect(answer.status).toBe(200);
    const record = relay.relay.store.get(String(answer.body.id))!;
    expect(record.originalFilename).toBe('写真.jpg');
    const stored = await readFile(relay.relay.store.originalPath(record.id, record.inputFormat));
    expect(stored.equals(photo)).toBe(true);
    expect(await incoming(relay)).toEqual([]);
    // curl sends the name as UTF-8 too; with Expect: 100-continue it is told to go on.
    const file = path.join(work, '写真.jpg');
    await writeFile(file, photo);
    const { stdout } = await run('curl', [
      '-s',
      '-H',
      'Expect: 100-continue',
      '-H',
      `X-Event-Pin: ${PIN}`,
      '-F',
      `image=@${file};type=image/jpeg`,
      `${relay.url}/upload/`,
    ]);
    const id = (JSON.parse(stdout) as { id: string }).id;
    expect(relay.relay.store.get(id)!.originalFilename).toBe('写真.jpg');
  });

  test('a refused or damaged upload leaves nothing in the data folder', async () => {
    const before = (await readdir(path.join(relay.dataDir, 'originals'))).length;
    const cases: [Buffer, number][] = [
      [Buffer.from('not a photo at all'), 415],
      [(await syntheticPhoto(400, 300)).subarray(0, 100), 422],
    ];
    for (const [bytes, status] of cases) {
      const answer = await upload(relay.url, bytes);
      expect(answer.status).toBe(status);
    }
    expect(await incoming(relay)).toEqual([]);
    expect((await readdir(path.join(relay.dataDir, 'originals'))).length).toBe(before);
  });
});

describe('the sweep', () => {
  test('removes uploads a crash left half received in incoming/', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-incoming-'));
    try {
      let store = new PhotoStore(dir);
      const left = store.incomingPath();
      expect(path.dirname(left)).toBe(path.join(dir, 'incoming'));
      await writeFile(left, 'half a photo');
      store.close();
      store = new PhotoStore(dir);
      expect(await store.sweep()).toBe(1);
      expect(await readdir(path.join(dir, 'incoming'))).toEqual([]);
      store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const browserSkip =
  skipReason ??
  chromiumMissingReason() ??
  (existsSync(path.join(repoRoot, 'dist/renderer/pages/uploader/index.html'))
    ? undefined
    : 'the pages are not built (npm run build:pages)');

describe.skipIf(browserSkip)("Chromium's uploader", () => {
  let relay: TestRelay;
  let browser: Browser;
  beforeAll(async () => {
    relay = await startTestRelay();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await (browser as Browser | undefined)?.close();
    await (relay as TestRelay | undefined)?.close();
  });

  test('a 12 MB original shows "too large" and is not sent again', async () => {
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    const posts: string[] = [];
    page.on('request', (request) => {
      if (request.method() === 'POST' && new URL(request.url()).pathname === '/upload/')
        posts.push(request.url());
    });
    // edge=off: "Send smaller photos" unticked, the file goes as it is.
    await page.goto(`${relay.url}/?pin=${PIN}&edge=off`);
    await page.getByTestId('gallery').setInputFiles({
      name: 'huge.jpg',
      mimeType: 'image/jpeg',
      buffer: await paddedJpeg(12 * MB),
    });
    await page.getByText('This photo is too large for the relay.').waitFor({ timeout: 30_000 });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(posts).toHaveLength(1);
    await context.close();
  });
});

test('the README lists every code of the error catalog', async () => {
  const readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
  const tableRows = readme.split('\n').filter((line) => line.startsWith('|'));
  const undocumented = Object.keys(ERROR_CATALOG).filter(
    (code) => !tableRows.some((row) => row.includes(`\`${code}\``)),
  );
  expect(undocumented).toEqual([]);
});
