// @ts-check
/**
 * The demo app: a page at `/`, `POST /api/chat` metered by costTrackedSSE(), the caller's
 * budget at `GET /api/budget`, the budget alerts fired at `GET /api/alerts`, the spend
 * history from the PostgreSQL ledger at `GET /api/spend` (with DATABASE_URL), what a
 * stopped stream was charged at `GET /api/requests/:id`, and Prometheus metrics at
 * `GET /metrics` (loopback only, or behind TOKENMETER_DEMO_METRICS_TOKEN). "Auth" is a bearer
 * key per demo user (random at every start, or set in TOKENMETER_DEMO_USERS), never listed
 * by any route; everything else is what a production app would write.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { formatUsd, nanosToUsd, TokenmeterError, usd } from '@tokenmeter/core';
import { promptTokens } from '@tokenmeter/core/providers';
import { guardStore } from '@tokenmeter/core/store';
import { costTrackedSSE } from '@tokenmeter/express';
import express from 'express';
import { metricsAccess } from './metrics-access.mjs';

const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));
const MAX_PROMPT_CHARS = 8_000;
const SETTLEMENTS_KEPT = 1_000;
const SETTLEMENT_WAIT_MS = 5_000;
const ALERTS_KEPT_PER_USER = 50;
const DAY_MS = 86_400_000;
const HISTORY_DAYS_DEFAULT = 14;
const HISTORY_DAYS_MAX = 90;
const RATE_WINDOW_MS = 60_000;

/**
 * @typedef {object} DemoAppOptions
 * @property {import('./config.mjs').DemoConfig} config
 * @property {import('@tokenmeter/core').Store} store
 * @property {import('./upstream.mjs').Upstream} upstream
 * @property {(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void} metricsHandler
 * @property {import('@tokenmeter/ledger-postgres').PostgresLedger} [ledger] Set: every stream is recorded, GET /api/spend answers.
 * @property {(line: string) => void} [log] Defaults to console.log.
 */

/**
 * @typedef {object} Settlement What `GET /api/requests/:id` answers.
 * @property {string} requestId
 * @property {string} user
 * @property {string} model
 * @property {import('@tokenmeter/core').StreamOutcome} outcome
 * @property {{ inputTokens: number, outputTokens: number }} usage
 * @property {number} costNanos
 * @property {number} costUsd
 * @property {boolean} estimated
 * @property {number} durationMs
 */

