// Electron's entry: the compiled main process in a build (npm run dist); in the source tree,
// tsx runs the TypeScript directly, as for the CLI and the engine worker.
import { existsSync } from 'node:fs';

const compiled = new URL('./main.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./main.ts');
}
