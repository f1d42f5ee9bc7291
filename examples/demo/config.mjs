// @ts-check
/**
 * The demo's settings, read once from the environment. Every variable has a default, so
 * `npm run demo` works with none set; a bad value stops the demo at start with a message
 * that says what to write instead.
 */
import { randomBytes } from 'node:crypto';
import { Pricing } from '@tokenmeter/core';

/**
 * @typedef {object} DemoUser
 * @property {string} id The user id: what budgets, the ledger and the logs name. Never a secret.
 * @property {string} dailyBudgetUsd The budget per UTC day, as a decimal string.
 * @property {string} key The bearer key (`Authorization: Bearer <key>`): given in
 *   TOKENMETER_DEMO_USERS, or drawn at random at every start.
 * @property {boolean} generated The key was drawn at start (so the startup log prints it).
 */

/**
 * @typedef {object} DemoConfig
 * @property {number} port
 * @property {string} host
 * @property {DemoUser[]} users
 * @property {number} requestsPerMinute Rate limit per user.
 * @property {string} model Default model.
 * @property {string[]} models Models the page offers (all priced by the bundled catalog).
 * @property {number} maxTokens Default `max_tokens`.
 * @property {number} maxTokensLimit Largest `maxTokens` a caller may ask for.
 * @property {string | undefined} anthropicApiKey Set: the real API (honours ANTHROPIC_BASE_URL).
 * @property {string | undefined} redisUrl Set: the Redis store instead of memory.
 * @property {string | undefined} databaseUrl Set: every stream is recorded in the PostgreSQL ledger.
 * @property {string | undefined} metricsToken Set: `GET /metrics` answers anyone sending it as a
 *   bearer token; unset: loopback callers only.
 * @property {number[]} alerts Budget alert thresholds, percent of the daily limit.
 * @property {{ tps: number, ttftMs: number, tokens: number }} fake Pace of the in-process fake.
 */

export const DEFAULT_USERS = 'alice:1.00,bob:0.0025';
const DEFAULT_ALERTS = '50,80,100';
const DEFAULT_MODEL = 'claude-haiku-4-5';
const OFFERED_MODELS = ['claude-haiku-4-5', 'claude-sonnet-4-6', 'claude-opus-4-6'];

/**
 * @param {Record<string, string | undefined>} env
 * @returns {DemoConfig}
 */
export function readConfig(env) {
  const pricing = new Pricing();
  const model = env.TOKENMETER_DEMO_MODEL || DEFAULT_MODEL;
  if (!pricing.canPrice(model)) {
    throw new Error(
      `TOKENMETER_DEMO_MODEL=${model} is not in the pricing catalog; try ${DEFAULT_MODEL}.`,
    );
  }
  const maxTokensLimit = 1_024;
  const maxTokens = int(env, 'TOKENMETER_DEMO_MAX_TOKENS', 300, 1, maxTokensLimit);
  return {
    port: int(env, 'PORT', 3000, 0, 65_535),
    host: env.HOST || '127.0.0.1',
    users: parseUsers(env.TOKENMETER_DEMO_USERS || DEFAULT_USERS),
    requestsPerMinute: int(env, 'TOKENMETER_DEMO_RPM', 10, 1, 100_000),
    model,
    models: [...new Set([model, ...OFFERED_MODELS])].filter((m) => pricing.canPrice(m)),
    maxTokens,
    maxTokensLimit,
    anthropicApiKey: env.ANTHROPIC_API_KEY || undefined,
    redisUrl: env.REDIS_URL || undefined,
    databaseUrl: env.DATABASE_URL || undefined,
    metricsToken: secret(env, 'TOKENMETER_DEMO_METRICS_TOKEN'),
    alerts: parseAlerts(env.TOKENMETER_DEMO_ALERTS ?? DEFAULT_ALERTS),
    fake: {
      tps: int(env, 'TOKENMETER_DEMO_FAKE_TPS', 40, 1, 1_000_000),
      ttftMs: int(env, 'TOKENMETER_DEMO_FAKE_TTFT_MS', 400, 0, 60_000),
      tokens: int(env, 'TOKENMETER_DEMO_FAKE_TOKENS', 200, 1, 100_000),
    },
  };
}

