// @ts-check
/**
 * The demo page: knows the demo keys it was given (the link the demo prints carries them in
 * its fragment, `#keys=…`, which no request sends; or the user pastes one), kept in
 * localStorage and checked against GET /api/me; sends a prompt to POST /api/chat with the
 * chosen user's key, renders the
 * SSE stream (text, live token count and running cost), the final exact cost and the
 * remaining budget; Stop aborts the request and shows what the server charged for the
 * partial answer; budget and rate-limit rejections are shown as what they are.
 *
 * For tests and the curious, the last events are on `window.tokenmeterDemo`, and the
 * result card carries `data-state` (idle, streaming, stopping, done, stopped, rejected,
 * error) and the final numbers as data attributes.
 */
import { dailyChart, modelChart } from './charts.js';
import { formatCount, formatNanos, formatUntil, usdToNanos } from './format.js';
import { readSse } from './sse.js';

/**
 * @typedef {{ user: string, dailyBudgetUsd: string, key: string }} Account A key and whose it is.
 * @typedef {{ upstream: 'fake' | 'anthropic', store: string, models: string[],
 *   model: string, maxTokens: number, maxTokensLimit: number, requestsPerMinute: number,
 *   alerts: number[], ledger: boolean }} DemoInfo
 * @typedef {{ inputTokens: number, outputTokens: number }} Tokens
 * @typedef {{ limitUsd: number, spentUsd: number, reservedUsd: number, remainingUsd: number,
 *   periodEnd: string | null }} BudgetJson
 * @typedef {{ requestId: string, model: string, reservedUsd: number, budget: BudgetJson | null }} MetaEvent
 * @typedef {{ stopReason: string | null, usage: Tokens, costUsd: number, costNanos: number,
 *   estimated: boolean, budget: BudgetJson | null }} DoneEvent
 * @typedef {DoneEvent & { code: string, message: string }} ErrorEvent
 * @typedef {{ requestId: string, outcome: string, usage: Tokens, costNanos: number,
 *   estimated: boolean, durationMs: number }} Settlement
 * @typedef {{ code: string, message: string, [key: string]: unknown }} ApiError
 * @typedef {{ percent: number, limitNanos: number, spentNanos: number, firedAt: string,
 *   requestId: string }} AlertJson
 * @typedef {{ totalNanos: number, unwritten: number,
 *   days: import('./charts.js').DaySpend[], models: import('./charts.js').ModelSpend[] }} SpendJson
 */

/** What the page saw last; read by the end-to-end test. */
const seen = {
  /** @type {MetaEvent | null} */ meta: null,
  /** @type {DoneEvent | null} */ done: null,
  /** @type {ErrorEvent | null} */ error: null,
  /** @type {Settlement | null} */ settlement: null,
  /** @type {{ status: number, error: ApiError } | null} */ rejection: null,
  text: '',
  /** Streams finished so far (any outcome), so a test can wait for the next one. */
  finished: 0,
  /** The last GET /api/spend answer shown (with DATABASE_URL). */
  /** @type {SpendJson | null} */ spend: null,
};
Object.assign(window, { tokenmeterDemo: seen });

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @returns {T}
 */
