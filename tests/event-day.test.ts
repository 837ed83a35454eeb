/**
 * One event day, real processes: phones upload with Idempotency-Keys while displays watch; the
 * relay is stopped with photos in line, then killed with kill -9 mid-burst, then taken down twice
 * by a photo that crashes the process; the phones resend everything unanswered. After each
 * restart the same PIN works, every accepted photo is on the walls exactly once, a photo deleted
 * while queued never appears, and the crashing photo is set aside after its second attempt.
 *
 * The relay runs as tests/fixtures/event-day-relay.ts (`npm run serve` with a stand-in engine
 * that plays the crash; everything else goes to the real model).
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, onTestFailed, test } from 'vitest';
import WebSocket from 'ws';
import type {
  AdminMetrics,
  AdminOverview,
  AdminPhoto,
  OriginalImageMessage,
  PhotoListItem,
  ServerMessageV2,
} from '../shared/protocol.ts';
import { withCrashMarker } from './fixtures/crash-photo.ts';
import { modelMissingReason, repoRoot, syntheticPhoto } from './helpers.ts';
import { freePort, spawnRelay, type ServedRelay } from './relay-helpers.ts';

const skipReason = await modelMissingReason('u2netp');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const PHONES = 4;
const PHOTOS_PER_PHONE = 7;
/** The phone's own limit on one request (the uploader's is longer; the relay is local here). */
const PHONE_TIMEOUT_MS = 15_000;
const ADMIN_TOKEN = `event-day-${randomUUID()}`;
const FIXTURE = path.join(repoRoot, 'tests/fixtures/event-day-relay.ts');

/** What one phone knows about one photo in its outbox. */
interface Shot {
  phone: number;
  name: string;
  description: string;
  bytes: Buffer;
  /** Kept across every attempt, as the uploader keeps its outbox key. */
  key: string;
  attempts: number;
  /** One short line per attempt: "network", "timeout", "503 E_SHUTTING_DOWN", "200"… */
  log: string[];
  final?: { status: number; id?: string; code?: string };
  finalAttempt?: number;
}

type AttemptResult = { final: true } | { final: false; afterMs?: number };

/** 500s from a photo the relay stored: final (the original is kept, the operator retries). */
const FINAL_SERVER_CODES = new Set(['E_PROCESSING_FAILED', 'E_ENGINE_CRASHED']);

/**
 * renderer/features/uploader/send.ts's rules: network error, own timeout, 429 and 5xx are
 * retried; 200 and other refusals are final. Backoff as backoffMs() there, five times faster
 * (the relay is on this machine), Retry-After honoured up to 1 s.
 */
async function attempt(base: string, pin: string, shot: Shot): Promise<AttemptResult> {
  shot.attempts++;
  const form = new FormData();
  form.append('image', new Blob([shot.bytes], { type: 'image/jpeg' }), shot.name);
  form.append('description', shot.description);
  let status: number;
  let body: { status?: string; id?: string; code?: string };
  let retryAfter: number;
  try {
    const response = await fetch(`${base}/upload/`, {
      method: 'POST',
      body: form,
      headers: { 'X-Event-Pin': pin, 'Idempotency-Key': shot.key },
      signal: AbortSignal.timeout(PHONE_TIMEOUT_MS),
    });
    status = response.status;
    retryAfter = Number(response.headers.get('Retry-After'));
    body = (await response.json()) as typeof body;
  } catch (error) {
    shot.log.push((error as Error).name === 'TimeoutError' ? 'timeout' : 'network');
    return { final: false };
  }
  shot.log.push(`${status}${body.code ? ` ${body.code}` : ''}`);
  const settle = (): AttemptResult => {
    shot.final = { status, id: body.id, code: body.code };
    shot.finalAttempt = shot.attempts;
    return { final: true };
  };
  if (status === 200 && body.status === 'success' && body.id) return settle();
  if (status === 429 || status >= 500) {
    if (status === 500 && body.code && FINAL_SERVER_CODES.has(body.code)) return settle();
    return {
      final: false,
      afterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
    };
  }
  return settle(); // 401 included: a phone with a wrong PIN stops and asks (a failure here)
}

