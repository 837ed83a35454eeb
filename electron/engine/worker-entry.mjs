// Worker bootstrap: runs the compiled worker when this file sits in a build (npm run dist),
// otherwise registers tsx so the TypeScript worker runs without a build step, whatever started
// the parent (tsx, Vitest or Electron).
import { existsSync } from 'node:fs';

const compiled = new URL('./worker.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./worker.ts');
}
