// Sandboxed preload (CommonJS, as sandboxed preloads must be): exposes one small object and
// nothing of Node or Electron to the dashboard. The admin token is asked for over IPC, where the
// main process checks that the caller is the dashboard; it is never on the command line.
const { contextBridge, ipcRenderer } = require('electron');

contextBridge.exposeInMainWorld('photoRelay', {
  getAdminToken: () => ipcRenderer.invoke('photo-relay:admin-token'),
  openDataFolder: () => ipcRenderer.invoke('photo-relay:open-data-folder'),
});