function backoffMs(failures: number): number {
  const ceiling = Math.min(2000, 200 * 2 ** Math.min(failures, 5));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/** A phone: one photo at a time from its outbox, each resent until it has a final answer. */
class Phone {
  private readonly outbox: Shot[] = [];
  private current: Shot | undefined;
  private wake: (() => void) | undefined;
  private closing = false;
  readonly done: Promise<void>;

  constructor(
    readonly index: number,
    private readonly base: () => string,
    private readonly pin: string,
  ) {
    this.done = this.run();
  }

  /** `next`: send this one before the rest of the outbox (after the photo in flight). */
  add(shot: Shot, next = false): void {
    if (next) this.outbox.unshift(shot);
    else this.outbox.push(shot);
    this.wake?.();
  }

  get settled(): boolean {
    return this.outbox.length === 0 && this.current === undefined;
  }

  get pending(): number {
    return this.outbox.length + (this.current ? 1 : 0);
  }

  /** A method, not the field: the field is read again after every await. */
  private isClosing(): boolean {
    return this.closing;
  }

  close(): void {
    this.closing = true;
    this.wake?.();
  }

  private async run(): Promise<void> {
    for (;;) {
      if (this.closing) return;
      const shot = this.outbox.shift();
      if (!shot) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      this.current = shot;
      for (let failures = 0; ; failures++) {
        const result = await attempt(this.base(), this.pin, shot);
        if (result.final || this.isClosing()) break;
        await sleep(
          result.afterMs === undefined ? backoffMs(failures) : Math.min(result.afterMs, 1000),
        );
      }
      this.current = undefined;
    }
  }
}

/** A display connected through the whole event, reconnecting with the same PIN after each stop. */
class Wall {
  /** Relay run (start number) → connections opened during it. */
  readonly opened = new Map<number, number>();
  readonly refusals: string[] = [];
  /** Protocol 1: `timestamp|originalFilename` of every message. */
  readonly originals: string[] = [];
  /** Protocol 2: ids of every `photo` event, every id in a hello's history, every `removed`. */
  readonly photoEvents: { id: string; name: string }[] = [];
  readonly history = new Map<string, string>();
  readonly removed: string[] = [];
  private socket: WebSocket | undefined;
  private stopped = false;

  constructor(
    private readonly url: () => string,
    private readonly run: () => number,
    readonly protocol: 1 | 2,
  ) {
    this.connect();
  }

  private connect(): void {
    if (this.stopped) return;
    const socket = new WebSocket(this.url());
    this.socket = socket;
    const run = this.run();
    socket.on('open', () => this.opened.set(run, (this.opened.get(run) ?? 0) + 1));
    socket.on('message', (data: Buffer) => this.receive(data.toString('utf8')));
    socket.on('error', (error) => {
      // A refused credential (401/403); a relay that is down or stopping is only waited for.
      const refused = /Unexpected server response: (40[13])/.exec(error.message);
      if (refused) this.refusals.push(refused[1]!);
    });
    socket.on('close', () => {
      if (!this.stopped) setTimeout(() => this.connect(), 150);
    });
  }

  private receive(text: string): void {
    if (this.protocol === 1) {
      const message = JSON.parse(text) as OriginalImageMessage;
      this.originals.push(`${message.timestamp}|${message.metadata.originalFilename}`);
      return;
    }
    const message = JSON.parse(text) as ServerMessageV2;
    if (message.type === 'hello')
      for (const photo of message.history) this.history.set(photo.id, photo.originalFilename);
    else if (message.type === 'photo')
      this.photoEvents.push({ id: message.photo.id, name: message.photo.originalFilename });
    else this.removed.push(message.id);
  }

  /** Every photo id this wall was shown, by event or by a history on reconnect. */
  seen(): Set<string> {
    return new Set([...this.photoEvents.map((event) => event.id), ...this.history.keys()]);
  }

  close(): void {
    this.stopped = true;
    this.socket?.terminate();
  }
}

async function until(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

const duplicates = (values: string[]) => [
  ...new Set(values.filter((value, i) => values.indexOf(value) !== i)),
];

let dataDir: string | undefined;
let live: ServedRelay | undefined;
afterAll(async () => {
  if (live && live.child.exitCode === null && live.child.signalCode === null) {
    live.child.kill('SIGKILL');
    await live.exited;
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe.skipIf(skipReason)('event day', () => {
  test('stop, kill -9 and a crashing photo mid-event: every photo once, the same PIN, nothing lost', async () => {
    const startedAt = Date.now();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-event-day-'));
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const env = {
      PORT: String(port),
      DATA_DIR: dataDir,
      ADMIN_TOKEN,
      EVENT_PIN: '', // unset: the data folder makes its PIN once and keeps it
      SHUTDOWN_GRACE_SECONDS: '0',
      QUEUE_SIZE: '200',
      THREADS: '1',
      UPLOADS_PER_MINUTE: '100000',
      LOG_LEVEL: 'info',
    };

    // ---- the relay's lives ------------------------------------------------------------------
    interface Life {
      served: ServedRelay;
      how: string;
      exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
    }
    const lives: Life[] = [];
    const runNumber = () => lives.length;
    const spawn = (how: string): Life => {
      const served = spawnRelay(env, ['--import', 'tsx', FIXTURE]);
      const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        served.child.once('exit', (code, signal) => resolve({ code, signal })),
      );
      live = served;
      const life = { served, how, exit };
      lives.push(life);
      return life;
    };
    const outputTail = () =>
      lives
        .map(
          (life, i) =>
            `--- start ${i + 1} (${life.how}) ---\n${life.served.output().split('\n').slice(-25).join('\n')}`,
        )
        .join('\n');
    onTestFailed(() => console.error(outputTail()));
    // EVENT_DAY_LOGS=<folder>: every life's full output is kept there (start-1.log, …).
    const keepLogs = async () => {
      const folder = process.env.EVENT_DAY_LOGS;
      if (!folder) return;
      await mkdir(folder, { recursive: true });
      await Promise.all(
        lives.map((life, i) =>
          writeFile(path.join(folder, `start-${i + 1}.log`), life.served.output()),
        ),
      );
    };
    const adminApi = async <T>(method: string, pathname: string): Promise<T> => {
      const response = await fetch(`${base}/admin/api/${pathname}`, {
        method,
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      if (!response.ok) throw new Error(`${method} ${pathname}: ${response.status}`);
      return (response.status === 204 ? undefined : await response.json()) as T;
    };
    const photos = () => adminApi<AdminPhoto[]>('GET', 'photos?limit=1000');
    const unfinished = (list: AdminPhoto[]) =>
      list.filter((photo) => photo.status === 'queued' || photo.status === 'processing');
    /** Waits for /healthz, while the process is alive. */
    const healthy = async (life: Life) => {
      const deadline = Date.now() + 45_000;
      for (;;) {
        if (life.served.child.exitCode !== null || life.served.child.signalCode !== null)
          throw new Error(`start ${lives.length} exited before it was healthy\n${outputTail()}`);
        const ok = await fetch(`${base}/healthz`).then(
          (r) => r.ok,
          () => false,
        );
        if (ok) return;
        if (Date.now() > deadline) throw new Error(`start ${lives.length} never became healthy`);
        await sleep(50);
      }
    };

    // ---- first start: learn the PIN the data folder made ------------------------------------
    const first = spawn('first start');
    await healthy(first);
    const { pin } = await adminApi<AdminOverview>('GET', 'overview');
    expect(pin).toMatch(/^\d{6}$/);
    if (!pin) throw new Error('no PIN');

    const restarts: {
      how: string;
      pinSame: boolean;
      resumed: number;
      crashLooped: number;
      unfinishedIds: string[];
    }[] = [];
    const walls = [
      new Wall(() => `ws://127.0.0.1:${port}/ws?pin=${pin}`, runNumber, 1),
      new Wall(() => `ws://127.0.0.1:${port}/ws?pin=${pin}&protocol=2&role=display`, runNumber, 2),
    ];
    const [wall1, wall2] = walls as [Wall, Wall];
    /** After a restart: the same PIN in the overview, both walls back in with it. */
    const restarted = async (how: string) => {
      const life = spawn(how);
      await healthy(life);
      const overview = await adminApi<AdminOverview>('GET', 'overview');
      const { lifecycle } = await adminApi<AdminMetrics>('GET', 'metrics');
      const list = await photos();
      restarts.push({
        how,
        pinSame: overview.pin === pin,
        resumed: lifecycle.resumed,
        crashLooped: lifecycle.crashLooped,
        unfinishedIds: unfinished(list).map((photo) => photo.id),
      });
      const pinWorks = await fetch(`${base}/api/photos?limit=1`, {
        headers: { 'X-Event-Pin': pin },
      });
      expect(pinWorks.status, `the PIN after "${how}"`).toBe(200);
      await until(
        `both walls to reconnect with the PIN after "${how}"`,
        () => walls.every((wall) => (wall.opened.get(runNumber()) ?? 0) > 0),
        15_000,
      );
      return life;
    };
    await until('both walls to connect', () => walls.every((wall) => wall.opened.size > 0), 10_000);

    // ---- the phones and their outboxes -----------------------------------------------------
    const shots: Shot[] = [];
    const makeShot = (phone: number, name: string, bytes: Buffer): Shot => {
      const shot = {
        phone,
        name,
        description: `${name} from phone ${phone}`,
        bytes,
        key: randomUUID(),
        attempts: 0,
        log: [],
      };
      shots.push(shot);
      return shot;
    };
    const phones = Array.from({ length: PHONES }, (_, i) => new Phone(i, () => base, pin));
    const burst = await Promise.all(
      Array.from({ length: PHONES * PHOTOS_PER_PHONE }, (_, i) =>
        syntheticPhoto(
          640 + 8 * (i % PHOTOS_PER_PHONE),
          480 + 8 * Math.floor(i / PHOTOS_PER_PHONE),
        ),
      ),
    );
    const deletedShot = makeShot(0, 'phone0-deleted.jpg', await syntheticPhoto(1600, 1200));
    const crashShot = makeShot(
      1,
      'phone1-crash.jpg',
      withCrashMarker(await syntheticPhoto(660, 500)),
    );
    const burstShots = burst.map((bytes, i) => {
      const phone = i % PHONES;
      return makeShot(
        phone,
        `phone${phone}-${String(Math.floor(i / PHONES)).padStart(2, '0')}.jpg`,
        bytes,
      );
    });
    const answered = () => shots.filter((shot) => shot.final?.status === 200).length;
    const stillToSend = () => phones.reduce((sum, phone) => sum + phone.pending, 0);

    try {
      // a. the burst begins
      for (const shot of burstShots) phones[shot.phone]!.add(shot);

      // b. a photo uploaded and deleted by the operator while it is still in line
      await until('the first answers', () => answered() >= 2, 30_000);
      phones[0]!.add(deletedShot, true);
      let deletedId: string | undefined;
      let statusWhenDeleted: string | undefined;
      await until(
        'the photo to delete to be in the store',
        async () => {
          const found = (await photos()).find(
            (photo) => photo.originalFilename === deletedShot.name,
          );
          if (found) [deletedId, statusWhenDeleted] = [found.id, found.status];
          return found !== undefined;
        },
        30_000,
      );
      expect(statusWhenDeleted, 'deleted while still in line').toMatch(/^(queued|processing)$/);
      await adminApi('DELETE', `photos/${deletedId}`);
      await until(
        'the deleted photo to be answered',
        () => deletedShot.final !== undefined,
        15_000,
      );
      expect(deletedShot.final).toMatchObject({ status: 410, code: 'E_PHOTO_DELETED' });

      // c. stopped (grace 0) with photos in line; restarted on the same data folder and port
      await until('photos in line', async () => unfinished(await photos()).length >= 4, 20_000);
      expect(stillToSend(), 'photos left for the rest of the event').toBeGreaterThan(12);
      lives.at(-1)!.served.child.kill('SIGTERM');
      const stopped = await lives.at(-1)!.exit;
      expect(stopped, 'a stop exits cleanly').toEqual({ code: 0, signal: null });
      await restarted('SIGTERM with photos in line');

      // d. kill -9 mid-burst
      const beforeKill = answered();
      await until(
        'answers after the restart, and photos in line',
        async () => answered() >= beforeKill + 3 && unfinished(await photos()).length >= 2,
        30_000,
      );
      expect(stillToSend(), 'photos left for the rest of the event').toBeGreaterThan(8);
      lives.at(-1)!.served.child.kill('SIGKILL');
      await lives.at(-1)!.exit;
      const afterKill = await restarted('kill -9 mid-burst');

      // e. a photo that crashes the process, twice; then it is set aside and the relay runs on
      const resumedAfterKill = restarts.at(-1)!.unfinishedIds;
      await until(
        'the photos resumed after the kill to finish',
        async () => {
          const list = await photos();
          return resumedAfterKill.every((id) =>
            list.some(
              (photo) =>
                photo.id === id && photo.status !== 'processing' && photo.status !== 'queued',
            ),
          );
        },
        30_000,
      );
      expect(stillToSend(), 'photos left for the rest of the event').toBeGreaterThan(4);
      phones[1]!.add(crashShot, true);
      const crashed = await Promise.race([afterKill.exit, sleep(45_000).then(() => undefined)]);
      expect(crashed, 'the crash photo takes the process down').toEqual({
        code: null,
        signal: 'SIGKILL',
      });
      // Resumed at the next start, it takes the process down again.
      const resumedCrash = spawn('crash photo resumed');
      const crashedAgain = await Promise.race([
        resumedCrash.exit,
        sleep(45_000).then(() => undefined),
      ]);
      expect(crashedAgain, 'the resumed crash photo takes the process down again').toEqual({
        code: null,
        signal: 'SIGKILL',
      });
      const last = await restarted('after two crashes');
      const crashRecord = (await photos()).find(
        (photo) => photo.originalFilename === crashShot.name,
      );
      expect(crashRecord, 'the crash photo is set aside').toMatchObject({
        status: 'failed',
        errorCode: 'E_ENGINE_CRASHED',
        attempts: 2,
      });

      // f. every outbox settles; the walls catch up
      await until('every phone to settle', () => phones.every((phone) => phone.settled), 60_000);
      const list = await photos();
      const done = list.filter((photo) => photo.status === 'done');
      await until(
        'the protocol-2 wall to have every done photo',
        () => done.every((photo) => wall2.seen().has(photo.id)),
        10_000,
      ).catch(() => undefined); // reported by the assertions below
      await sleep(300); // let any stray duplicate arrive before judging
      const publicList = (await (
        await fetch(`${base}/api/photos?limit=100`, { headers: { 'X-Event-Pin': pin } })
      ).json()) as PhotoListItem[];
      const healthz = await fetch(`${base}/healthz`);

      // ---- summary ------------------------------------------------------------------------
      const attempts = shots.reduce((sum, shot) => sum + shot.attempts, 0);
      const byOutcome = new Map<string, number>();
      for (const shot of shots) {
        const key = `${shot.final?.status ?? 'none'}${shot.final?.code ? ` ${shot.final.code}` : ''}`;
        byOutcome.set(key, (byOutcome.get(key) ?? 0) + 1);
      }
      console.log(
        [
          `event day in ${((Date.now() - startedAt) / 1000).toFixed(1)} s:`,
          `  photos sent ${shots.length} (${PHONES} phones), attempts ${attempts}, resends ${attempts - shots.length}`,
          `  answered after a resend ${shots.filter((shot) => (shot.finalAttempt ?? 0) > 1).length}, timeouts ${shots.reduce((n, s) => n + s.log.filter((l) => l === 'timeout').length, 0)}`,
          `  final answers: ${[...byOutcome].map(([k, n]) => `${k} ×${n}`).join(', ')}`,
          `  restarts ${lives.length - 1}: ${restarts.map((r) => `${r.how} (resumed ${r.resumed}, crash-looped ${r.crashLooped}, PIN ${r.pinSame ? 'same' : 'CHANGED'})`).join('; ')}; crash photo resumed once`,
          `  store: ${list.length} photos, ${done.length} done, failed: ${
            list
              .filter((p) => p.status === 'failed')
              .map((p) => `${p.originalFilename} (${p.errorCode}, attempts ${p.attempts})`)
              .join(', ') || 'none'
          }`,
          `  walls: protocol 2 ${wall2.photoEvents.length} photo events + ${wall2.history.size} in histories over ${[...wall2.opened.values()].reduce((a, b) => a + b, 0)} connections; protocol 1 ${wall1.originals.length} messages`,
        ].join('\n'),
      );

      // ---- assertions ---------------------------------------------------------------------
      const names = list.map((photo) => photo.originalFilename);
      expect.soft(duplicates(names), 'no filename twice in the store').toEqual([]);
      expect
        .soft(
          names.filter((name) => !shots.some((shot) => shot.name === name)),
          'nothing in the store that no phone sent',
        )
        .toEqual([]);
      for (const shot of shots.filter((s) => s.final?.status === 200)) {
        const records = list.filter((photo) => photo.originalFilename === shot.name);
        expect.soft(records.length, `${shot.name}: answered 200, stored once`).toBe(1);
        expect.soft(records[0]?.status, `${shot.name}: done`).toBe('done');
        expect
          .soft(records[0]?.id, `${shot.name}: the 200's id is the photo's`)
          .toBe(shot.final?.id);
      }
      // Every photo the relay accepted is on the walls, except the one set aside for crashing it.
      expect
        .soft(
          list
            .filter((photo) => photo.status !== 'done' && photo.originalFilename !== crashShot.name)
            .map(
              (p) =>
                `${p.originalFilename}: ${p.status} ${p.errorCode ?? ''} attempts ${p.attempts}`,
            ),
          'photos not done besides the crash photo',
        )
        .toEqual([]);
      expect
        .soft(
          burstShots
            .filter((shot) => shot.final?.status !== 200)
            .map((shot) => `${shot.name}: ${shot.log.join(' → ')}`),
          'every burst photo answered 200 in the end',
        )
        .toEqual([]);

      // The deleted photo: answered 410, nowhere.
      expect.soft(names).not.toContain(deletedShot.name);
      expect.soft(publicList.map((p) => p.originalFilename)).not.toContain(deletedShot.name);
      expect.soft(wall2.seen().has(deletedId!), 'deleted photo on the protocol-2 wall').toBe(false);
      expect
        .soft(
          wall1.originals.filter((key) => key.endsWith(`|${deletedShot.name}`)),
          'deleted photo on the protocol-1 wall',
        )
        .toEqual([]);

      // The crash photo: set aside after two attempts; the phone's resend got that answer.
      expect.soft(names.filter((name) => name === crashShot.name)).toHaveLength(1);
      expect.soft(crashShot.final, `crash photo: ${crashShot.log.join(' → ')}`).toMatchObject({
        status: 500,
        code: 'E_ENGINE_CRASHED',
      });
      expect.soft(wall2.seen().has(crashRecord?.id ?? ''), 'crash photo on a wall').toBe(false);

      // The walls: nothing twice, everything done reached the protocol-2 wall.
      expect
        .soft(
          duplicates(wall2.photoEvents.map((event) => event.id)),
          'protocol-2 photo events twice',
        )
        .toEqual([]);
      expect.soft(duplicates(wall1.originals), 'protocol-1 messages twice').toEqual([]);
      expect
        .soft(
          done
            .filter((photo) => !wall2.seen().has(photo.id))
            .map((photo) => photo.originalFilename),
          'done photos the protocol-2 wall never got',
        )
        .toEqual([]);

      // The same PIN after every restart, for phones and walls alike.
      expect
        .soft(
          restarts.map((r) => r.pinSame),
          'same PIN after each restart',
        )
        .toEqual(restarts.map(() => true));
      expect
        .soft(
          walls.flatMap((wall) => wall.refusals),
          'walls refused',
        )
        .toEqual([]);
      expect
        .soft(
          shots.filter((shot) => shot.final?.status === 401).map((s) => s.name),
          'phones refused the PIN',
        )
        .toEqual([]);
      expect
        .soft(
          restarts.find((r) => r.how.startsWith('SIGTERM'))?.resumed,
          'photos left in line by the stop, resumed',
        )
        .toBeGreaterThan(0);
      expect.soft(restarts.at(-1)?.crashLooped, 'photos set aside at the last start').toBe(1);
      expect.soft(healthz.status, 'the relay runs on').toBe(200);

      // The last life ends cleanly.
      for (const phone of phones) phone.close();
      last.served.child.kill('SIGTERM');
      expect(await last.exit).toEqual({ code: 0, signal: null });
    } finally {
      await keepLogs();
      for (const phone of phones) phone.close();
      for (const wall of walls) wall.close();
    }
  }, 180_000);
});
