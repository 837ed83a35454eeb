/**
 * What a connection may hold, against a real relay on raw sockets from 127.0.0.x (each its own
 * address; the relay's own 127.0.0.1 has no per-address caps): nothing pipelined behind a
 * refusal is dispatched, a refused WebSocket upgrade holds no place and is closed, a connection
 * that sends nothing is closed, and one address cannot open connections without end.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { modelMissingReason, syntheticPhoto } from './helpers.ts';
import {
  PIN,
  rawClient,
  settlesWithin,
  startTestRelay,
  type RawClient,
  type TestRelay,
} from './relay-helpers.ts';

const skipReason = await modelMissingReason('u2netp');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const BOUNDARY = 'connections-test-boundary';

function uploadRequest(relay: TestRelay, pin: string, body: Buffer): Buffer {
  const { host } = new URL(relay.url);
  return Buffer.concat([
    Buffer.from(
      `POST /upload/ HTTP/1.1\r\nHost: ${host}\r\nX-Event-Pin: ${pin}\r\n` +
        `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${body.length}\r\n\r\n`,
    ),
    body,
  ]);
}

const photoForm = (photo: Buffer) =>
  Buffer.concat([
    Buffer.from(
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n` +
        'Content-Type: image/jpeg\r\n\r\n',
    ),
    photo,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);

function upgradeRequest(relay: TestRelay, path: string): string {
  const { host } = new URL(relay.url);
  return (
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'
  );
}

/** A `ws` display from `localAddress`: its status (101 when let in) and the socket. */
function openDisplay(
  relay: TestRelay,
  localAddress: string,
): Promise<{ status: number; socket: WebSocket }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${relay.wsUrl}?pin=${PIN}`, { localAddress });
    socket.on('open', () => resolve({ status: 101, socket }));
    socket.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode!, socket }));
    socket.on('error', reject);
  });
}

/** The relay's end of each connection, by the client's port (the relay runs in this process). */
function relaySide(relay: TestRelay): Map<number, Socket> {
  const sides = new Map<number, Socket>();
  relay.relay.server.on('connection', (socket: Socket) => sides.set(socket.remotePort!, socket));
  return sides;
}

/**
 * Whether the relay has closed its end of `client`'s connection within `ms`. (A client that
 * ignores the relay's FIN cannot tell from its side: nothing more is sent to it.)
 */
async function relayClosed(
  sides: Map<number, Socket>,
  client: RawClient,
  ms: number,
): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (sides.get(client.socket.localPort!)?.closed) return true;
    await sleep(50);
  }
  return false;
}

async function healthz(client: RawClient, relay: TestRelay): Promise<number> {
  const { host } = new URL(relay.url);
  await client.write(`GET /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  return (await client.answer).status;
}