/** @param {DemoAppOptions} options */
export function createDemoApp(options) {
  const { config, upstream, metricsHandler } = options;
  const log = options.log ?? ((line) => console.log(line));
  // Keys are looked up by their digest: a lookup's timing then says nothing about the keys.
  const usersByKeyDigest = new Map(config.users.map((u) => [keyDigest(u.key), u]));
  const usersById = new Map(config.users.map((u) => [u.id, u]));
  const metricsCheck = metricsAccess({ token: config.metricsToken });
  const rateLimits = [
    {
      kind: /** @type {const} */ ('requests'),
      limit: config.requestsPerMinute,
      windowMs: RATE_WINDOW_MS,
    },
  ];
  // The same bound on store calls as the middleware's: never a hang on a dead Redis.
  const store = guardStore(options.store, { timeoutMs: 1_000 });
  const settlements = new SettlementLog();
  /** @type {Map<string, AlertRecord[]>} Budget alerts fired in this process, per user, newest first. */
  const alertsByUser = new Map();
  const ledger = options.ledger;

  /**
   * The demo's "auth": `Authorization: Bearer <key>`, one of the demo users' keys (the
   * startup log prints the random ones). A real app verifies a session or a hashed API key
   * here and sets req.user.
   * @type {express.RequestHandler}
   */
  function authenticate(req, res, next) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
    const user = match ? usersByKeyDigest.get(keyDigest(match[1] ?? '')) : undefined;
    if (!user) {
      sendError(
        res,
        401,
        'unauthenticated',
        match
          ? 'Unknown API key: use a key the demo printed when it started (they change at every start unless TOKENMETER_DEMO_USERS sets them).'
          : 'Send a demo key as Authorization: Bearer <key>; the demo prints its keys when it starts.',
        { 'WWW-Authenticate': 'Bearer' },
      );
      return;
    }
    req.user = { id: user.id, dailyBudgetUsd: user.dailyBudgetUsd };
    next();
  }

  /** @type {express.RequestHandler} */
  function requireJson(req, res, next) {
    if (req.is('application/json')) {
      next();
      return;
    }
    sendError(
      res,
      415,
      'unsupported_media_type',
      'Send the body as JSON with Content-Type: application/json.',
    );
  }

  /** @param {string} id */
  const policyOf = (id) => ({
    budget: {
      limitNanos: usd(usersById.get(id)?.dailyBudgetUsd ?? '0'),
      period: /** @type {const} */ ('day'),
    },
    rateLimits,
  });

  const chat = costTrackedSSE({
    store: options.store,
    identify: (req) => {
      const user = /** @type {express.Request} */ (req).user;
      return user && { user: user.id };
    },
    budgets: {
      user: (id) => ({
        limitUsd: usersById.get(id)?.dailyBudgetUsd ?? '0',
        period: 'day',
        alerts: config.alerts,
      }),
    },
    rateLimits: { user: rateLimits },
    maxTokensLimit: config.maxTokensLimit,
    // The demo's body is { prompt, model?, maxTokens? }, not a provider request.
    request: (req) => {
      const { prompt, model, maxTokens } = readChatBody(req.body, config);
      return { model, maxTokens, input: { messages: [{ role: 'user', content: prompt }] } };
    },
    upstream: (req, meter) => {
      const { prompt } = readChatBody(req.body, config);
      return upstream.client.messages.create(
        {
          model: meter.model,
          max_tokens: meter.maxTokens,
          messages: [{ role: 'user', content: prompt }],
          stream: true,
        },
        { signal: meter.signal, headers: upstream.headersFor(prompt) },
      );
    },
    // Told once per user, threshold and day (across processes with Redis), after the
    // settlement that crossed it; a slow hook would never delay a stream.
    onBudgetAlert: (alert) => {
      const list = alertsByUser.get(alert.scope.id) ?? [];
      alertsByUser.set(alert.scope.id, list);
      list.unshift({
        percent: alert.percent,
        limitNanos: alert.limitNanos,
        spentNanos: alert.spentNanos,
        limitUsd: nanosToUsd(alert.limitNanos),
        spentUsd: nanosToUsd(alert.spentNanos),
        period: 'day',
        periodStart: new Date(alert.periodStart).toISOString(),
        requestId: alert.requestId,
        firedAt: new Date().toISOString(),
      });
      list.length = Math.min(list.length, ALERTS_KEPT_PER_USER);
      log(
        `budget alert user=${alert.scope.id} reached=${alert.percent}% ` +
          `spent=${formatUsd(alert.spentNanos)} of ${formatUsd(alert.limitNanos)}`,
      );
    },
    onSettle: (info) => {
      ledger?.onSettle(info);
      const user = info.scopes.find((s) => s.kind === 'user')?.id ?? '?';
      const { final } = info;
      settlements.add({
        requestId: info.requestId,
        user,
        model: info.model,
        outcome: info.outcome,
        usage: { inputTokens: promptTokens(final.usage), outputTokens: final.usage.outputTokens },
        costNanos: final.costNanos,
        costUsd: nanosToUsd(final.costNanos),
        estimated: final.estimated,
        durationMs: Math.round(info.durationMs),
      });
      log(
        `settled user=${user} model=${info.model} input=${promptTokens(final.usage)} ` +
          `output=${final.usage.outputTokens} cost=${formatUsd(final.costNanos)} ` +
          `${final.estimated ? 'estimated' : 'exact'} outcome=${info.outcome} ` +
          `duration=${(info.durationMs / 1000).toFixed(2)}s${info.recorded ? '' : ' NOT-RECORDED'}`,
      );
    },
  });

  const app = express();
  app.disable('x-powered-by');
  app.use(express.static(PUBLIC_DIR, { index: 'index.html' }));

  // What the page needs to draw itself; never the users or their keys.
  app.get('/api/demo', (_req, res) => {
    res.json({
      upstream: upstream.kind,
      store: config.redisUrl ? 'redis' : 'memory',
      models: config.models,
      model: config.model,
      maxTokens: config.maxTokens,
      maxTokensLimit: config.maxTokensLimit,
      requestsPerMinute: config.requestsPerMinute,
      alerts: config.alerts,
      ledger: ledger !== undefined,
    });
  });

  app.post(
    '/api/chat',
    authenticate,
    requireJson,
    express.json({ limit: '16kb' }),
    /** @type {express.RequestHandler} */ (/** @type {unknown} */ (chat)),
  );

  // Who a key belongs to: the page asks for every key it was given.
  app.get('/api/me', authenticate, (req, res) => {
    const { id, dailyBudgetUsd } = /** @type {{ id: string, dailyBudgetUsd: string }} */ (req.user);
    res.set('Cache-Control', 'no-store').json({ user: id, dailyBudgetUsd });
  });

  app.get('/api/budget', authenticate, async (req, res) => {
    const id = /** @type {{ id: string }} */ (req.user).id;
    let state;
    try {
      state = await store.getState({ kind: 'user', id }, policyOf(id));
    } catch (error) {
      if (TokenmeterError.isInstance(error) && error.code === 'store_unavailable') {
        sendError(res, 503, 'store_unavailable', 'The budget store is unavailable; try again.', {
          'Retry-After': '1',
        });
        return;
      }
      throw error;
    }
    const budget = state.budget;
    const window = state.rateLimits.find((r) => r.kind === 'requests');
    res.set('Cache-Control', 'no-store').json({
      user: id,
      budget: budget && {
        period: 'day',
        limitNanos: budget.limitNanos,
        spentNanos: budget.spentNanos,
        reservedNanos: budget.reservedNanos,
        remainingNanos: budget.remainingNanos,
        limitUsd: nanosToUsd(budget.limitNanos),
        spentUsd: nanosToUsd(budget.spentNanos),
        reservedUsd: nanosToUsd(budget.reservedNanos),
        remainingUsd: nanosToUsd(budget.remainingNanos),
        periodEnd: budget.periodEnd === null ? null : new Date(budget.periodEnd).toISOString(),
      },
      rateLimit: window && {
        limit: window.limit,
        remaining: window.remaining,
        windowSeconds: RATE_WINDOW_MS / 1000,
        resetSeconds: Math.ceil(window.resetMs / 1000),
      },
      openReservations: state.reservations.open,
    });
  });

  app.get('/api/alerts', authenticate, (req, res) => {
    const id = /** @type {{ id: string }} */ (req.user).id;
    res.set('Cache-Control', 'no-store').json({ user: id, alerts: alertsByUser.get(id) ?? [] });
  });

  // The caller's spend over the last `days` UTC days (today included), by day and by model,
  // from the ledger. Days with no spend are listed with 0, oldest first.
  app.get('/api/spend', authenticate, async (req, res) => {
    const id = /** @type {{ id: string }} */ (req.user).id;
    if (!ledger) {
      sendError(res, 404, 'no_ledger', 'No spend history: start the demo with DATABASE_URL set.');
      return;
    }
    const rawDays = req.query.days ?? String(HISTORY_DAYS_DEFAULT);
    const days = Number(rawDays);
    if (!Number.isSafeInteger(days) || days < 1 || days > HISTORY_DAYS_MAX) {
      sendError(
        res,
        400,
        'invalid_request',
        `"days" must be a whole number from 1 to ${HISTORY_DAYS_MAX}.`,
      );
      return;
    }
    const { spendByModel, spendByPeriod } = await import('@tokenmeter/ledger-postgres');
    const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const range = { from: new Date(today - (days - 1) * DAY_MS), to: new Date(today + DAY_MS) };
    const scope = { kind: 'user', id };
    let byDay;
    let byModel;
    try {
      // The caller's own streams just settled are in the queue: write them first (briefly).
      await ledger.flush(1_000);
      [byDay, byModel] = await Promise.all([
        spendByPeriod(ledger.pool, scope, 'day', range),
        spendByModel(ledger.pool, scope, range),
      ]);
    } catch {
      sendError(res, 503, 'ledger_unavailable', 'The spend ledger is unavailable; try again.', {
        'Retry-After': '5',
      });
      return;
    }
    const costByDay = new Map(byDay.map((d) => [d.period.getTime(), d]));
    const dayRows = Array.from({ length: days }, (_, i) => {
      const start = range.from.getTime() + i * DAY_MS;
      const found = costByDay.get(start);
      const costNanos = found?.costNanos ?? 0;
      return {
        date: new Date(start).toISOString().slice(0, 10),
        costNanos,
        costUsd: nanosToUsd(costNanos),
        streams: found?.streams ?? 0,
      };
    });
    const totalNanos = dayRows.reduce((sum, d) => sum + d.costNanos, 0);
    res.set('Cache-Control', 'no-store').json({
      user: id,
      from: range.from.toISOString(),
      to: range.to.toISOString(),
      totalNanos,
      totalUsd: nanosToUsd(totalNanos),
      days: dayRows,
      models: byModel.map((m) => ({ ...m, costUsd: nanosToUsd(m.costNanos) })),
      // Settlements this process has not written yet (Postgres slow or down).
      unwritten: ledger.stats().queued,
    });
  });

  app.get('/api/requests/:id', authenticate, async (req, res) => {
    const user = /** @type {{ id: string }} */ (req.user).id;
    const settlement = await settlements.wait(String(req.params.id), SETTLEMENT_WAIT_MS);
    if (!settlement || settlement.user !== user) {
      sendError(res, 404, 'not_found', 'No settled stream with this id for this key (yet).');
      return;
    }
    res.set('Cache-Control', 'no-store').json(settlement);
  });

  app.get('/metrics', (req, res) => {
    const refusal = metricsCheck({
      remoteAddress: req.socket.remoteAddress,
      authorization: req.get('authorization'),
      forwarded: req.get('forwarded') !== undefined || req.get('x-forwarded-for') !== undefined,
    });
    if (refusal) {
      const headers = refusal.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : undefined;
      sendError(res, refusal.status, refusal.code, refusal.message, headers);
      return;
    }
    metricsHandler(req, res);
  });

  app.use('/api', (_req, res) => {
    sendError(res, 404, 'not_found', 'No such endpoint: see examples/demo/README.md.');
  });

  /** @type {express.ErrorRequestHandler} */
  const onError = (error, _req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const type = error?.type;
    if (type === 'entity.parse.failed') {
      sendError(res, 400, 'invalid_json', 'The body is not valid JSON.');
    } else if (type === 'entity.too.large') {
      sendError(res, 413, 'body_too_large', 'The body is larger than 16 kB.');
    } else if (type === 'charset.unsupported' || type === 'encoding.unsupported') {
      sendError(res, 415, 'unsupported_media_type', String(error.message));
    } else if (Number.isInteger(error?.status) && error.status >= 400 && error.status < 500) {
      sendError(res, error.status, 'bad_request', String(error.message));
    } else {
      console.error('tokenmeter demo: unexpected error', error);
      sendError(res, 500, 'internal_error', 'Internal error.');
    }
  };
  app.use(onError);
  return app;
}