function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing`);
  return /** @type {T} */ (el);
}

const ui = {
  user: /** @type {HTMLSelectElement} */ ($('user')),
  keyForm: /** @type {HTMLFormElement} */ ($('key-form')),
  key: /** @type {HTMLInputElement} */ ($('key')),
  keyHint: $('key-hint'),
  model: /** @type {HTMLSelectElement} */ ($('model')),
  maxTokens: /** @type {HTMLInputElement} */ ($('max-tokens')),
  form: /** @type {HTMLFormElement} */ ($('form')),
  prompt: /** @type {HTMLTextAreaElement} */ ($('prompt')),
  send: /** @type {HTMLButtonElement} */ ($('send')),
  stop: /** @type {HTMLButtonElement} */ ($('stop')),
  notice: $('notice'),
  result: $('result'),
  output: $('output'),
  summary: $('summary'),
  statOutput: $('stat-output'),
  statInput: $('stat-input'),
  statCost: $('stat-cost'),
  statCostKind: $('stat-cost-kind'),
  statStatus: $('stat-status'),
  history: $('history'),
  budgetFill: $('budget-fill'),
  budgetRemaining: $('budget-remaining'),
  budgetSpent: $('budget-spent'),
  budgetReserved: $('budget-reserved'),
  budgetLimit: $('budget-limit'),
  budgetReset: $('budget-reset'),
  rateRemaining: $('rate-remaining'),
  alertList: $('alert-list'),
  alertsEmpty: $('alerts-empty'),
  spendOff: $('spend-off'),
  spendOn: $('spend-on'),
  spendSummary: $('spend-summary'),
  spendDays: $('spend-days'),
  spendModels: $('spend-models'),
  upstreamBadge: $('upstream-badge'),
  storeBadge: $('store-badge'),
  curl: $('curl'),
};

/** @type {DemoInfo} */
let info;
/** @type {AbortController | null} */
let running = null;
/** The keys this page knows, by user id, in the order they were given. */
/** @type {Map<string, Account>} */
const accounts = new Map();
const KEYS_ITEM = 'tokenmeter-demo-keys';
const USER_ITEM = 'tokenmeter-demo-user';

const currentKey = () => accounts.get(ui.user.value)?.key ?? '';
const authHeader = () => ({ authorization: `Bearer ${currentKey()}` });

async function init() {
  info = await (await fetch('/api/demo')).json();
  ui.upstreamBadge.textContent =
    info.upstream === 'fake' ? 'fake Claude (no API key needed)' : 'Anthropic API';
  ui.storeBadge.textContent = `${info.store} store · ${info.requestsPerMinute} requests/min`;
  // Keys from an earlier visit first, then the link's, so the link's win for the same user.
  await addKeys([...new Set([...storedKeys(), ...keysFromLink()])]);
  showAccounts(localStorage.getItem(USER_ITEM));
  ui.keyForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void addKey(ui.key.value.trim());
  });
  // The link opened in a tab that already shows the page changes only the fragment.
  window.addEventListener('hashchange', () => {
    const keys = keysFromLink();
    if (keys.length === 0) return;
    void addKeys(keys).then(() => {
      showAccounts(ui.user.value);
      return refreshAccount();
    });
  });
  for (const model of info.models) ui.model.add(new Option(model, model));
  ui.model.value = info.model;
  ui.maxTokens.value = String(info.maxTokens);
  ui.maxTokens.max = String(info.maxTokensLimit);
  showCurl();
  ui.user.addEventListener('change', () => {
    localStorage.setItem(USER_ITEM, ui.user.value);
    showCurl();
    hideNotice();
    void refreshAccount();
  });
  ui.form.addEventListener('submit', (event) => {
    event.preventDefault();
    void send();
  });
  ui.prompt.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) ui.form.requestSubmit();
  });
  ui.stop.addEventListener('click', () => {
    if (!running) return;
    setState('stopping', 'Stopping…');
    running.abort();
  });
  ui.spendOff.hidden = info.ledger;
  ui.spendOn.hidden = !info.ledger;
  if (info.alerts.length === 0) ui.alertsEmpty.textContent = 'Off (TOKENMETER_DEMO_ALERTS).';
  await refreshAccount();
  document.body.dataset.ready = 'true';
}

/** Keys from the link the demo prints (`/#keys=k1,k2`); the fragment leaves the address bar. */
function keysFromLink() {
  const match = /^#keys=([^&]*)/.exec(location.hash);
  if (!match) return [];
  history.replaceState(null, '', location.pathname + location.search);
  return decodeURIComponent(match[1] ?? '')
    .split(',')
    .map((key) => key.trim())
    .filter((key) => key !== '');
}

