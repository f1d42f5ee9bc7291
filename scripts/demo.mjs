#!/usr/bin/env node
// `npm run demo`: installs the dependencies on the first run (npm ci), builds what the demo
// needs, saying so as it goes, then runs the demo in this very process — so Ctrl-C and a
// SIGTERM sent to `npm run demo` reach the server, which closes and frees its port.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
await import('./ensure-install.mjs');
console.log('tokenmeter: building the packages the demo needs (about a minute the first time)…');
const started = Date.now();
execFileSync(
  process.execPath,
  [
    join(root, 'node_modules', 'turbo', 'bin', 'turbo'),
    'run',
    'build',
    '--filter=@tokenmeter/examples...',
    '--output-logs=errors-only',
  ],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
console.log(
  `tokenmeter: built in ${((Date.now() - started) / 1000).toFixed(0)} s; starting the demo…`,
);
await import('../examples/demo/server.mjs');
