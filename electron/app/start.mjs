// Electron's entry: registers tsx so the TypeScript main process runs without a build step, the
// same way the CLI and the engine worker do.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
