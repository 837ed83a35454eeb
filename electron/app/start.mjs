// Electron's entry (package.json "main"): the compiled main process in a build (npm run dist); in
// the source tree, tsx runs the TypeScript directly, as for the CLI and the engine worker.
//
// The import is awaited, so main.ts's synchronous set-up (single-instance lock, handlers) is done
// before Electron emits `ready`, which it does only once this module has finished evaluating.
// That is why main.ts must never await `ready` at its top level: this await would then wait for
// `ready`, and `ready` for this await (the app would hang, holding the single-instance lock).
import { existsSync } from 'node:fs';
import { app, dialog } from 'electron';

try {
  const compiled = new URL('./main.js', import.meta.url);
  if (existsSync(compiled)) {
    await import(compiled.href);
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    await import('./main.ts');
  }
} catch (error) {
  // The main process did not even load (a broken build, a missing dependency): say so and leave.
  // Before `ready`, Linux prints this to stderr instead of a dialog (dialog docs).
  dialog.showErrorBox(
    'Photo Relay could not start',
    `Its main process failed to load. Reinstall Photo Relay, or run it from a terminal (npm start) to see why.\n\n${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  app.exit(1);
}
