// Worker bootstrap: registers tsx so the TypeScript worker runs without a build step, whatever
// started the parent (tsx, Vitest or a bundler).
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
