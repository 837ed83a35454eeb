/**
 * `npm run bench` (pages part): a 12 MP phone JPEG sent through the real uploader page in
 * Chromium over a throttled link, with and without on-phone downscaling, until the display wall
 * shows it. Chooses the uploader's default edge by measurement. Table printed, JSON in
 * bench/results/.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { launchChromium } from '../tests/browser.ts';
import { freePort, spawnRelay, waitHealthy } from '../tests/relay-helpers.ts';
import sharp from 'sharp';

const RUNS = Number(process.env.BENCH_PAGE_RUNS ?? 3);
/** "Crowded Wi-Fi": 8 Mbit/s up, 20 Mbit/s down, 30 ms latency. */
const LINK = { uploadKbps: 8000, downloadKbps: 20000, latencyMs: 30 };
const PIN = '1357';
const repoRoot = path.resolve(import.meta.dirname, '..');
const phonePhoto = path.resolve(
  repoRoot,
  '../shared/photos/edge-cases/derived_12mp_orient6_4032x2688.jpg',
);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

if (!existsSync('/usr/bin/chromium') || !existsSync(phonePhoto)) {
  console.warn(
    'pages bench skipped: needs /usr/bin/chromium and ../shared/photos (12 MP phone JPEG)',
  );
  process.exit(0);
}

const port = await freePort();
const dataDir = await mkdtemp(path.join(os.tmpdir(), 'photo-relay-pages-bench-'));
const relay = spawnRelay({
  PORT: String(port),
  EVENT_PIN: PIN,
  DATA_DIR: dataDir,
  LOG_LEVEL: 'ERROR',
  UPLOADS_PER_MINUTE: '10000',
});
const base = `http://127.0.0.1:${port}`;
const browser = await launchChromium();
try {
  await waitHealthy(relay);
  // The shared 12 MP file is an upscale that compresses to 1.4 MB; a phone writes 4–8 MB. Re-encode
  // it the way phones do (high quality, full chroma, orientation tag kept) for a realistic size.
  const bytes = await sharp(await readFile(phonePhoto))
    .keepMetadata()
    .jpeg({ quality: 97, chromaSubsampling: '4:4:4' })
    .toBuffer();
  const wall = await (
    await browser.newContext({ viewport: { width: 1920, height: 1080 } })
  ).newPage();
  await wall.goto(`${base}/display?pin=${PIN}&interval=600`);
  const rows: Record<string, unknown>[] = [];
  for (const edge of ['off', '1280', '2048', '2560', '3200']) {
    const times: { upload: number; total: number }[] = [];
    for (let run = 0; run < RUNS; run++) {
      const context = await browser.newContext({
        viewport: { width: 390, height: 844 },
        isMobile: true,
        hasTouch: true,
      });
      const page = await context.newPage();
      const cdp = await context.newCDPSession(page);
      await page.goto(`${base}/?pin=${PIN}&edge=${edge}`);
      await cdp.send('Network.enable');
      await cdp.send('Network.emulateNetworkConditions', {
        offline: false,
        latency: LINK.latencyMs,
        uploadThroughput: (LINK.uploadKbps * 1000) / 8,
        downloadThroughput: (LINK.downloadKbps * 1000) / 8,
      });
      const label = `bench-${edge}-${run}`;
      await page.getByLabel('Message (optional)').fill(label);
      const started = Date.now();
      await page
        .getByTestId('gallery')
        .setInputFiles({ name: 'phone.jpg', mimeType: 'image/jpeg', buffer: bytes });
      // Upload finished: the progress bar reaches its end (then the relay is cutting out).
      await page.getByText(/Cutting out|On the screen/).waitFor({ timeout: 120_000 });
      const uploaded = Date.now() - started;
      await wall.locator('figure.shown', { hasText: label }).waitFor({ timeout: 120_000 });
      times.push({ upload: uploaded, total: Date.now() - started });
      await context.close();
    }
    rows.push({
      'phone downscale': edge === 'off' ? 'off (original 12 MP)' : `long edge ${edge}`,
      'prepare + upload ms (median)': median(times.map((t) => t.upload)),
      'until on the wall ms (median)': median(times.map((t) => t.total)),
    });
  }
  console.log(
    `\nUploader → display wall, 12 MP phone JPEG (${(bytes.length / 1e6).toFixed(1)} MB), link ${LINK.uploadKbps / 1000} Mbit/s up, ${LINK.latencyMs} ms, medians of ${RUNS}\n`,
  );
  console.table(rows);
  const resultsDir = path.join(import.meta.dirname, 'results');
  await mkdir(resultsDir, { recursive: true });
  const file = path.join(
    resultsDir,
    `pages-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
  );
  await writeFile(
    file,
    JSON.stringify({ when: new Date().toISOString(), link: LINK, runs: RUNS, rows }, null, 2),
  );
  console.log(`\nJSON written to ${path.relative(process.cwd(), file)}`);
} finally {
  await browser.close();
  relay.child.kill('SIGTERM');
  await relay.exited;
  await rm(dataDir, { recursive: true, force: true });
}
