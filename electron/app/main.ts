/**
 * The desktop shell, kept thin: one instance, a locked-down window on the dashboard, the relay
 * composed in desktop-services.ts and stopped before the app exits. Inference stays in the
 * engine's worker thread (the same code the relay and tests run in plain Node); see the README.
 *
 * Electron emits `ready` only after the entry module (start.mjs, which awaits the import of this
 * one) has finished evaluating, so nothing here awaits at the top level: the lock and the handlers
 * are set up synchronously and everything that needs `ready` runs from app.whenReady().then().
 * A failed start ends in an error dialog that says what to do, then exit code 1.
 */
import path from 'node:path';
import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  session,
  shell,
  type IpcMainInvokeEvent,
} from 'electron';
import {
  startDesktopServices,
  startFailureMessage,
  type DesktopServices,
} from './desktop-services.ts';

let services: DesktopServices | undefined;
let mainWindow: BrowserWindow | undefined;

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** A second launch focuses this instance's window (it quits itself; see the end of the file). */
function setupSecondInstance(): void {
  app.on('second-instance', () => {
    if (!mainWindow) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });
}

/** Every web contents stays on the dashboard's origin and opens no window. */
function setupNavigation(): void {
  app.on('web-contents-created', (_event, contents) => {
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
    contents.on('will-navigate', (event) => {
      if (!services || originOf(event.url) !== services.dashboardOrigin) event.preventDefault();
    });
  });
}

/**
 * The running services, when the IPC call comes from the dashboard: the top frame of this app's
 * window, on the dashboard's origin. Anything else (another frame, another origin, another web
 * contents) is refused: the invoke rejects in the page.
 */
function dashboardServices(event: IpcMainInvokeEvent): DesktopServices {
  const frame = event.senderFrame;
  const trusted =
    services !== undefined &&
    mainWindow !== undefined &&
    event.sender === mainWindow.webContents &&
    frame !== null &&
    frame.parent === null &&
    originOf(frame.url) === services.dashboardOrigin;
  if (!trusted) throw new Error('Refused: only the Photo Relay dashboard may ask for this.');
  return services!;
}

function setupIpc(): void {
  // The admin token goes to the dashboard this way only: not on the command line (any local
  // user can read a process's arguments), not in the URL.
  ipcMain.handle('photo-relay:admin-token', (event) => dashboardServices(event).config.adminToken);
  ipcMain.handle('photo-relay:open-data-folder', async (event) => {
    const problem = await shell.openPath(dashboardServices(event).config.dataDir);
    if (problem) throw new Error(problem);
  });
}

/** Nothing the dashboard does needs a permission (camera, notifications, …): none is granted. */
function setupPermissions(): void {
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) =>
    callback(false),
  );
  session.defaultSession.setPermissionCheckHandler(() => false);
}

/** Quitting stops the relay first (photos in flight finish, the port is freed), then exits. */
function setupQuit(): void {
  let stopping = false;
  // app.quit() emits before-quit before it closes any window; app.exit() emits none (app docs).
  app.on('before-quit', (event) => {
    if (!services) return; // not started yet, or a failed start (which exits by itself)
    event.preventDefault();
    if (stopping) return;
    stopping = true;
    void stopAndExit(services);
  });
  app.on('window-all-closed', () => app.quit());
}

async function stopAndExit(current: DesktopServices): Promise<void> {
  let code = 0;
  try {
    await current.stop();
  } catch (error) {
    console.error('photo-relay: stopping the relay failed', error);
    code = 1;
  }
  app.exit(code);
}

function createWindow(): BrowserWindow {
  const window = new BrowserWindow({
    width: 1400,
    height: 950,
    title: 'Photo Relay',
    webPreferences: {
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      preload: path.join(import.meta.dirname, 'preload.cjs'),
    },
  });
  window.on('closed', () => {
    if (mainWindow === window) mainWindow = undefined;
  });
  return window;
}

/** Another program held the wanted port: the relay runs on another one; say which. */
function showPortNotice(window: BrowserWindow, { wanted, got }: { wanted: number; got: number }) {
  void dialog.showMessageBox(window, {
    type: 'info',
    title: 'Photo Relay',
    message: `Port ${wanted} is busy: Photo Relay uses port ${got} this time.`,
    detail:
      `Another program holds port ${wanted}. Guests join at the addresses and the QR code the ` +
      `dashboard shows; links or QR codes made for port ${wanted} work again once that port is ` +
      `free (or choose a port with the PORT environment variable).`,
  });
}

async function startApp(): Promise<void> {
  setupPermissions();
  services = await startDesktopServices({
    userDataDir: app.getPath('userData'),
    resourcesDir: app.isPackaged ? process.resourcesPath : undefined,
  });
  mainWindow = createWindow();
  await mainWindow.loadURL(services.dashboardUrl);
  if (services.portFallback) showPortNotice(mainWindow, services.portFallback);
}

/** A failed start: one dialog that says what to do, nothing left running, exit code 1. */
async function failStart(error: unknown): Promise<void> {
  try {
    const { title, content } = startFailureMessage(error);
    console.error(`photo-relay: ${title}\n${content}`);
    dialog.showErrorBox(title, content);
    await services?.stop();
  } catch (failure) {
    console.error('photo-relay: failed while reporting a failed start', failure);
  } finally {
    app.exit(1);
  }
}

// Start-up. This module's evaluation ends here, so Electron can emit `ready`.
if (!app.requestSingleInstanceLock()) {
  // Another Photo Relay runs: it has our launch ('second-instance') and shows its window.
  app.quit();
} else {
  setupSecondInstance();
  setupNavigation();
  setupIpc();
  setupQuit();
  app.whenReady().then(startApp).catch(failStart);
}
