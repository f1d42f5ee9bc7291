/**
 * The packages as npm publishes them, used from outside the monorepo: every workspace
 * package packed with `npm pack` (its `prepack` builds it), each tarball linted by publint
 * and checked by Are the Types Wrong (ESM-only profile, as the READMEs say), then installed
 * into fresh `"type": "module"` projects — one on Express 5, one on Express 4 — next to
 * nothing of this repository. There: every export of every package is imported (and the
 * packages' roots `require()`d from CommonJS), strict TypeScript consumers (an ES module
 * and a CommonJS `.cts`) typecheck against the shipped declarations (no `skipLibCheck`), an
 * app built from the tarballs streams one answer from the testkit with the exact cost, and
 * every TypeScript block of every README, copied as it stands, typechecks strictly on its
 * own. Those that run on their own run against the testkit; the root README's two servers
 * ("Use it in your app" and the gateway) serve one answer each, the first charged to the
 * nano-dollar.
 *
 * The projects live in a folder of their own under the system's temp dir; dependencies
 * come from the npm registry at the versions this repository runs (npm's cache makes the
 * second run fast).
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Anthropic from '@anthropic-ai/sdk';
import { startFakeLLM } from '@tokenmeter/testkit';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort, REPO_ROOT } from '../examples/helpers/process.js';
import { postSSE } from '../helpers/sse-client.js';
import { readmeSnippets, runsAlone, type Snippet } from './readme-snippets.js';

const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'packed-consumer');
const execFileAsync = promisify(execFile);
const BIN = join(REPO_ROOT, 'node_modules', '.bin');

interface Packed {
  name: string;
  tarball: string;
  /** The subpaths its `exports` map names (without `./package.json`). */
  subpaths: string[];
}

function workspacePackages(): Array<{ name: string; dir: string; subpaths: string[] }> {
  return readdirSync(join(REPO_ROOT, 'packages')).map((dir) => {
    const manifest = JSON.parse(
      readFileSync(join(REPO_ROOT, 'packages', dir, 'package.json'), 'utf8'),
    ) as { name: string; exports: Record<string, unknown> };
    return {
      name: manifest.name,
      dir,
      subpaths: Object.keys(manifest.exports).filter((k) => k !== './package.json'),
    };
  });
}

const snippets = readmeSnippets();

/** The first TypeScript block of a section of the root README. */
function rootSnippet(section: string): Snippet {
  const found = snippets.find((s) => s.source.startsWith('README.md:') && s.section === section);
  if (!found) throw new Error(`README.md has no TypeScript block under "## ${section}"`);
  return found;
}

