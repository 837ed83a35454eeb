/**
 * Bounded memory and a fair share under abuse, against a real relay: slow uploads trickling in
 * on many sockets, a WebSocket flood from one address, a stalled upload, and one address trying
 * to keep the line full, each while a guest on another address uploads normally. Other
 * addresses are real: the clients bind to 127.0.0.x (all of 127/8 is loopback on Linux); the
 * relay's own 127.0.0.1 is not capped per address, so the tests use others.
 */
import http from 'node:http';
import net from 'node:net';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Admission, WAITING_MS } from '../electron/relay/admission.ts';
import { classifyAnswer } from '../renderer/features/uploader/answer.ts';
import { PhotoRelayError } from '../shared/errors.ts';
import { modelMissingReason, syntheticPhoto } from './helpers.ts';
import {
  parseRawAnswer,
  permitEngine,
  PIN,
  startTestRelay,
  type TestRelay,
} from './relay-helpers.ts';

const skipReason = await modelMissingReason('u2netp');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const MB = 1024 * 1024;
const BOUNDARY = 'abuse-test-boundary';

interface Answer {
  status: number;
  json: { code?: string; message?: string; id?: string };
  retryAfter: string | undefined;
}

/** The multipart body around one photo in "image". */
function form(photo: Buffer): Buffer {
  return Buffer.concat([formHead(), photo, Buffer.from(`\r\n--${BOUNDARY}--\r\n`)]);
}