/** The shortest key accepted: a short one is guessed, and anyone who guesses it spends that budget. */
const MIN_KEY_LENGTH = 16;

/**
 * `"alice:1.00,bob:0.0025"` → users with random keys; `"alice:1.00:<key>"` sets alice's key.
 * Ids are letters, digits, `-`, `_` and `.`; keys the same, 16 to 128 of them.
 * @param {string} text
 * @returns {DemoUser[]}
 */
export function parseUsers(text) {
  /** @type {DemoUser[]} */
  const users = [];
  for (const item of text.split(',')) {
    const entry = item.trim();
    if (entry === '') continue;
    const match = /^([\w.-]{1,64}):(\d{1,6}(?:\.\d{1,9})?)(?::([\w.-]+))?$/.exec(entry);
    if (!match) {
      throw new Error(
        `TOKENMETER_DEMO_USERS: "${entry}" is not id:dailyBudgetUsd or id:dailyBudgetUsd:key (e.g. "alice:1.00,bob:0.0025").`,
      );
    }
    const [, id = '', dailyBudgetUsd = '', given] = match;
    if (given !== undefined && (given.length < MIN_KEY_LENGTH || given.length > 128)) {
      throw new Error(
        `TOKENMETER_DEMO_USERS: the key of "${id}" must be ${MIN_KEY_LENGTH} to 128 characters (letters, digits, "-", "_", "."); leave it out to get a random one.`,
      );
    }
    if (users.some((u) => u.id === id)) {
      throw new Error(`TOKENMETER_DEMO_USERS: the user "${id}" appears twice.`);
    }
    if (given !== undefined && users.some((u) => u.key === given)) {
      throw new Error(`TOKENMETER_DEMO_USERS: two users have the same key.`);
    }
    users.push({
      id,
      dailyBudgetUsd,
      key: given ?? `tmdemo_${randomBytes(18).toString('base64url')}`,
      generated: given === undefined,
    });
  }
  if (users.length === 0) throw new Error('TOKENMETER_DEMO_USERS names no user.');
  return users;
}

/**
 * `"50,80,100"` → [50, 80, 100]: whole percentages from 1 to 1,000, each once; `""` or
 * `"off"` → none.
 * @param {string} text
 * @returns {number[]}
 */
export function parseAlerts(text) {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === 'off') return [];
  const percents = trimmed.split(',').map((item) => Number(item.trim()));
  if (
    percents.some((p) => !Number.isSafeInteger(p) || p < 1 || p > 1_000) ||
    new Set(percents).size !== percents.length
  ) {
    throw new Error(
      `TOKENMETER_DEMO_ALERTS: "${text}" is not a list of whole percentages from 1 to 1000, each once (e.g. "50,80,100", or "off").`,
    );
  }
  return percents.sort((a, b) => a - b);
}

/**
 * @param {Record<string, string | undefined>} env
 * @param {string} name
 * @param {number} fallback
 * @param {number} min
 * @param {number} max
 */
function int(env, name, fallback, min, max) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max}, got "${raw}".`);
  }
  return value;
}

/**
 * A secret from the environment (unset or empty: none), at least MIN_KEY_LENGTH characters.
 * @param {Record<string, string | undefined>} env
 * @param {string} name
 */
function secret(env, name) {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  if (value.length < MIN_KEY_LENGTH || /\s/.test(value)) {
    throw new Error(
      `${name} must be at least ${MIN_KEY_LENGTH} characters without spaces (e.g. the output of \`openssl rand -hex 16\`).`,
    );
  }
  return value;
}

/**
 * A connection URL for the log, its password hidden.
 * @param {string} url
 */
export function redactUrl(url) {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(a URL that does not parse)';
  }
}
