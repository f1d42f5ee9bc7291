#!/usr/bin/env node
// @ts-check
/**
 * The test suite's preflight: every system program the tests start (private Redis servers
 * and a Redis Cluster, Chromium, Prometheus, private PostgreSQL clusters) is looked for at
 * once, the way the tests look for it, so a machine that lacks some learns all of them and
 * how to install them in one message, before any test runs — not from one failing test at a
 * time. The tests themselves still fail loudly when a program is missing; none skips.
 *
 * Used as the Vitest `globalSetup` of test/ (its `setup()` throws the report) and by .ci/run:
 *
 *   node scripts/preflight.mjs                    the report; exit 1 when something is missing
 *   node scripts/preflight.mjs --debian-packages  only the Debian packages to install, one a line
 *
 * Only Node's own modules: it runs before `npm ci`.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * @typedef {object} Requirement
 * @property {string} name What is missing, as a reader would call it.
 * @property {string} debian The Debian/Ubuntu package that provides it.
 * @property {string} usedBy Which tests start it.
 * @property {(env: NodeJS.ProcessEnv) => { found: string } | { missing: string }} find
 *   Where the tests would take it from, or where they looked.
 */

// Where the PostgreSQL binaries are looked for: the same folders, in the same order, as
// @tokenmeter/ledger-postgres/testing.
const POSTGRES_DIRS = [
  '/usr/local/bin',
  '/usr/bin',
  '/usr/lib/postgresql/17/bin',
  '/usr/lib/postgresql/16/bin',
  '/usr/lib/postgresql/15/bin',
];

/** @type {Requirement[]} */
export const REQUIREMENTS = [
  {
    name: 'redis-server',
    debian: 'redis-server',
    usedBy: 'the Redis store, gateway, example and bench tests (private servers, a local cluster)',
    find: (env) => onPath('redis-server', env),
  },
  {
    name: 'redis-cli',
    debian: 'redis-tools',
    usedBy: 'the Redis Cluster tests (redis-cli --cluster create)',
    find: (env) => onPath('redis-cli', env),
  },
  {
    name: 'chromium',
    debian: 'chromium',
    usedBy: 'the demo page and AI SDK page tests (headless, through playwright-core)',
    find: (env) => atPath(env.CHROMIUM_PATH || '/usr/bin/chromium', 'CHROMIUM_PATH'),
  },
  {
    name: 'prometheus',
    debian: 'prometheus',
    usedBy: 'the end-to-end scrape of the metrics (test/telemetry/prometheus-e2e.test.ts)',
    find: (env) => atPath(env.PROMETHEUS_BIN || '/usr/bin/prometheus', 'PROMETHEUS_BIN'),
  },
  {
    name: 'initdb',
    debian: 'postgresql',
    usedBy: 'the PostgreSQL ledger tests (a private cluster per test file)',
    find: () => inDirs('initdb', POSTGRES_DIRS),
  },
  {
    name: 'pg_ctl',
    debian: 'postgresql',
    usedBy: 'the PostgreSQL ledger tests',
    find: () => inDirs('pg_ctl', POSTGRES_DIRS),
  },
  {
    // Run as root (CI), the ledger's private clusters run as this user, as Postgres requires.
    name: 'the postgres user',
    debian: 'postgresql',
    usedBy: 'the PostgreSQL ledger tests when run as root',
    find: () => {
      if (process.getuid?.() !== 0) return { found: 'not needed (not root)' };
      try {
        execFileSync('id', ['-u', 'postgres'], { stdio: 'pipe' });
        return { found: 'postgres' };
      } catch {
        return { missing: 'no user named postgres (root runs PostgreSQL as it)' };
      }
    },
  },
];

/**
 * What is missing, with where the tests looked for it.
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {Array<Requirement & { looked: string }>}
 */
export function missingRequirements(env = process.env) {
  return REQUIREMENTS.flatMap((requirement) => {
    const result = requirement.find(env);
    return 'missing' in result ? [{ ...requirement, looked: result.missing }] : [];
  });
}

/**
 * The report for what is missing, or `undefined` when nothing is.
 * @param {NodeJS.ProcessEnv} [env]
 */
export function preflightReport(env = process.env) {
  const missing = missingRequirements(env);
  if (missing.length === 0) return undefined;
  const packages = [...new Set(missing.map((m) => m.debian))];
  return [
    `The tests need ${missing.length === 1 ? 'a program' : `${missing.length} programs`} this machine lacks (each test that starts one would fail):`,
    ...missing.map((m) => `  - ${m.name}: ${m.looked}; used by ${m.usedBy}`),
    '',
    'Install (Debian/Ubuntu, as root; .ci/run does this on its own):',
    `  apt-get update && apt-get install -y ${packages.join(' ')}`,
    'Chromium or Prometheus elsewhere: set CHROMIUM_PATH or PROMETHEUS_BIN to the binary.',
  ].join('\n');
}

/** Vitest `globalSetup`: the run stops before any test when something is missing. */
export function setup() {
  const report = preflightReport();
  if (report) throw new Error(`preflight (scripts/preflight.mjs)\n${report}`);
}

/**
 * @param {string} name
 * @param {NodeJS.ProcessEnv} env
 */
function onPath(name, env) {
  const dirs = (env.PATH ?? '').split(delimiter).filter((dir) => dir !== '');
  const found = dirs.map((dir) => join(dir, name)).find(isExecutable);
  return found ? { found } : { missing: `not on PATH` };
}

/**
 * @param {string} path
 * @param {string} variable The environment variable that names another path.
 */
function atPath(path, variable) {
  return isExecutable(path)
    ? { found: path }
    : { missing: `nothing executable at ${path} (${variable} names another)` };
}

/**
 * @param {string} name
 * @param {string[]} dirs
 */
function inDirs(name, dirs) {
  const found = dirs.map((dir) => join(dir, name)).find(isExecutable);
  return found ? { found } : { missing: `not in ${dirs.join(', ')}` };
}

/** @param {string} path */
function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--debian-packages')) {
    const packages = new Set(missingRequirements().map((m) => m.debian));
    for (const name of packages) process.stdout.write(`${name}\n`);
  } else {
    const report = preflightReport();
    if (report) {
      process.stderr.write(`${report}\n`);
      process.exitCode = 1;
    } else {
      process.stdout.write(
        `preflight: ${REQUIREMENTS.map((r) => r.name).join(', ')}: all present\n`,
      );
    }
  }
}
