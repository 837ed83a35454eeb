import path from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/** The relay's pages: built to dist/renderer and served by the relay itself (no CDN, no inline). */
export default defineConfig({
  root: path.resolve(import.meta.dirname, 'renderer'),
  base: '/',
  plugins: [react()],
  build: {
    outDir: path.resolve(import.meta.dirname, 'dist/renderer'),
    emptyOutDir: true,
    // Inline scripts and data-URL modules would need a weaker Content-Security-Policy.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    rolldownOptions: {
      input: {
        uploader: path.resolve(import.meta.dirname, 'renderer/pages/uploader/index.html'),
        display: path.resolve(import.meta.dirname, 'renderer/pages/display/index.html'),
        admin: path.resolve(import.meta.dirname, 'renderer/pages/admin/index.html'),
      },
    },
  },
});
