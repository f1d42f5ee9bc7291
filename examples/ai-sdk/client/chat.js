// @ts-check
/**
 * The page's script, bundled with `ai` by the server (esbuild). It runs what `useChat()`
 * runs, without a framework: `DefaultChatTransport` posts the history to /api/chat and
 * `readUIMessageStream` turns the answer into a growing assistant message. tokenmeter's
 * figures are part of that message: its `data-tokenmeter` part (the running estimate while
 * streaming, then the final cost and the budget left) and its metadata (the reservation,
 * then the same final figures).
 */
import { DefaultChatTransport, readUIMessageStream } from 'ai';

/**
 * What tokenmeter puts in the `data-tokenmeter` part and `metadata.tokenmeter`.
 * @typedef {object} TokenmeterData
 * @property {boolean} [final] Set on the last update.
 * @property {number} [inputTokens] Running update.
 * @property {number} [outputTokens] Running update.
 * @property {{ inputTokens: number, outputTokens: number }} [usage] Final update.
 * @property {number} [costUsd]
 * @property {number} [costNanos] Final update: the settled cost.
 * @property {boolean} [estimated]
 * @property {number} [reservedUsd] The start: what admission reserved.
 * @property {{ remainingUsd: number } | null} [budget]
 * @property {string} [code] Why a cut-short answer stopped (`budget_exceeded`, …).
 * @property {string} [message]
 */
/**
 * @typedef {{ remainingNanos: number, reservedNanos: number }} BudgetState
 */
/**
 * @typedef {import('ai').UIMessage<{ tokenmeter?: TokenmeterData }, { tokenmeter: TokenmeterData }>} Message
 */

