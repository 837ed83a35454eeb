// Sandboxed preload (CommonJS, as sandboxed preloads must be): exposes one small object and
// nothing of Node or Electron to the dashboard.
const { contextBridge, ipcRenderer } = require('electron');

const prefix = '--photo-relay-admin-token=';
const tokenArgument = process.argv.find((argument) => argument.startsWith(prefix));

contextBridge.exposeInMainWorld('photoRelay', {
  adminToken: tokenArgument ? tokenArgument.slice(prefix.length) : '',
  openDataFolder: () => ipcRenderer.invoke('photo-relay:open-data-folder'),
});
