import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page, type Request } from 'playwright-core';

/** Debian's chromium, driven by playwright-core (never a downloaded browser). */
export const CHROMIUM = '/usr/bin/chromium';

export function chromiumMissingReason(): string | undefined {
  return existsSync(CHROMIUM)
    ? undefined
    : `needs Debian's chromium at ${CHROMIUM} (apt-get install chromium)`;
}

/** Why the pages cannot be opened here (`npm run build:pages`, run by npm install), or undefined. */
export function builtPagesMissingReason(): string | undefined {
  const built = path.resolve(import.meta.dirname, '../dist/renderer/pages/admin/index.html');
  return existsSync(built) ? undefined : 'needs the built pages (npm run build:pages)';
}

/** `args`: extra command-line switches (e.g. `--host-resolver-rules=…`), after the usual ones. */
export function launchChromium(args: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      ...args,
    ],
  });
}

/** The operator's dashboard (1440×900, the laptop it is designed for), once its feed is live. */
export async function openDashboard(
  browser: Browser,
  relayUrl: string,
  adminToken: string,
  options: { acceptDownloads?: boolean; onRequest?: (request: Request) => void } = {},
): Promise<Page> {
  const dashboard = await (
    await browser.newContext({
      viewport: { width: 1440, height: 900 },
      acceptDownloads: options.acceptDownloads,
    })
  ).newPage();
  if (options.onRequest) dashboard.on('request', options.onRequest);
  await dashboard.goto(`${relayUrl}/admin#token=${adminToken}`);
  await dashboard.locator('[data-testid="feed-status"][data-state="live"]').waitFor();
  return dashboard;
}