/** @returns {string[]} */
function storedKeys() {
  try {
    const keys = JSON.parse(localStorage.getItem(KEYS_ITEM) ?? '[]');
    return Array.isArray(keys) ? keys.filter((key) => typeof key === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * Whose `key` is, from GET /api/me: the account, 'unknown' (401) or 'failed'.
 * @param {string} key
 * @returns {Promise<Account | 'unknown' | 'failed'>}
 */
async function whoIs(key) {
  try {
    const response = await fetch('/api/me', {
      headers: { authorization: `Bearer ${key}` },
      cache: 'no-store',
    });
    if (response.status === 401) return 'unknown';
    if (!response.ok) return 'failed';
    /** @type {{ user: string, dailyBudgetUsd: string }} */
    const me = await response.json();
    return { user: me.user, dailyBudgetUsd: me.dailyBudgetUsd, key };
  } catch {
    return 'failed';
  }
}

/**
 * Checks `keys` with the server and adds the accounts of those it knows. Keys it knows are
 * remembered; a remembered key it no longer knows (the demo draws new ones at every start)
 * is forgotten; one that could not be checked is left as it was.
 * @param {string[]} keys
 */
async function addKeys(keys) {
  const found = await Promise.all(keys.map((key) => whoIs(key)));
  const unknown = new Set(keys.filter((_, i) => found[i] === 'unknown'));
  const known = keys.filter((_, i) => typeof found[i] === 'object');
  const kept = storedKeys().filter((key) => !unknown.has(key));
  localStorage.setItem(KEYS_ITEM, JSON.stringify([...new Set([...kept, ...known])]));
  for (const account of found) {
    if (typeof account === 'object') accounts.set(account.user, account);
  }
  return found;
}

/**
 * The "Add a key" form: checks the key, remembers it and switches to its user.
 * @param {string} key
 */
async function addKey(key) {
  if (key === '') return;
  const [account = 'failed'] = await addKeys([key]);
  if (account === 'unknown' || account === 'failed') {
    showNotice(
      'error',
      account === 'unknown' ? 'Unknown key.' : 'The key could not be checked.',
      account === 'unknown'
        ? 'It is not one of the keys this demo printed when it started (they change at every start).'
        : 'Try again.',
    );
    return;
  }
  ui.key.value = '';
  hideNotice();
  localStorage.setItem(USER_ITEM, account.user);
  showAccounts(account.user);
  await refreshAccount();
}

/**
 * Fills the user list from the known keys and selects `preferred` when it is one of them.
 * @param {string | null} preferred
 */
function showAccounts(preferred) {
  ui.user.replaceChildren(
    ...[...accounts.values()].map(
      (a) => new Option(`${a.user} · $${a.dailyBudgetUsd} a day`, a.user),
    ),
  );
  if (preferred && accounts.has(preferred)) ui.user.value = preferred;
  const none = accounts.size === 0;
  ui.user.disabled = none;
  ui.send.disabled = none || running !== null;
  ui.keyHint.textContent = none
    ? 'No key yet: paste one the demo printed when it started, or open the link it printed.'
    : 'The demo prints its keys, and a link that brings them here, when it starts.';
  document.body.dataset.keys = String(accounts.size);
  showCurl();
}

function showCurl() {
  const key = currentKey() || '<key>';
  ui.curl.textContent = `curl -N ${location.origin}/api/chat -H 'Authorization: Bearer ${key}' -H 'Content-Type: application/json' -d '{"prompt":"Hello"}'`;
}

/** The budget panel, the alerts and the spend history of the chosen user. */
async function refreshAccount() {
  if (accounts.size === 0) return;
  await Promise.all([refreshBudget(), refreshAlerts(), refreshSpend()]);
}

async function refreshAlerts() {
  const response = await fetch('/api/alerts', { headers: authHeader(), cache: 'no-store' });
  if (!response.ok) return;
  /** @type {{ alerts: AlertJson[] }} */
  const { alerts } = await response.json();
  ui.alertList.replaceChildren(
    ...alerts.map((alert) => {
      const item = document.createElement('li');
      item.dataset.percent = String(alert.percent);
      item.dataset.spentNanos = String(alert.spentNanos);
      item.textContent =
        `${alert.percent} % of ${formatNanos(alert.limitNanos)} reached: ` +
        `${formatNanos(alert.spentNanos)} spent · ${new Date(alert.firedAt).toLocaleTimeString()}`;
      return item;
    }),
  );
  ui.alertsEmpty.hidden = alerts.length > 0;
}

async function refreshSpend() {
  if (!info.ledger) return;
  const response = await fetch('/api/spend?days=14', { headers: authHeader(), cache: 'no-store' });
  if (!response.ok) {
    ui.spendSummary.textContent = 'The spend ledger is unavailable right now.';
    return;
  }
  /** @type {SpendJson} */
  const spend = await response.json();
  seen.spend = spend;
  const streams = spend.days.reduce((n, d) => n + d.streams, 0);
  ui.spendSummary.textContent =
    `${ui.user.value}: ${formatNanos(spend.totalNanos)} over the last ${spend.days.length} days, ` +
    `${formatCount(streams)} stream${streams === 1 ? '' : 's'}` +
    (spend.unwritten > 0 ? ` (${formatCount(spend.unwritten)} not yet written)` : '') +
    '. From the PostgreSQL ledger.';
  ui.spendSummary.dataset.totalNanos = String(spend.totalNanos);
  ui.spendDays.innerHTML = dailyChart(spend.days);
  ui.spendModels.innerHTML = modelChart(spend.models);
}

async function refreshBudget() {
  const response = await fetch('/api/budget', { headers: authHeader(), cache: 'no-store' });
  if (!response.ok) return;
  /** @type {{ budget: (BudgetJson & { limitNanos: number, spentNanos: number, reservedNanos: number, remainingNanos: number }) | null, rateLimit: { limit: number, remaining: number, resetSeconds: number } | null }} */
  const state = await response.json();
  const budget = state.budget;
  if (budget) {
    ui.budgetRemaining.textContent = formatNanos(budget.remainingNanos);
    ui.budgetSpent.textContent = formatNanos(budget.spentNanos);
    ui.budgetReserved.textContent = formatNanos(budget.reservedNanos);
    ui.budgetLimit.textContent = formatNanos(budget.limitNanos);
    ui.budgetReset.textContent = formatUntil(budget.periodEnd);
    ui.budgetRemaining.dataset.nanos = String(budget.remainingNanos);
    ui.budgetSpent.dataset.nanos = String(budget.spentNanos);
    const share = budget.limitNanos > 0 ? budget.remainingNanos / budget.limitNanos : 0;
    ui.budgetFill.style.width = `${Math.max(0, Math.min(1, share)) * 100}%`;
    ui.budgetFill.classList.toggle('low', share < 0.5 && share >= 0.15);
    ui.budgetFill.classList.toggle('empty', share < 0.15);
  }
  if (state.rateLimit) {
    const { remaining, limit, resetSeconds } = state.rateLimit;
    ui.rateRemaining.textContent =
      remaining > 0 ? `${remaining} of ${limit}` : `0 of ${limit} (for ${resetSeconds} s)`;
  }
}

async function send() {
  if (running) return;
  if (accounts.size === 0) {
    showNotice('error', 'No key yet.', 'Paste a demo key first.');
    return;
  }
  const prompt = ui.prompt.value.trim();
  if (!prompt) {
    showNotice('error', 'Type a prompt first.', '');
    return;
  }
  const controller = new AbortController();
  running = controller;
  const user = ui.user.value;
  const key = currentKey();
  const model = ui.model.value;
  resetResult();
  setState('streaming', 'Waiting for the first token…');
  ui.send.disabled = true;
  ui.stop.disabled = false;

  try {
    const response = await fetch('/api/chat', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ prompt, model, maxTokens: Number(ui.maxTokens.value) }),
      signal: controller.signal,
    });
    if (!response.headers.get('content-type')?.startsWith('text/event-stream')) {
      const body = await response.json().catch(() => null);
      showRejection(
        response,
        body?.error ?? { code: 'http_error', message: `HTTP ${response.status}` },
      );
      addHistory(user, model, null, null, body?.error?.code ?? `HTTP ${response.status}`);
      return;
    }
    if (!response.body) throw new Error('The response has no body.');
    await readSse(response.body, (message) => onEvent(message.event, message.data));
    if (!seen.done && !seen.error) {
      setState('error', 'Connection ended');
      showNotice(
        'error',
        'The stream ended without a final event.',
        'The server may have restarted.',
      );
    }
  } catch (error) {
    if (controller.signal.aborted) {
      await showStopped(user, key, model);
    } else {
      setState('error', 'Connection lost');
      showNotice('error', 'The connection was lost.', String(error));
    }
  } finally {
    running = null;
    ui.send.disabled = false;
    ui.stop.disabled = true;
    void refreshAccount().finally(() => {
      seen.finished++;
    });
  }
  if (seen.done) addHistory(user, model, seen.done.usage, seen.done, 'completed');
  else if (seen.error) addHistory(user, model, seen.error.usage, seen.error, seen.error.code);
}

