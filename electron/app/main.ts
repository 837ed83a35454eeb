/**
 * The desktop shell, kept thin: one instance, secure window defaults, the relay composed in
 * compose.ts, stopped in reverse on quit. Inference stays in the engine's worker thread (the same
 * code the relay and tests run in plain Node); see the README for why not a utilityProcess.
 */
import path from 'node:path';
import { app, BrowserWindow, ipcMain, session, shell } from 'electron';
import { startDesktopServices, type DesktopServices } from './desktop-services.ts';

let services: DesktopServices | undefined;

function setupSingleInstance(): boolean {
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return false;
  }
  app.on('second-instance', () => {
    const [window] = BrowserWindow.getAllWindows();
    if (window) {
      if (window.isMinimized()) window.restore();
      window.focus();
    }
  });
  return true;
}

function setupSecurity(): void {
  // Nothing the dashboard does needs a permission (camera, notifications, …): deny them all.
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) =>
    callback(false),
  );
  app.on('web-contents-created', (_event, contents) => {
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
    contents.on('will-navigate', (event, url) => {
      if (!services || !url.startsWith(services.dashboardUrl)) event.preventDefault();
    });
  });
}

function setupIpc(): void {
  ipcMain.handle('photo-relay:open-data-folder', async () => {
    if (services) await shell.openPath(services.config.dataDir);
  });
}

async function createWindow(current: DesktopServices): Promise<void> {
  const window = new BrowserWindow({
    width: 1400,
    height: 950,
    title: 'Photo Relay',
    webPreferences: {
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      preload: path.join(import.meta.dirname, 'preload.cjs'),
      // The admin token reaches the preload this way, never through the URL or the page.
      additionalArguments: [`--photo-relay-admin-token=${current.config.adminToken}`],
    },
  });
  await window.loadURL(current.dashboardUrl);
}

function setupQuit(): void {
  let quitting = false;
  app.on('before-quit', (event) => {
    if (quitting || !services) return;
    event.preventDefault();
    quitting = true;
    void services.stop().finally(() => app.exit(0));
  });
  app.on('window-all-closed', () => app.quit());
}

if (setupSingleInstance()) {
  setupIpc();
  setupQuit();
  await app.whenReady();
  setupSecurity();
  services = await startDesktopServices({
    userDataDir: app.getPath('userData'),
    resourcesDir: app.isPackaged ? process.resourcesPath : undefined,
  });
  await createWindow(services);
}