/**
 * Reads and checks the demo's request body. Throws a TokenmeterError `invalid_argument`,
 * which the middleware answers with 400 `invalid_request` and this message.
 * @param {unknown} body
 * @param {import('./config.mjs').DemoConfig} config
 */
export function readChatBody(body, config) {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TokenmeterError(
      'invalid_argument',
      'The body must be a JSON object: { "prompt": "…" }.',
    );
  }
  const {
    prompt,
    model = config.model,
    maxTokens = config.maxTokens,
  } = /** @type {Record<string, unknown>} */ (body);
  if (typeof prompt !== 'string' || prompt.trim() === '') {
    throw new TokenmeterError('invalid_argument', '"prompt" must be a non-empty string.');
  }
  if (prompt.length > MAX_PROMPT_CHARS) {
    throw new TokenmeterError(
      'invalid_argument',
      `"prompt" is longer than ${MAX_PROMPT_CHARS} characters.`,
    );
  }
  if (typeof model !== 'string' || !model.startsWith('claude-')) {
    throw new TokenmeterError(
      'invalid_argument',
      `"model" must be a Claude model id such as ${config.model}; the demo streams from Claude.`,
    );
  }
  // Range and integer checks of maxTokens are the middleware's (400 with the allowed range).
  return { prompt, model, maxTokens: /** @type {number} */ (maxTokens) };
}

