import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { startDesktopServices } from '../electron/app/desktop-services.ts';
import { chromiumMissingReason, launchChromium } from './browser.ts';
import { modelMissingReason, repoRoot } from './helpers.ts';
import { freePort, startTestRelay } from './relay-helpers.ts';

/**
 * The desktop shell. Electron cannot be launched here, so the shell runs against a stand-in
 * `electron` module (tests/fixtures/electron-standin) that keeps Electron's launch order: the
 * entry module from package.json "main" is imported and `ready` comes only after it has finished
 * evaluating. The real start path runs (start.mjs → main.ts → the real relay and model) in a
 * child process, and the stand-in reports what the shell did: windows, dialogs, IPC handlers,
 * permission handlers, the exit code.
 */
const skipReason = await modelMissingReason('u2netp');
const standinDir = path.join(repoRoot, 'tests/fixtures/electron-standin');

interface ShellRecord {
  type: string;
  [field: string]: unknown;
}

interface Reply {
  type: 'reply';
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** One launch of the app on the stand-in, as `electron .` would start it. */
class ShellRun {
  readonly records: ShellRecord[] = [];
  /** The DATA_DIR this launch was given. */
  readonly dataDir: string;
  readonly exited: Promise<number | null>;
  stderr = '';
  private readonly child: ChildProcess;
  private readonly replies = new Map<number, (reply: Reply) => void>();
  private readonly waiters = new Set<() => void>();
  private nextId = 1;
  private exitCode: number | null | undefined;

  constructor(env: Record<string, string>) {
    this.dataDir = env.DATA_DIR ?? '';
    this.child = fork(path.join(standinDir, 'launch.mjs'), [repoRoot], {
      cwd: repoRoot,
      execArgv: ['--import', path.join(standinDir, 'register.mjs')],
      env: { ...process.env, NODE_OPTIONS: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.child.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.child.stdout?.resume();
    this.child.on('message', (message: ShellRecord) => {
      if (message.type === 'reply') {
        const reply = message as unknown as Reply;
        this.replies.get(reply.id)?.(reply);
        return;
      }
      this.records.push(message);
      for (const wake of this.waiters) wake();
    });
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code) => {
        this.exitCode = code;
        for (const wake of this.waiters) wake();
        resolve(code);
      }),
    );
  }

  of(type: string): ShellRecord[] {
    return this.records.filter((record) => record.type === type);
  }

