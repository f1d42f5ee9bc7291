/**
 * Every TypeScript block (```ts) of every README in the repository — the root's, each
 * package's and each example's — as the module a reader would paste: each block is whole
 * (its own imports and declarations), so it is typechecked alone, never with its
 * neighbours.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../examples/helpers/process.js';

export interface Snippet {
  /** Where it stands: `packages/core/README.md:44` (the block's first line of code). */
  source: string;
  /** A file name for it in a project: `packages-core-44.ts`. */
  file: string;
  /** The heading of the README section it stands in (`## …`, without the hashes). */
  section: string;
  code: string;
}

function readmes(): string[] {
  const found = ['README.md'];
  for (const folder of ['packages', 'examples']) {
    for (const dir of readdirSync(join(REPO_ROOT, folder)).sort()) {
      const path = `${folder}/${dir}/README.md`;
      if (existsSync(join(REPO_ROOT, path))) found.push(path);
    }
  }
  return found;
}

export function readmeSnippets(): Snippet[] {
  const snippets: Snippet[] = [];
  for (const readme of readmes()) {
    const lines = readFileSync(join(REPO_ROOT, readme), 'utf8').split('\n');
    let start = -1;
    let section = '';
    lines.forEach((line, i) => {
      if (start < 0 && line.startsWith('## ')) section = line.slice(3).trim();
      else if (start < 0 && /^```(ts|typescript)\s*$/.test(line)) start = i + 1;
      else if (start >= 0 && line.startsWith('```')) {
        const at = start + 1; // 1-based number of the block's first line
        const stem = readme === 'README.md' ? 'root' : readme.replace(/\/README\.md$/, '');
        snippets.push({
          source: `${readme}:${at}`,
          file: `${stem.replaceAll('/', '-')}-${at}.ts`,
          section,
          code: `${lines.slice(start, i).join('\n')}\n`,
        });
        start = -1;
      }
    });
  }
  return snippets;
}

/**
 * Whether a snippet can run to its end on its own against the testkit: one that serves
 * (listens), or needs Redis, PostgreSQL or a test runner, is typechecked only (the root
 * README's two servers are run by their own tests).
 */
export function runsAlone(snippet: Snippet): boolean {
  return !/\.listen\(|\bserve\(|createRedisStore|createPostgresLedger|runStoreConformance/.test(
    snippet.code,
  );
}