/**
 * @typedef {object} AlertRecord What `GET /api/alerts` lists.
 * @property {number} percent
 * @property {number} limitNanos
 * @property {number} spentNanos
 * @property {number} limitUsd
 * @property {number} spentUsd
 * @property {string} period
 * @property {string} periodStart
 * @property {string} requestId The stream whose settlement crossed the threshold.
 * @property {string} firedAt
 */

/**
 * The settled streams of the last while, so the page can show what a stopped stream was
 * charged (the client that stopped it no longer receives events).
 */
class SettlementLog {
  /** @type {Map<string, Settlement>} */
  #byId = new Map();
  /** @type {Map<string, Set<(s: Settlement) => void>>} */
  #waiters = new Map();

  /** @param {Settlement} settlement */
  add(settlement) {
    this.#byId.set(settlement.requestId, settlement);
    if (this.#byId.size > SETTLEMENTS_KEPT) {
      const oldest = this.#byId.keys().next().value;
      if (oldest !== undefined) this.#byId.delete(oldest);
    }
    for (const wake of this.#waiters.get(settlement.requestId) ?? []) wake(settlement);
    this.#waiters.delete(settlement.requestId);
  }

  /**
   * The settlement of `requestId`, waiting up to `timeoutMs` for it.
   * @param {string} requestId
   * @param {number} timeoutMs
   * @returns {Promise<Settlement | undefined>}
   */
  wait(requestId, timeoutMs) {
    const found = this.#byId.get(requestId);
    if (found || !/^[\w-]{1,64}$/.test(requestId)) return Promise.resolve(found);
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(requestId) ?? new Set();
      this.#waiters.set(requestId, waiters);
      /** @param {Settlement | undefined} s */
      const wake = (s) => {
        clearTimeout(timer);
        waiters.delete(wake);
        if (waiters.size === 0 && this.#waiters.get(requestId) === waiters) {
          this.#waiters.delete(requestId);
        }
        resolve(s);
      };
      const timer = setTimeout(() => wake(undefined), timeoutMs);
      waiters.add(wake);
    });
  }
}

/** @param {string} key */
function keyDigest(key) {
  return createHash('sha256').update(key).digest('base64');
}

/**
 * @param {import('express').Response} res
 * @param {number} status
 * @param {string} code
 * @param {string} message
 * @param {Record<string, string>} [headers]
 */
function sendError(res, status, code, message, headers = {}) {
  res
    .status(status)
    .set(headers)
    .set('Cache-Control', 'no-store')
    .json({ error: { code, message } });
}