describe.skipIf(skipReason)('one socket, one kept-open client', () => {
  let relay: TestRelay;
  let photo: Buffer;
  let sides: Map<number, Socket>;
  beforeAll(async () => {
    relay = await startTestRelay({
      WS_PER_ADDRESS: '2',
      CONNECTIONS_PER_ADDRESS: '3',
      CONNECTIONS_TOTAL: '500',
    });
    sides = relaySide(relay);
    photo = await syntheticPhoto(400, 300);
  });
  afterAll(() => relay.close());

  test('an upload pipelined behind a refused one is not stored: the client is sent only the 401', async () => {
    const before = relay.relay.store.list(100).length;
    const client = await rawClient(relay.url, { localAddress: '127.0.0.2' });
    // A wrong PIN with a 300 KB body, and right behind it on the same socket a good upload
    // without an Idempotency-Key: the client will send that one again if it is not answered.
    await client.write(
      Buffer.concat([
        uploadRequest(relay, '0000', Buffer.alloc(300 * 1024, 0x61)),
        uploadRequest(relay, PIN, photoForm(photo)),
      ]),
    );
    const answer = await client.answer;
    expect([answer.status, answer.json.code]).toEqual([401, 'E_PIN_WRONG']);
    expect(await settlesWithin(client.closed, 6000)).toBe(true);
    expect(client.received().match(/HTTP\/1\.1 /g)).toHaveLength(1);
    await sleep(1000);
    expect(relay.relay.store.list(100).length).toBe(before);
  });

  test('refused upgrades held open by the client hold no WebSocket place and are closed', async () => {
    const refused: RawClient[] = [];
    for (let i = 0; i < 2; i++) {
      const client = await rawClient(relay.url, { localAddress: '127.0.0.3', allowHalfOpen: true });
      await client.write(upgradeRequest(relay, '/ws?pin=0000'));
      const answer = await client.answer;
      expect([answer.status, answer.json.code]).toEqual([401, 'E_PIN_WRONG']);
      refused.push(client);
    }
    // WS_PER_ADDRESS is 2 and both refused sockets are still open: the right PIN is let in.
    const started = performance.now();
    const display = await openDisplay(relay, '127.0.0.3');
    expect(display.status).toBe(101);
    expect(performance.now() - started).toBeLessThan(3000);
    display.socket.close();
    // The relay closes them itself, though the client never closes its side.
    for (const client of refused) expect(await relayClosed(sides, client, 4000)).toBe(true);
    for (const client of refused) client.socket.destroy();
  });

  test('an early refusal (404) held open by the client is closed too', async () => {
    const client = await rawClient(relay.url, { localAddress: '127.0.0.4', allowHalfOpen: true });
    await client.write(upgradeRequest(relay, '/nowhere'));
    expect((await client.answer).status).toBe(404);
    expect(await relayClosed(sides, client, 4000)).toBe(true);
    client.socket.destroy();
  });

  test('CONNECTIONS_PER_ADDRESS: the connection beyond it is closed; another address connects', async () => {
    expect(relay.relay.server.maxConnections).toBe(500);
    const held = await Promise.all(
      [0, 1, 2].map(() => rawClient(relay.url, { localAddress: '127.0.0.5' })),
    );
    await sleep(100);
    const beyond = await rawClient(relay.url, { localAddress: '127.0.0.5' }).catch(() => undefined);
    if (beyond) {
      expect(await settlesWithin(beyond.closed, 1000)).toBe(true);
      expect(beyond.received()).toBe('');
    }
    const other = await rawClient(relay.url, { localAddress: '127.0.0.6' });
    expect(await healthz(other, relay)).toBe(200);
    // The held ones were let in, and one closed gives its place back.
    expect(await healthz(held[0]!, relay)).toBe(200);
    held[1]!.socket.destroy();
    await held[1]!.closed;
    await sleep(100);
    const again = await rawClient(relay.url, { localAddress: '127.0.0.5' });
    expect(await healthz(again, relay)).toBe(200);
    for (const client of [...held, other, again]) client.socket.destroy();
  });
});

describe.skipIf(skipReason)('idle connections', () => {
  let relay: TestRelay;
  let photo: Buffer;
  beforeAll(async () => {
    relay = await startTestRelay({ HEADERS_TIMEOUT_SECONDS: '2' });
    photo = await syntheticPhoto(400, 300);
  });
  afterAll(() => relay.close());

  test('a connection that sends nothing is closed after HEADERS_TIMEOUT_SECONDS', async () => {
    const client = await rawClient(relay.url, { localAddress: '127.0.0.7' });
    const started = performance.now();
    expect(await settlesWithin(client.closed, 5000)).toBe(true);
    expect(performance.now() - started).toBeGreaterThan(1500);
  });

  test('after an answer, a kept-alive connection is closed after keepAliveTimeout (5 s), not sooner', async () => {
    const client = await rawClient(relay.url, { localAddress: '127.0.0.11' });
    expect(await healthz(client, relay)).toBe(200);
    expect(await settlesWithin(client.closed, 3500)).toBe(false);
    expect(await settlesWithin(client.closed, 3500)).toBe(true);
  });

  test('headers dripped a byte at a time are cut off within the timeout and one check period', async () => {
    const client = await rawClient(relay.url, { localAddress: '127.0.0.8' });
    await client.write('GET /healthz HTTP/1.1\r\n');
    const drip = setInterval(() => void client.write('X').catch(() => undefined), 300);
    try {
      // 2 s timeout, checked every 5 s.
      expect(await settlesWithin(client.closed, 9000)).toBe(true);
    } finally {
      clearInterval(drip);
    }
  });

  test('an upload pausing longer than the headers timeout, and a quiet WebSocket, are not cut', async () => {
    const display = await openDisplay(relay, '127.0.0.9');
    expect(display.status).toBe(101);
    const form = photoForm(photo);
    const request = uploadRequest(relay, PIN, form);
    const client = await rawClient(relay.url, { localAddress: '127.0.0.10' });
    await client.write(request.subarray(0, request.length - Math.floor(form.length / 2)));
    await sleep(3000);
    await client.write(request.subarray(request.length - Math.floor(form.length / 2)));
    const answer = await client.answer;
    expect(answer.status).toBe(200);
    expect(display.socket.readyState).toBe(WebSocket.OPEN);
    display.socket.close();
    client.socket.destroy();
  });
});
