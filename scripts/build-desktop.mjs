// Compiles the main-process code to JavaScript in out/app (no tsx or esbuild binary at run time
// inside the packaged app) and copies what it reads beside it: the launch shims, the preload, the
// model manifest and the built pages. Paths stay relative, so out/app mirrors the source tree.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const out = path.join(root, 'out/app');
rmSync(out, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
for (const entry of readdirSync(path.join(root, 'electron'), { recursive: true })) {
  if (/\.(mjs|cjs)$/.test(entry))
    cpSync(path.join(root, 'electron', entry), path.join(out, 'electron', entry));
}
cpSync(path.join(root, 'resources/models.json'), path.join(out, 'resources/models.json'));
if (!existsSync(path.join(root, 'dist/renderer')))
  throw new Error('Build the pages first: npm run build:pages');
cpSync(path.join(root, 'dist/renderer'), path.join(out, 'dist/renderer'), { recursive: true });
cpSync(path.join(root, 'package.json'), path.join(out, 'package.json'));
console.log(`main-process code compiled to ${path.relative(root, out)}`);
