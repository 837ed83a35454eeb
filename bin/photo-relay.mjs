#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so `npx photo-relay` works right after `npm ci` with no
// build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../electron/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