function formHead(): Buffer {
  return Buffer.from(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n` +
      'Content-Type: image/jpeg\r\n\r\n',
  );
}

/** A normal upload from `localAddress`. */
function post(relay: TestRelay, localAddress: string, photo: Buffer): Promise<Answer> {
  const body = form(photo);
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${relay.url}/upload/`,
      {
        method: 'POST',
        localAddress,
        agent: false,
        headers: {
          'X-Event-Pin': PIN,
          'Content-Type': `multipart/form-data; boundary=${BOUNDARY}`,
          'Content-Length': body.length,
        },
      },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () =>
          resolve({
            status: response.statusCode!,
            json: JSON.parse(text) as Answer['json'],
            retryAfter: response.headers['retry-after'],
          }),
        );
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** An HTTP answer read off a raw socket, with its Retry-After. */
function parseRaw(text: string): Answer | undefined {
  const raw = parseRawAnswer(text);
  return raw && { ...raw, retryAfter: /retry-after: (\d+)/i.exec(raw.head)?.[1] };
}

interface SlowUpload {
  /** Resolves with the relay's answer, if it gives one. */
  answer: Promise<Answer>;
  /** Bytes sent so far. */
  sent(): number;
  stop(): void;
}

/**
 * An upload that declares `declared` bytes and then sends `chunk` bytes every `everyMs` (0: it
 * sends only the form's head and stalls), from `localAddress`, on a raw socket.
 */
function slowUpload(
  relay: TestRelay,
  localAddress: string,
  { declared = 10 * MB, chunk = 1024, everyMs = 200 } = {},
): SlowUpload {
  const { port } = new URL(relay.url);
  const socket = net.connect({ port: Number(port), host: '127.0.0.1', localAddress });
  socket.on('error', () => undefined);
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  const answer = new Promise<Answer>((resolve, reject) => {
    let text = '';
    socket.on('data', (data: Buffer) => {
      text += data.toString();
      const parsed = parseRaw(text);
      if (parsed) {
        clearInterval(timer);
        resolve(parsed);
      }
    });
    socket.on('close', () => reject(new Error(`closed without an answer: ${text}`)));
  });
  answer.catch(() => undefined);
  socket.once('connect', () => {
    socket.write(
      `POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Event-Pin: ${PIN}\r\n` +
        `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${declared}\r\n\r\n`,
    );
    socket.write(formHead());
    // A JPEG's first bytes, then filler: the relay cannot tell it from a photo on a slow link.
    socket.write(Buffer.from([0xff, 0xd8, 0xff, 0xe0]));
    if (everyMs > 0) {
      timer = setInterval(() => {
        if (!socket.destroyed) socket.write(Buffer.alloc(chunk, 0x20));
        sent += chunk;
      }, everyMs);
    }
  });
  return {
    answer,
    sent: () => sent,
    stop: () => {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

/** A WebSocket display from `localAddress`: resolves open, or with the refusal's status. */
function openSocket(
  relay: TestRelay,
  localAddress: string,
): Promise<{ socket: WebSocket; status: 101 } | { status: number; code?: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${relay.wsUrl}?pin=${PIN}`, { localAddress });
    socket.on('open', () => resolve({ socket, status: 101 }));
    socket.on('unexpected-response', (_request, response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () =>
        resolve({
          status: response.statusCode!,
          code: (JSON.parse(text) as { code?: string }).code,
        }),
      );
    });
    socket.on('error', (error) => {
      if (socket.readyState !== WebSocket.CLOSED) reject(error);
    });
  });
}

const tally = (values: (string | number)[]) =>
  values.reduce<Record<string, number>>((counts, value) => {
    counts[value] = (counts[value] ?? 0) + 1;
    return counts;
  }, {});

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe.skipIf(skipReason)('slow uploads, a socket flood, a stalled upload', () => {
  let relay: TestRelay;
  let photo: Buffer;
  beforeAll(async () => {
    relay = await startTestRelay({
      UPLOADS_TOTAL: '48',
      WS_TOTAL: '100',
      UPLOAD_IDLE_SECONDS: '2',
      // The caps under test here are the upload and WebSocket ones: a line long enough for every
      // body in flight (each holds a place while it arrives), and room for 300 connections from
      // one address (CONNECTIONS_PER_ADDRESS is tested in connections.test.ts).
      QUEUE_SIZE: '100',
      CONNECTIONS_PER_ADDRESS: '1000',
    });
    photo = await syntheticPhoto(800, 600);
  });
  afterAll(() => relay.close());

  test('40 uploads trickling in from 10 addresses: the 5th per address is refused; a normal upload goes through', async () => {
    const slow: SlowUpload[] = [];
    const refused: Promise<Answer>[] = [];
    const accepted: SlowUpload[] = [];
    for (let a = 0; a < 10; a++) {
      for (let i = 0; i < 5; i++) {
        const upload = slowUpload(relay, `127.0.0.${20 + a}`);
        slow.push(upload);
        if (i === 4) refused.push(upload.answer);
        else accepted.push(upload);
        await sleep(i === 4 ? 0 : 20);
      }
    }
    const fifths = await Promise.all(refused);
    expect(tally(fifths.map((answer) => `${answer.status} ${answer.json.code}`))).toEqual({
      '429 E_RATE_LIMITED': 10,
    });
    expect(fifths.every((answer) => Number(answer.retryAfter) > 0)).toBe(true);
    const started = performance.now();
    const normal = await post(relay, '127.0.0.4', photo);
    const normalMs = performance.now() - started;
    expect([normal.status, normal.json.code]).toEqual([200, undefined]);
    expect(normalMs).toBeLessThan(15_000);
    // The relay is full at UPLOADS_TOTAL (48): 8 more from two addresses, then a 503.
    const more = [0, 1, 2, 3].flatMap(() => [
      slowUpload(relay, '127.0.0.40'),
      slowUpload(relay, '127.0.0.41'),
    ]);
    await sleep(500);
    const busy = await post(relay, '127.0.0.42', photo);
    expect([busy.status, busy.json.code]).toEqual([503, 'E_RELAY_BUSY']);
    expect(Number(busy.retryAfter)).toBeGreaterThan(0);
    // The slow ones were streaming to disk all along, none of it in memory, and go when closed.
    expect(accepted.every((upload) => upload.sent() > 0)).toBe(true);
    const incoming = await readdir(path.join(relay.dataDir, 'incoming'));
    expect(incoming.length).toBe(48);
    for (const upload of [...slow, ...more]) upload.stop();
    await sleep(500);
    expect(await readdir(path.join(relay.dataDir, 'incoming'))).toEqual([]);
    const after = await post(relay, '127.0.0.42', photo);
    expect(after.status).toBe(200);
  });

  test('a WebSocket flood from one address: 20 let in, the rest refused; others connect and upload', async () => {
    const flood = await Promise.all(
      Array.from({ length: 300 }, () => openSocket(relay, '127.0.0.2')),
    );
    expect(tally(flood.map((result) => result.status))).toEqual({ 101: 20, 429: 280 });
    const display = await openSocket(relay, '127.0.0.3');
    expect(display.status).toBe(101);
    const messages: string[] = [];
    if ('socket' in display)
      display.socket.on('message', (data: Buffer) => messages.push(String(data)));
    const normal = await post(relay, '127.0.0.4', photo);
    expect(normal.status).toBe(200);
    await until(() => messages.some((m) => m.startsWith('{"imageData"')), 'the broadcast');
    // WS_TOTAL (100) for all addresses together: 20 more each from four addresses, then 503.
    const others = await Promise.all(
      [5, 6, 7, 8].flatMap((a) =>
        Array.from({ length: 20 }, () => openSocket(relay, `127.0.0.${a}`)),
      ),
    );
    expect(tally(others.map((result) => result.status))).toEqual({ 101: 79, 503: 1 });
    expect(
      others.find((result) => result.status === 503) as { code?: string } | undefined,
    ).toMatchObject({ code: 'E_RELAY_BUSY' });
    // Closed sockets give their places back.
    for (const result of [...flood, ...others, display])
      if ('socket' in result) result.socket.close();
    await sleep(500);
    const again = await openSocket(relay, '127.0.0.2');
    expect(again.status).toBe(101);
    if ('socket' in again) again.socket.close();
  });

  test('a stalled upload is answered 408 after the idle time and its place is free again', async () => {
    const stalled = Array.from({ length: 4 }, () => slowUpload(relay, '127.0.0.9', { everyMs: 0 }));
    await sleep(300);
    const blocked = await post(relay, '127.0.0.9', photo);
    expect([blocked.status, blocked.json.code]).toEqual([429, 'E_RATE_LIMITED']);
    const started = performance.now();
    const answers = await Promise.all(stalled.map((upload) => upload.answer));
    const waitedMs = performance.now() - started;
    expect(tally(answers.map((answer) => `${answer.status} ${answer.json.code}`))).toEqual({
      '408 E_UPLOAD_TIMEOUT': 4,
    });
    // The phone's uploader sends a stalled photo again (a weak signal is not a bad photo).
    for (const answer of answers) {
      expect(classifyAnswer(answer.status, answer.json, null).kind).toBe('retry');
    }
    expect(waitedMs).toBeLessThan(5000);
    expect(await readdir(path.join(relay.dataDir, 'incoming'))).toEqual([]);
    const freed = await post(relay, '127.0.0.9', photo);
    expect(freed.status).toBe(200);
    for (const upload of stalled) upload.stop();
  });
});

describe.skipIf(skipReason)('a fair share of the line', () => {
  const engine = permitEngine();
  let relay: TestRelay;
  let photo: Buffer;
  beforeAll(async () => {
    relay = await startTestRelay({ QUEUE_SIZE: '4' }, undefined, {
      createEngine: engine.createEngine,
    });
    photo = await syntheticPhoto(400, 300);
  });
  afterAll(async () => {
    engine.permit(1000);
    await relay.close();
  });

  test('one address that filled the line is refused its next photo; the other address gets the place', async () => {
    const pending = () => relay.relay.store.list(100).filter((r) => r.status !== 'done').length;
    // The flooder, alone, may take the whole line.
    const flooder = Array.from({ length: 4 }, () => post(relay, '127.0.0.2', photo));
    await until(() => pending() === 4, 'four photos in line');
    // The line is full: refused before the body is read (the answer comes to headers alone).
    const early = slowUpload(relay, '127.0.0.3', { everyMs: 0 });
    const full = await early.answer;
    expect([full.status, full.json.code]).toEqual([503, 'E_QUEUE_FULL']);
    expect(Number(full.retryAfter)).toBeGreaterThan(0);
    early.stop();
    // One photo done: a place is free. The other address is waiting, so the flooder's share
    // is now max(2, 4 / 2) = 2, and it holds 3.
    engine.permit(1);
    await until(() => pending() === 3, 'one photo done');
    const greedy = await post(relay, '127.0.0.2', photo);
    expect([greedy.status, greedy.json.code]).toEqual([503, 'E_QUEUE_FULL']);
    expect(greedy.json.message).toMatch(/share/);
    const fair = post(relay, '127.0.0.3', photo);
    await until(() => pending() === 4, 'the other address in line');
    engine.permit(100);
    expect((await fair).status).toBe(200);
    expect((await Promise.all(flooder)).map((answer) => answer.status)).toEqual([
      200, 200, 200, 200,
    ]);
  });
});

describe('the admission rules', () => {
  const limits = {
    queueSize: 8,
    uploadsPerAddress: 2,
    uploadsTotal: 3,
    socketsPerAddress: 2,
    socketsTotal: 3,
    connectionsPerAddress: 2,
  };
  function line() {
    return {
      pending: 0,
      admit(limit: number) {
        if (this.pending >= limit) return false;
        this.pending++;
        return true;
      },
      release() {
        this.pending--;
      },
    };
  }
  const code = (run: () => unknown) => {
    try {
      run();
      return 'ok';
    } catch (error) {
      return `${(error as PhotoRelayError).status} ${(error as PhotoRelayError).code}`;
    }
  };

  test('uploads and sockets: per address, in all, released once; the relay itself has no per-address cap', () => {
    const admission = new Admission(limits, line());
    const a = admission.startUpload('10.0.0.1');
    admission.startUpload('10.0.0.1');
    expect(code(() => admission.startUpload('10.0.0.1'))).toBe('429 E_RATE_LIMITED');
    // The same IPv6 /64 is one address.
    admission.startUpload('fd00::1');
    expect(code(() => admission.startUpload('10.0.0.2'))).toBe('503 E_RELAY_BUSY');
    a();
    a();
    expect(admission.stats().uploading).toBe(2);
    expect(code(() => admission.startUpload('10.0.0.2'))).toBe('ok');
    const s1 = admission.openSocket('fd00::1');
    admission.openSocket('fd00::2');
    expect(code(() => admission.openSocket('fd00::3'))).toBe('429 E_RATE_LIMITED');
    admission.openSocket('127.0.0.1');
    expect(code(() => admission.openSocket('127.0.0.1'))).toBe('503 E_RELAY_BUSY');
    s1();
    expect(code(() => admission.openSocket('127.0.0.1'))).toBe('ok');
  });

  test('the fair share: max(2, queue / active addresses), counting those refused for a full line', () => {
    let now = 0;
    const queue = line();
    const admission = new Admission({ ...limits, queueSize: 4 }, queue, () => now);
    const flooder = Array.from({ length: 4 }, () => admission.takePlace('10.0.0.1'));
    expect(admission.share()).toBe(4);
    expect(code(() => admission.checkLine('10.0.0.2'))).toBe('503 E_QUEUE_FULL');
    // One done: the waiting address halves the flooder's share.
    flooder[0]!.leave();
    queue.release();
    expect(admission.share()).toBe(2);
    expect(code(() => admission.takePlace('10.0.0.1'))).toBe('503 E_QUEUE_FULL');
    const fair = admission.takePlace('10.0.0.2');
    expect(queue.pending).toBe(4);
    // Given back (not stored): the place returns to the line and to the address.
    fair.giveBack();
    fair.giveBack();
    expect([queue.pending, admission.stats().places]).toEqual([3, 3]);
    // Long after, the waiting address is forgotten: the flooder's share is the whole line.
    now += WAITING_MS + 1;
    expect(admission.share()).toBe(4);
  });

  test('a fresh body in flight holds a tentative place: in the line and in its address share', () => {
    const queue = line();
    const admission = new Admission({ ...limits, queueSize: 4 }, queue);
    admission.takePlace('10.0.0.1');
    admission.takePlace('10.0.0.1');
    const a = admission.reserveLine('10.0.0.2');
    const b = admission.reserveLine('10.0.0.3');
    // 2 in line + 2 arriving: the next body is refused before it is sent.
    expect(code(() => admission.reserveLine('10.0.0.4'))).toBe('503 E_QUEUE_FULL');
    expect(admission.stats().reserved).toBe(2);
    b.cancel();
    b.cancel();
    // Taking it turns it into a real place without counting it twice.
    a.take();
    a.cancel();
    expect([queue.pending, admission.stats().reserved, admission.stats().places]).toEqual([
      3, 0, 3,
    ]);
    // The share counts bodies in flight too: 3 active addresses → max(2, 8 / 3) = 2 each.
    const wide = new Admission(limits, line());
    wide.takePlace('10.0.0.1');
    wide.reserveLine('10.0.0.1');
    wide.reserveLine('10.0.0.2');
    wide.reserveLine('10.0.0.3');
    expect(code(() => wide.reserveLine('10.0.0.1'))).toMatch(/503 E_QUEUE_FULL/);
    expect(code(() => wide.reserveLine('10.0.0.2'))).toBe('ok');
  });
});