/** @param {string} id */
function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing`);
  return element;
}
const form = /** @type {HTMLFormElement} */ ($('form'));
const prompt = /** @type {HTMLTextAreaElement} */ ($('prompt'));
const user = /** @type {HTMLSelectElement} */ ($('user'));
const send = /** @type {HTMLButtonElement} */ ($('send'));
const stop = /** @type {HTMLButtonElement} */ ($('stop'));
const result = $('result');
const answer = $('answer');
const conversation = $('conversation');
const notice = $('notice');
const status = $('status');
const tokens = $('tokens');
const cost = $('cost');
const costKind = $('cost-kind');
const remaining = $('remaining');

const transport = new DefaultChatTransport({
  api: '/api/chat',
  // Your app's session would do this; here the key names the user (and their budget).
  headers: () => ({ authorization: `Bearer ${user.value}` }),
});
/** @type {Message[]} */
let history = [];
/** @type {AbortController | undefined} */
let controller;
/** For tests and the curious: how many requests have ended, and the last message. */
/** @type {{ finished: number, message: Message | undefined }} */
const state = { finished: 0, message: undefined };
Object.assign(globalThis, { tokenmeterChat: state });

form.addEventListener('submit', (event) => {
  event.preventDefault();
  void ask(prompt.value.trim());
});
stop.addEventListener('click', () => controller?.abort());
user.addEventListener('change', () => {
  history = [];
  conversation.replaceChildren();
  answer.textContent = '';
  void showBudget();
});
void showBudget();

/** @param {string} text */
async function ask(text) {
  if (text === '' || controller) return;
  /** @type {Message} */
  const question = { id: crypto.randomUUID(), role: 'user', parts: [{ type: 'text', text }] };
  const messages = [...history, question];
  if (answer.textContent) conversation.append(line('assistant', answer.textContent));
  conversation.append(line('user', text));
  answer.textContent = '';
  notice.textContent = '';
  prompt.value = '';
  cost.textContent = '—';
  costKind.textContent = '';
  tokens.textContent = '—';
  delete cost.dataset.nanos;
  setState('streaming', 'streaming…');
  const aborter = new AbortController();
  controller = aborter;
  /** @type {Message | undefined} */
  let last;
  /** @type {unknown} */
  let streamError;
  try {
    const stream = await transport.sendMessages({
      trigger: 'submit-message',
      chatId: 'page',
      messageId: undefined,
      messages,
      abortSignal: aborter.signal,
    });
    for await (const message of readUIMessageStream({
      stream,
      onError: (error) => {
        streamError = error;
      },
    })) {
      last = /** @type {Message} */ (message);
      render(last);
    }
    if (aborter.signal.aborted) throw new DOMException('Stopped', 'AbortError');
    const final = last && figuresOf(last);
    if (streamError || !final?.final || final.code) {
      // Cut short after it started (a budget cap, a provider error): the text so far stays,
      // with what it cost and why it stopped.
      setState('error', `stopped: ${final?.code ?? 'error'}`);
      notice.textContent = final?.message ?? messageOf(streamError);
    } else {
      setState('done', 'done');
    }
  } catch (error) {
    if (aborter.signal.aborted) {
      // The server saw the connection close, stopped the provider call and charged what
      // was generated; those figures cannot reach this closed stream, so ask for the budget.
      setState('stopped', 'stopped');
      costKind.textContent = '(see budget: charged what was generated)';
      await showBudget({ settled: true });
    } else {
      // Refused before any byte (402 budget, 429 rate limit, 401, 400): the transport
      // throws the JSON answer's text.
      setState('rejected', 'rejected');
      notice.textContent = messageOf(error);
      last = undefined;
    }
  } finally {
    controller = undefined;
    // Like useChat, keep a partial answer in the history; a refused question is dropped.
    if (last) history = [...messages, last];
    state.message = last;
    state.finished += 1;
  }
}

/** @param {Message} message */
function render(message) {
  answer.textContent = message.parts.map((p) => (p.type === 'text' ? p.text : '')).join('');
  const data = figuresOf(message);
  if (!data) return;
  if (data.final) {
    tokens.textContent = `${data.usage?.inputTokens ?? '?'} / ${data.usage?.outputTokens ?? '?'}`;
    const nanos = data.costNanos ?? 0;
    cost.textContent = formatNanos(nanos);
    cost.dataset.nanos = String(nanos);
    costKind.textContent = data.estimated ? '(estimated)' : '(exact)';
    if (data.budget) showRemaining(usdToNanos(data.budget.remainingUsd));
  } else if (data.costUsd !== undefined) {
    tokens.textContent = `${data.inputTokens ?? '?'} / ${data.outputTokens ?? '?'}`;
    cost.textContent = formatNanos(usdToNanos(data.costUsd));
    costKind.textContent = '(running estimate)';
  } else if (data.reservedUsd !== undefined) {
    // The start: only the message metadata is there yet.
    costKind.textContent = `(reserved ${formatNanos(usdToNanos(data.reservedUsd))})`;
  }
}

/**
 * tokenmeter's latest figures: the data part, or the metadata before the first update.
 * @param {Message} message
 */
function figuresOf(message) {
  for (const part of message.parts) if (part.type === 'data-tokenmeter') return part.data;
  return message.metadata?.tokenmeter;
}

/**
 * The budget left, from GET /api/budget. After a Stop the server may still be settling:
 * `settled` waits (briefly) until no reservation is held any more.
 */
async function showBudget({ settled = false } = {}) {
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      const response = await fetch('/api/budget', {
        headers: { authorization: `Bearer ${user.value}` },
      });
      const { budget } = /** @type {{ budget: BudgetState | null }} */ (await response.json());
      if (!budget) return;
      showRemaining(budget.remainingNanos);
      if (!settled || budget.reservedNanos === 0) return;
    } catch {
      return; // Shown with the next answer.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** @param {number} nanos */
function showRemaining(nanos) {
  remaining.textContent = formatNanos(nanos);
  remaining.dataset.nanos = String(nanos);
}

/**
 * @param {string} name
 * @param {string} label
 */
function setState(name, label) {
  result.dataset.state = name;
  status.textContent = label;
  send.disabled = name === 'streaming';
  stop.disabled = name !== 'streaming';
}

/**
 * @param {'user' | 'assistant'} role
 * @param {string} text
 */
function line(role, text) {
  const div = document.createElement('div');
  div.className = role;
  div.textContent = text;
  return div;
}

/** @param {unknown} error */
function messageOf(error) {
  const text = error instanceof Error ? error.message : String(error);
  try {
    const body = /** @type {{ error?: { message?: string } }} */ (JSON.parse(text));
    return body.error?.message ?? text;
  } catch {
    return text;
  }
}

/** @param {number} usd */
function usdToNanos(usd) {
  return Math.round(usd * 1e9);
}

/**
 * As `formatUsd()` of @tokenmeter/core: 2 to 9 decimals, trailing zeros dropped.
 * @param {number} nanos
 */
function formatNanos(nanos) {
  const abs = Math.abs(Math.round(nanos));
  const whole = Math.floor(abs / 1e9).toLocaleString('en-US');
  const frac = String(abs % 1e9)
    .padStart(9, '0')
    .replace(/0+$/, '')
    .padEnd(2, '0');
  return `${nanos < 0 ? '-' : ''}$${whole}.${frac}`;
}
