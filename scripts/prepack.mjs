#!/usr/bin/env node
// `prepack` of every package (npm runs it in the package's folder before `npm pack` and
// `npm publish`): builds the package and the workspace packages it depends on, so a tarball
// never goes out without its code, and copies in the repository's LICENSE and CHANGELOG.md.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkgDir = process.cwd();
const { name, main } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));

execFileSync(
  process.execPath,
  [
    join(root, 'node_modules', 'turbo', 'bin', 'turbo'),
    'run',
    'build',
    `--filter=${name}...`,
    '--output-logs=errors-only',
  ],
  { cwd: root, stdio: 'inherit' },
);
for (const file of ['LICENSE', 'CHANGELOG.md']) copyFileSync(join(root, file), join(pkgDir, file));
if (!existsSync(join(pkgDir, main))) {
  console.error(`prepack: ${name} has no ${main} after the build; nothing to pack.`);
  process.exit(1);
}