/**
 * @param {string} event
 * @param {string} data
 */
function onEvent(event, data) {
  const json = JSON.parse(data);
  switch (event) {
    case 'meta': {
      seen.meta = json;
      ui.result.dataset.requestId = json.requestId;
      ui.summary.textContent = `Reserved up to ${formatNanos(usdToNanos(json.reservedUsd))} of the budget for this answer.`;
      break;
    }
    case 'delta': {
      if (seen.text === '') setState('streaming', 'Streaming…');
      seen.text += json.text;
      ui.output.append(json.text);
      ui.output.scrollTop = ui.output.scrollHeight;
      break;
    }
    case 'usage': {
      showNumbers(json.inputTokens, json.outputTokens, usdToNanos(json.costUsd), true);
      break;
    }
    case 'done': {
      /** @type {DoneEvent} */
      const done = json;
      seen.done = done;
      showNumbers(done.usage.inputTokens, done.usage.outputTokens, done.costNanos, done.estimated);
      setState('done', 'Done');
      const left = done.budget
        ? ` · ${formatNanos(usdToNanos(done.budget.remainingUsd))} left today`
        : '';
      ui.summary.textContent =
        `Finished (${done.stopReason ?? 'end'}): ${formatCount(done.usage.inputTokens)} in + ` +
        `${formatCount(done.usage.outputTokens)} out = ${formatNanos(done.costNanos)} ` +
        `${done.estimated ? '(estimated)' : '(exact, from the provider’s usage)'}${left}.`;
      break;
    }
    case 'error': {
      /** @type {ErrorEvent} */
      const failure = json;
      seen.error = failure;
      ui.result.dataset.errorCode = failure.code;
      showNumbers(
        failure.usage.inputTokens,
        failure.usage.outputTokens,
        failure.costNanos,
        failure.estimated,
      );
      setState('error', failure.code === 'budget_exceeded' ? 'Budget ran out' : 'Failed');
      ui.summary.textContent = `${failure.message} Charged ${formatNanos(failure.costNanos)}${failure.estimated ? ' (estimated)' : ''}.`;
      showNotice(
        failure.code === 'budget_exceeded' ? 'budget' : 'error',
        failure.code === 'budget_exceeded'
          ? 'The budget ran out mid-answer.'
          : 'The answer failed.',
        failure.message,
      );
      break;
    }
    default:
      break; // Unknown events are ignored, as the protocol allows.
  }
}