/** The version of a dependency this repository runs, for the fresh projects. */
function versionOf(name: string): string {
  const manifest = join(REPO_ROOT, 'node_modules', name, 'package.json');
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

const run = (command: string, args: string[], cwd: string) =>
  execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
/** The same, without blocking: the two projects install at once. */
const runAsync = async (command: string, args: string[], cwd: string) =>
  (await execFileAsync(command, args, { cwd, encoding: 'utf8' })).stdout;
/** The project's own TypeScript compiler. */
const tsc = (dir: string) => join(dir, 'node_modules', 'typescript', 'bin', 'tsc');

const snippetReports = new Map<string, Record<string, string[]>>();
/**
 * Typechecks each README block of a project alone (check-snippets.mjs) and compiles those
 * that pass into build/snippets/; once per project. File → its diagnostics.
 */
function snippetBuild(dir: string): Record<string, string[]> {
  let report = snippetReports.get(dir);
  if (!report) {
    report = JSON.parse(run(process.execPath, ['check-snippets.mjs'], dir)) as Record<
      string,
      string[]
    >;
    snippetReports.set(dir, report);
  }
  return report;
}

/**
 * Runs a README block that serves (compiled into build/snippets/ by `snippetBuild`) on a
 * free port given as PORT, and resolves once it answers HTTP.
 */
async function serveSnippet(dir: string, snippet: Snippet, env: Record<string, string>) {
  snippetBuild(dir);
  const port = await freePort();
  const js = join('build', 'snippets', snippet.file.replace(/\.ts$/, '.js'));
  const child = spawn(process.execPath, [js], {
    cwd: dir,
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const answered = await fetch(url).then(
      () => true,
      () => false,
    );
    if (answered) break;
    if (i === 300 || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`${snippet.source} did not serve on ${url}:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, output: () => output, stop: () => child.kill('SIGTERM') };
}

let work: string;
const packed: Packed[] = [];
const projects: Record<'express5' | 'express4', string> = { express5: '', express4: '' };

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tokenmeter-packed-'));
  const tarballs = join(work, 'tarballs');
  mkdirSync(tarballs);
  for (const pkg of workspacePackages()) {
    const out = run(
      'npm',
      ['pack', '--json', '--pack-destination', tarballs, '--loglevel=error'],
      join(REPO_ROOT, 'packages', pkg.dir),
    );
    const [info] = JSON.parse(out.slice(out.indexOf('['))) as Array<{ filename: string }>;
    packed.push({
      name: pkg.name,
      tarball: join(tarballs, info!.filename),
      subpaths: pkg.subpaths,
    });
  }
  const common = [
    ...packed.map((p) => p.tarball),
    `typescript@${versionOf('typescript')}`,
    `@types/node@${versionOf('@types/node')}`,
    `@opentelemetry/api@${versionOf('@opentelemetry/api')}`,
    `ioredis@${versionOf('ioredis')}`,
    `hono@${versionOf('hono')}`,
    `fastify@${versionOf('fastify')}`,
    `@anthropic-ai/sdk@${versionOf('@anthropic-ai/sdk')}`,
    // What the READMEs' blocks import besides: the OpenAI SDK, the AI SDK, Vitest.
    `openai@${versionOf('openai')}`,
    `ai@${versionOf('ai')}`,
    `@ai-sdk/anthropic@${versionOf('@ai-sdk/anthropic')}`,
    `vitest@${versionOf('vitest')}`,
  ];
  const installs = (
    [
      [
        'express5',
        [`express@${versionOf('express')}`, `@types/express@${versionOf('@types/express')}`],
      ],
      ['express4', [`express@${versionOf('express4')}`, '@types/express@4']],
    ] as const
  ).map(async ([project, express]) => {
    const dir = join(work, project);
    mkdirSync(dir);
    cpSync(FIXTURE, dir, { recursive: true });
    mkdirSync(join(dir, 'snippets'));
    for (const { file, code } of snippets) writeFileSync(join(dir, 'snippets', file), code);
    await runAsync(
      'npm',
      ['install', '--no-audit', '--no-fund', '--loglevel=error', ...common, ...express],
      dir,
    );
    projects[project] = dir;
  });
  await Promise.all(installs);
}, 300_000);

describe('each tarball as npm would publish it', () => {
  it('holds its code, types, sources for its maps, LICENSE, CHANGELOG and README — and no tests', () => {
    for (const { name, tarball } of packed) {
      const files = run('tar', ['tzf', tarball], work).split('\n');
      expect(files, name).toContain('package/dist/index.js');
      expect(files, name).toContain('package/dist/index.d.ts');
      expect(files, name).toContain('package/src/index.ts');
      for (const file of ['LICENSE', 'CHANGELOG.md', 'README.md', 'package.json']) {
        expect(files, `${name} ${file}`).toContain(`package/${file}`);
      }
      expect(
        files.filter((f) => /\.test\.|__fixtures__|test-helper/.test(f)),
        name,
      ).toEqual([]);
    }
  });

  it('publint finds nothing; Are the Types Wrong finds nothing for ESM consumers', async () => {
    await Promise.all(
      packed.map(async ({ name, tarball }) => {
        expect(
          await runAsync(join(BIN, 'publint'), ['run', tarball, '--strict'], work),
          name,
        ).toContain('All good!');
        // Exits non-zero on any problem of the profile.
        await runAsync(
          join(BIN, 'attw'),
          [tarball, '--profile', 'esm-only', '--format', 'ascii'],
          work,
        );
      }),
    );
  });

  it('internal dependencies are ranges, and the package says where it comes from', () => {
    for (const { name, tarball } of packed) {
      const manifest = JSON.parse(run('tar', ['xzOf', tarball, 'package/package.json'], work)) as {
        dependencies?: Record<string, string>;
        repository?: { url?: string };
        publishConfig?: { access?: string };
        license?: string;
      };
      for (const [dep, range] of Object.entries(manifest.dependencies ?? {})) {
        if (dep.startsWith('@tokenmeter/')) expect(range, `${name} → ${dep}`).toMatch(/^\^/);
      }
      expect(manifest.repository?.url, name).toMatch(/^git\+https:\/\//);
      expect(manifest.publishConfig?.access, name).toBe('public');
      expect(manifest.license, name).toBe('MIT');
    }
  });
});

describe.each(['express5', 'express4'] as const)('a fresh project on %s', (project) => {
  it('imports every export of every package (ESM) and requires every package (CommonJS)', () => {
    const dir = projects[project];
    const specifiers = packed.flatMap(({ name, subpaths }) =>
      // The testing helpers import vitest (core) or start PostgreSQL (ledger): for tests.
      subpaths
        .filter((s) => s !== './testing')
        .map((s) => (s === '.' ? name : `${name}/${s.slice(2)}`)),
    );
    const esm = run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `for (const s of ${JSON.stringify(specifiers)}) { const m = await import(s); console.log(s, Object.keys(m).length); }`,
      ],
      dir,
    );
    for (const s of specifiers) expect(esm).toMatch(new RegExp(`^${s} [1-9]\\d*$`, 'm'));
    const cjs = run(process.execPath, ['require-all.cjs'], dir);
    expect(cjs).toContain('costTrackedSSE function');
    expect(cjs).toContain('createMemoryStore function');
    expect(cjs).toContain('startFakeLLM function');
  });

  it('strict TypeScript consumers, ESM and CommonJS, typecheck against the shipped declarations', () => {
    const dir = projects[project];
    // No skipLibCheck: the packages' .d.ts and what they import must hold up.
    const out = (() => {
      try {
        return run(process.execPath, [tsc(dir), '-p', 'tsconfig.json'], dir);
      } catch (error) {
        return String((error as { stdout?: string }).stdout ?? error);
      }
    })();
    expect(out).toBe('');
    // The .cts compiles to a CommonJS file that require()s the packages.
    expect(run(process.execPath, [join('build', 'consumer.cjs')], dir)).toBe(
      'commonjs app function function\n',
    );
  });

  it('every TypeScript block of every README typechecks on its own, strictly, as pasted', () => {
    const report = snippetBuild(projects[project]);
    expect(Object.keys(report).sort()).toEqual(snippets.map((s) => s.file).sort());
    const failing = snippets
      .filter((s) => report[s.file]!.length > 0)
      .map((s) => `${s.source}\n${report[s.file]!.join('\n')}`);
    expect(failing, failing.join('\n\n')).toEqual([]);
  });

  it('every README block that runs on its own runs to its end against the testkit', async () => {
    const dir = projects[project];
    snippetBuild(dir);
    const alone = snippets.filter(runsAlone);
    // The core, testkit, store-memory and web blocks at least: the filter leaves most.
    expect(alone.length).toBeGreaterThanOrEqual(15);
    const fake = await startFakeLLM({ tokens: 20 });
    try {
      const env = {
        ...process.env,
        ANTHROPIC_BASE_URL: fake.url,
        ANTHROPIC_API_KEY: 'test',
        OPENAI_BASE_URL: `${fake.url}/v1`,
        OPENAI_API_KEY: 'test',
      };
      const failures: string[] = [];
      // Two at a time: each is a Node process of its own.
      for (let i = 0; i < alone.length; i += 2) {
        await Promise.all(
          alone.slice(i, i + 2).map(async (snippet) => {
            const js = join('build', 'snippets', snippet.file.replace(/\.ts$/, '.js'));
            await execFileAsync(process.execPath, [js], { cwd: dir, env, timeout: 60_000 }).catch(
              (error: { stderr?: string; message: string }) => {
                failures.push(`${snippet.source}: ${error.stderr || error.message}`);
              },
            );
          }),
        );
      }
      expect(failures, failures.join('\n')).toEqual([]);
    } finally {
      await fake.close();
    }
  });

  it("the root README's snippet, as pasted, runs: one answer streamed, charged to the nano-dollar", async () => {
    const fake = await startFakeLLM({ tokens: 30, seed: 5 });
    const app = await serveSnippet(projects[project], rootSnippet('Use it in your app'), {
      ANTHROPIC_BASE_URL: fake.url,
      ANTHROPIC_API_KEY: 'test',
    });
    try {
      const result = await postSSE(`${app.url}/api/chat`, {
        model: 'claude-haiku-4-5',
        max_tokens: 300,
        messages: [{ role: 'user', content: 'Hello' }],
      });
      expect(result.status, app.output()).toBe(200);
      const record = await fake.waitForRequest(fake.lastRequest!.id);
      expect(result.text).toBe(record.text);
      const done = result.events.find((e) => e.event === 'done')!.json as {
        costNanos: number;
        estimated: boolean;
      };
      expect(done.estimated).toBe(false);
      // claude-haiku-4-5: $1 / $5 per million tokens.
      expect(done.costNanos).toBe(
        record.usage!.inputTokens * 1_000 + record.usage!.outputTokens * 5_000,
      );
      // onSettle logged the same figure: `[ { kind: 'user', id: 'demo' } ] completed <nanos>`.
      for (let i = 0; i < 50 && !app.output().includes(String(done.costNanos)); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(app.output()).toContain(`completed ${done.costNanos}`);
    } finally {
      app.stop();
      await fake.close();
    }
  });

  it("the root README's gateway, as pasted, serves the Anthropic SDK with a key the app issued", async () => {
    const fake = await startFakeLLM({ tokens: 12, seed: 3 });
    const app = await serveSnippet(
      projects[project],
      rootSnippet("Or meter the providers' own APIs"),
      {
        ANTHROPIC_BASE_URL: fake.url,
        ANTHROPIC_API_KEY: 'provider-key',
      },
    );
    try {
      const body = {
        model: 'claude-haiku-4-5',
        max_tokens: 200,
        messages: [{ role: 'user' as const, content: 'Hello' }],
      };
      const client = (apiKey: string) =>
        new Anthropic({ baseURL: `${app.url}/llm`, apiKey, maxRetries: 0 });
      const message = await client('tm-alice-1').messages.create(body);
      const record = await fake.waitForRequest(fake.lastRequest!.id);
      expect(message.content.map((b) => (b.type === 'text' ? b.text : '')).join('')).toBe(
        record.text,
      );
      expect(message.usage.output_tokens).toBe(12);
      // The provider saw the server's key, never the caller's.
      expect(record.headers['x-api-key']).toBe('provider-key');
      const refused = await client('tm-someone-else')
        .messages.create(body)
        .catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(Anthropic.AuthenticationError);
      expect(fake.requests).toHaveLength(1);
    } finally {
      app.stop();
      await fake.close();
    }
  });

  it('an app built from the tarballs streams one answer, charged to the nano-dollar', () => {
    const dir = projects[project];
    const report = JSON.parse(run(process.execPath, ['stream-one.mjs'], dir)) as {
      status: number;
      text: string;
      expectedText: string;
      costNanos: number;
      inputTokens: number;
      outputTokens: number;
    };
    expect(report.status).toBe(200);
    expect(report.text).toBe(report.expectedText);
    // claude-haiku-4-5: $1 / $5 per million tokens.
    expect(report.costNanos).toBe(report.inputTokens * 1_000 + report.outputTokens * 5_000);
    expect(report.outputTokens).toBe(24);
  });
});