  /** The first record of `type`; fails on timeout or exit, listing what the shell did. */
  waitFor(type: string, timeoutMs = 30_000): Promise<ShellRecord> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.records.find((record) => record.type === type);
        if (found) done(() => resolve(found));
        else if (this.exitCode !== undefined)
          done(() =>
            reject(new Error(`the app exited (${this.exitCode}) before "${type}"${this.log()}`)),
          );
      };
      const timer = setTimeout(
        () =>
          done(() =>
            reject(new Error(`no "${type}" after ${timeoutMs} ms${this.hint()}${this.log()}`)),
          ),
        timeoutMs,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Acts on the app as a user, a page or Chromium would (see launch.mjs). */
  async command(cmd: string, fields: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.nextId++;
    const reply = await new Promise<Reply>((resolve) => {
      this.replies.set(id, resolve);
      this.child.send({ id, cmd, ...fields });
    });
    if (!reply.ok) throw new Error(reply.error);
    return reply.value;
  }

  /** The exit code, once the app has exited through app.exit / app.quit (fails on a hang). */
  async ended(timeoutMs = 30_000): Promise<number | null> {
    await this.waitFor('exit', timeoutMs);
    return this.exited;
  }

  kill(): void {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
  }

  private hint(): string {
    return this.of('entry-evaluated').length === 0
      ? ': the entry module never finished evaluating, so Electron would never emit ready (a top-level await on app.whenReady()?)'
      : '';
  }

  private log(): string {
    return `\nrecords:\n${this.records.map((record) => `  ${JSON.stringify(record).slice(0, 300)}`).join('\n')}\nstderr:\n${this.stderr.slice(-3000)}`;
  }
}

async function canListen(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

test('only the shell files import electron (the rest runs in plain Node)', async () => {
  const importing: string[] = [];
  for (const folder of ['electron', 'shared']) {
    const entries = await readdir(path.join(repoRoot, folder), { recursive: true });
    for (const entry of entries.filter((name) => /\.(ts|mts|cts|js|mjs|cjs)$/.test(name))) {
      const source = await readFile(path.join(repoRoot, folder, entry), 'utf8');
      if (/from 'electron'|require\('electron'\)/.test(source))
        importing.push(`${folder}/${entry}`);
    }
  }
  expect(importing.sort()).toEqual([
    'electron/app/main.ts',
    'electron/app/preload.cjs',
    'electron/app/start.mjs',
  ]);
});

describe.skipIf(skipReason)('the desktop app on the electron stand-in', () => {
  let work: string;
  const runs: ShellRun[] = [];
  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-shell-'));
  });
  afterEach(() => {
    for (const run of runs.splice(0)) run.kill();
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  let launches = 0;
  function launch(env: Record<string, string>): ShellRun {
    launches++;
    const run = new ShellRun({
      DATA_DIR: path.join(work, `data-${launches}`),
      ELECTRON_STANDIN_USER_DATA: path.join(work, `user-data-${launches}`),
      HOST: '127.0.0.1',
      EVENT_PIN: '2580',
      LOG_LEVEL: 'ERROR',
      PERF_LOG_SECONDS: '0',
      ...env,
    });
    runs.push(run);
    return run;
  }

  test('a launch opens one window on a dashboard that answers; the token comes over a sender-checked IPC call', async () => {
    const port = await freePort();
    const run = launch({ PORT: String(port) });
    const loaded = await run.waitFor('loaded');
    const dashboard = `http://127.0.0.1:${port}/admin`;
    expect(loaded).toMatchObject({ url: dashboard, status: 200 });

    // Electron's order: the entry finished evaluating, then ready, then the window.
    const order = run.records.map((record) => record.type);
    expect(order.indexOf('entry-evaluated')).toBeGreaterThan(-1);
    expect(order.indexOf('ready')).toBeGreaterThan(order.indexOf('entry-evaluated'));
    expect(order.indexOf('window')).toBeGreaterThan(order.indexOf('ready'));

    const windows = run.of('window');
    expect(windows).toHaveLength(1);
    const { webPreferences } = windows[0]!.options as { webPreferences: Record<string, unknown> };
    expect(webPreferences).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
    });
    expect(webPreferences.preload).toBe(path.join(repoRoot, 'electron/app/preload.cjs'));
    expect(webPreferences.additionalArguments).toBeUndefined();

    // The page sees exactly the preload's small object, and gets the token through it.
    expect(await run.command('page-world')).toEqual({
      photoRelay: { getAdminToken: 'function', openDataFolder: 'function' },
    });
    const token = await run.command('page-call', { key: 'photoRelay', method: 'getAdminToken' });
    expect(typeof token).toBe('string');
    expect(JSON.stringify(windows)).not.toContain(token as string);
    expect(loaded.url).not.toContain(token as string);
    expect((await fetch(dashboard)).status).toBe(200);
    const overview = await fetch(`http://127.0.0.1:${port}/admin/api/overview`, {
      headers: { Authorization: `Bearer ${token as string}` },
    });
    expect(overview.status).toBe(200);

    // Any other sender is refused: another origin, another web contents, a subframe.
    const channel = 'photo-relay:admin-token';
    for (const from of [
      { url: 'https://evil.example/admin' },
      { url: `http://127.0.0.1:${port + 1}/admin` },
      { url: `http://localhost:${port}/admin` },
      { otherWebContents: true, url: dashboard },
      { subframe: true, url: dashboard },
    ]) {
      await expect(run.command('invoke', { channel, from }), JSON.stringify(from)).rejects.toThrow(
        /Refused/,
      );
    }
    await expect(
      run.command('invoke', {
        channel: 'photo-relay:open-data-folder',
        from: { url: 'https://evil.example/' },
      }),
    ).rejects.toThrow(/Refused/);
    await run.command('page-call', { key: 'photoRelay', method: 'openDataFolder' });
    expect(run.of('open-path')).toEqual([{ type: 'open-path', path: run.dataDir }]);

    // Navigation stays on the dashboard's origin; no window opens; no permission is granted.
    expect(await run.command('navigate', { url: `${dashboard}/photos` })).toEqual({
      prevented: false,
    });
    for (const url of [
      'https://example.com/',
      `http://127.0.0.1:${port + 1}/`,
      'file:///etc/passwd',
    ]) {
      expect(await run.command('navigate', { url }), url).toEqual({ prevented: true });
    }
    expect(await run.command('window-open', { url: `${dashboard}/x` })).toEqual({
      action: 'deny',
    });
    for (const permission of ['media', 'notifications', 'geolocation', 'clipboard-read']) {
      expect(await run.command('permission-check', { permission }), permission).toBe(false);
      expect(await run.command('permission-request', { permission }), permission).toBe(false);
    }

    // A second launch only focuses this window.
    await run.command('second-instance');
    expect(run.of('focus')).toHaveLength(1);

    expect(run.of('error-box')).toEqual([]);
    expect(run.of('unhandled-rejection')).toEqual([]);

    // Closing the window quits the app: the relay stops, then exit code 0.
    await run.command('close-window');
    expect(await run.ended()).toBe(0);
    expect(run.of('app-exit')).toEqual([{ type: 'app-exit', code: 0 }]);
  });

  test('a busy port is not fatal: the dashboard opens on another port, and the shell says so', async () => {
    const blocker = net.createServer();
    const busy = await new Promise<number>((resolve) =>
      blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as net.AddressInfo).port)),
    );
    try {
      const run = launch({ PORT: String(busy) });
      const loaded = await run.waitFor('loaded');
      const got = Number(new URL(loaded.url as string).port);
      expect(got).not.toBe(busy);
      expect(loaded.status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${got}/healthz`)).status).toBe(200);
      const notice = await run.waitFor('message-box');
      expect(JSON.stringify(notice.options)).toContain(`Port ${busy} is busy`);
      expect(JSON.stringify(notice.options)).toContain(`port ${got}`);
      expect(run.of('error-box')).toEqual([]);
      await run.command('quit');
      expect(await run.ended()).toBe(0);
    } finally {
      blocker.close();
    }
  });

  test('a failed start ends in one error dialog that says what to do, and exit code 1', async () => {
    const emptyModels = await mkdtemp(path.join(work, 'no-models-'));
    const aFile = path.join(work, 'not-a-folder');
    await writeFile(aFile, 'a file where the data folder should be');
    const cases: { env: Record<string, string>; says: string[] }[] = [
      {
        env: { MODELS_DIR: emptyModels },
        says: [
          'npx photo-relay models fetch',
          'npx photo-relay models install --from',
          emptyModels,
        ],
      },
      { env: { DATA_DIR: aFile }, says: [aFile, 'DATA_DIR'] },
      { env: { PORT: 'eighty' }, says: ['PORT must be a whole number'] },
    ];
    for (const { env, says } of cases) {
      const run = launch({ PORT: String(await freePort()), ...env });
      expect(await run.ended(), JSON.stringify(env)).toBe(1);
      const boxes = run.of('error-box');
      expect(boxes, JSON.stringify(env)).toHaveLength(1);
      expect(boxes[0]!.beforeReady).toBe(false);
      for (const text of says) expect(boxes[0]!.content as string).toContain(text);
      expect(run.of('app-exit')).toEqual([{ type: 'app-exit', code: 1 }]);
      expect(run.of('window')).toEqual([]);
      expect(run.of('unhandled-rejection')).toEqual([]);
      expect(run.of('uncaught-exception')).toEqual([]);
    }
  });

  test('quitting stops the relay before the app exits: the port is free again, exit code 0', async () => {
    const port = await freePort();
    const run = launch({ PORT: String(port) });
    await run.waitFor('loaded');
    expect(await canListen(port)).toBe(false);
    await run.command('quit');
    expect(await run.ended()).toBe(0);
    // app.quit(): before-quit first, which the shell holds (preventDefault) until the relay has
    // stopped; then app.exit(0), with no TCP server left open at that moment.
    const order = run.records.map((record) => record.type);
    expect(order.slice(order.indexOf('quit'))).toEqual([
      'quit',
      'quit-prevented',
      'app-exit',
      'exit',
      'bye',
    ]);
    const exit = run.of('exit')[0]!;
    expect(exit.activeResources).not.toContain('TCPServerWrap');
    expect(await canListen(port)).toBe(true);
  });

  test('a second instance quits without starting anything', async () => {
    const port = await freePort();
    const run = launch({ PORT: String(port), ELECTRON_STANDIN_LOCK: 'taken' });
    expect(await run.ended()).toBe(0);
    expect(run.of('single-instance-lock')).toEqual([
      { type: 'single-instance-lock', granted: false },
    ]);
    for (const type of ['window', 'ipc-handle', 'error-box', 'permission-check-handler']) {
      expect(run.of(type), type).toEqual([]);
    }
    expect(existsSync(run.dataDir)).toBe(false);
    expect(run.of('exit')[0]!.activeResources).not.toContain('TCPServerWrap');
  });
});

describe.skipIf(skipReason)('desktop composition (plain Node)', () => {
  let userData: string;
  beforeAll(async () => {
    userData = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-desktop-'));
  });
  afterAll(() => rm(userData, { recursive: true, force: true }));
  const env = {
    ...process.env,
    HOST: '127.0.0.1',
    EVENT_PIN: '2580',
    PERF_LOG_SECONDS: '0',
    LOG_LEVEL: 'ERROR',
  };

  test('config → store → engine → relay; the dashboard on loopback; stop in reverse, twice is safe', async () => {
    const services = await startDesktopServices({
      userDataDir: userData,
      env: { ...env, PORT: '0' },
    });
    expect(services.config.dataDir).toBe(path.join(userData, 'data'));
    expect(services.dashboardUrl).toBe(`http://127.0.0.1:${services.port}/admin`);
    expect(services.dashboardOrigin).toBe(`http://127.0.0.1:${services.port}`);
    expect(services.portFallback).toBeUndefined();
    const base = services.dashboardOrigin;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const overview = await fetch(`${base}/admin/api/overview`, {
      headers: { Authorization: `Bearer ${services.config.adminToken}` },
    });
    expect(overview.status).toBe(200);
    await services.stop();
    await services.stop();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });

  test('a busy port falls back to a free one and says so', async () => {
    const first = await startDesktopServices({ userDataDir: userData, env: { ...env, PORT: '0' } });
    try {
      const second = await startDesktopServices({
        userDataDir: userData,
        env: { ...env, PORT: String(first.port), DATA_DIR: path.join(userData, 'second') },
      });
      expect(second.portFallback).toEqual({ wanted: first.port, got: second.port });
      expect(second.port).not.toBe(first.port);
      expect((await fetch(`${second.dashboardOrigin}/healthz`)).status).toBe(200);
      await second.stop();
    } finally {
      await first.stop();
    }
  });
});

/** The built dashboard, when it is recent enough to ask the shell for the token over IPC. */
async function builtPagesReason(): Promise<string | undefined> {
  const assets = path.join(repoRoot, 'dist/renderer/assets');
  const bundles = existsSync(assets) ? await readdir(assets) : [];
  for (const name of bundles.filter((file) => file.startsWith('admin') && file.endsWith('.js'))) {
    if ((await readFile(path.join(assets, name), 'utf8')).includes('getAdminToken')) return;
  }
  return 'needs pages built from this tree (npm run build:pages)';
}

describe.skipIf(skipReason ?? chromiumMissingReason() ?? (await builtPagesReason()))(
  "the dashboard in Chromium with the preload's API",
  () => {
    test("waits for the shell's token (getAdminToken) before its first admin call; no token in the address", async () => {
      const relay = await startTestRelay();
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        // What preload.cjs exposes; the token arrives later, as an IPC reply does.
        const token = JSON.stringify(relay.relay.config.adminToken);
        await page.addInitScript({
          content: `window.photoRelay = {
            getAdminToken: () => new Promise((resolve) => setTimeout(() => resolve(${token}), 300)),
            openDataFolder: async () => {},
          };`,
        });
        const refused: string[] = [];
        page.on('response', (response) => {
          if (response.url().includes('/admin/api/') && response.status() === 401)
            refused.push(response.url());
        });
        await page.goto(`${relay.url}/admin`);
        await page.locator('main.dashboard .panel').first().waitFor({ timeout: 20_000 });
        expect(refused).toEqual([]);
        expect(page.url()).toBe(`${relay.url}/admin`);
      } finally {
        await browser.close();
        await relay.close();
      }
    });
  },
);