/**
 * @param {string} user
 * @param {string} key
 * @param {string} model
 */
async function showStopped(user, key, model) {
  const requestId = seen.meta?.requestId;
  if (!requestId) {
    setState('stopped', 'Stopped');
    ui.summary.textContent = 'Stopped before the answer started.';
    return;
  }
  // The server settles the moment it sees the connection close; ask it what it charged.
  const response = await fetch(`/api/requests/${encodeURIComponent(requestId)}`, {
    headers: { authorization: `Bearer ${key}` },
    cache: 'no-store',
  });
  if (!response.ok) {
    setState('stopped', 'Stopped');
    ui.summary.textContent = 'Stopped. The charge is not known yet; see the budget.';
    return;
  }
  /** @type {Settlement} */
  const settlement = await response.json();
  seen.settlement = settlement;
  showNumbers(
    settlement.usage.inputTokens,
    settlement.usage.outputTokens,
    settlement.costNanos,
    settlement.estimated,
  );
  setState('stopped', 'Stopped by you');
  ui.summary.textContent =
    `Stopped: the upstream call was aborted. Charged ${formatNanos(settlement.costNanos)} ` +
    `${settlement.estimated ? `(estimated from the ${formatCount(settlement.usage.outputTokens)} tokens delivered)` : '(exact)'}.`;
  addHistory(user, model, settlement.usage, settlement, 'stopped');
}

/**
 * @param {Response} response
 * @param {ApiError} error
 */
function showRejection(response, error) {
  seen.rejection = { status: response.status, error };
  ui.result.dataset.errorCode = error.code;
  setState('rejected', `Rejected (${response.status})`);
  ui.summary.textContent = 'Nothing was streamed and nothing was charged.';
  if (error.code === 'budget_exceeded') {
    const budget = /** @type {BudgetJson | undefined} */ (error.budget);
    const required = typeof error.requiredUsd === 'number' ? usdToNanos(error.requiredUsd) : null;
    const left = budget ? formatNanos(usdToNanos(budget.remainingUsd)) : 'too little';
    showNotice(
      'budget',
      `Budget exceeded: ${ui.user.value}'s daily budget cannot cover this request.`,
      `${required === null ? 'It' : `Up to ${formatNanos(required)}`} would be reserved for this answer and ${left} is left. ` +
        `The budget resets ${formatUntil(budget?.periodEnd ?? null)}; try a smaller model or fewer max tokens.`,
    );
  } else if (error.code === 'rate_limited') {
    const retry = response.headers.get('retry-after');
    showNotice(
      'rate',
      `Rate limited: ${info.requestsPerMinute} requests per minute per user.`,
      `Try again in ${retry ?? 'a few'} seconds.`,
    );
  } else {
    showNotice('error', `Rejected: ${error.code} (HTTP ${response.status})`, error.message);
  }
}

/**
 * @param {number} input
 * @param {number} output
 * @param {number} costNanos
 * @param {boolean} estimated
 */
function showNumbers(input, output, costNanos, estimated) {
  ui.statInput.textContent = formatCount(input);
  ui.statOutput.textContent = formatCount(output);
  ui.statCost.textContent = formatNanos(costNanos);
  ui.statCostKind.textContent = estimated ? 'estimated' : 'exact';
  ui.statCostKind.className = `tag ${estimated ? 'estimated' : 'exact'}`;
  Object.assign(ui.result.dataset, {
    inputTokens: String(input),
    outputTokens: String(output),
    costNanos: String(costNanos),
    estimated: String(estimated),
  });
}

/**
 * @param {string} state
 * @param {string} label
 */
function setState(state, label) {
  ui.result.dataset.state = state;
  ui.statStatus.textContent = label;
}

function resetResult() {
  Object.assign(seen, {
    meta: null,
    done: null,
    error: null,
    settlement: null,
    rejection: null,
    text: '',
  });
  for (const key of [
    'requestId',
    'errorCode',
    'inputTokens',
    'outputTokens',
    'costNanos',
    'estimated',
  ]) {
    delete ui.result.dataset[key];
  }
  ui.output.textContent = '';
  ui.summary.textContent = '';
  ui.statCost.textContent = '$0.00';
  ui.statCostKind.textContent = '—';
  ui.statCostKind.className = 'tag';
  ui.statInput.textContent = '0';
  ui.statOutput.textContent = '0';
  hideNotice();
}

/**
 * @param {'budget' | 'rate' | 'error'} kind
 * @param {string} title
 * @param {string} detail
 */
function showNotice(kind, title, detail) {
  ui.notice.className = `notice ${kind}`;
  ui.notice.dataset.kind = kind;
  ui.notice.replaceChildren();
  const strong = document.createElement('strong');
  strong.textContent = title;
  ui.notice.append(strong, detail);
  ui.notice.hidden = false;
}

function hideNotice() {
  ui.notice.hidden = true;
  delete ui.notice.dataset.kind;
}

/**
 * @param {string} user
 * @param {string} model
 * @param {Tokens | null} usage
 * @param {{ costNanos: number, estimated: boolean } | null} cost
 * @param {string} outcome
 */
function addHistory(user, model, usage, cost, outcome) {
  const row = document.createElement('tr');
  const cells = [
    new Date().toLocaleTimeString(),
    user,
    model,
    usage ? `${formatCount(usage.inputTokens)} / ${formatCount(usage.outputTokens)}` : '—',
    cost ? `${formatNanos(cost.costNanos)}${cost.estimated ? ' ≈' : ''}` : '$0.00',
    outcome,
  ];
  cells.forEach((text, i) => {
    const cell = document.createElement('td');
    cell.textContent = text;
    if (i === 3 || i === 4) cell.className = 'num';
    row.append(cell);
  });
  ui.history.prepend(row);
}

init().catch((error) => {
  showNotice('error', 'The demo could not start.', String(error));
});
