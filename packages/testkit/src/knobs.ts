// The knobs that shape a fake response, in one table: their defaults, their `x-fake-llm-*`
// request header, their CLI flag and their validation. Server options, CLI flags and request
// headers all go through the same parsers, so a value means the same thing everywhere.

import type { Fault, InputCounting, KnobOptions, Knobs, StreamFault, TextMode } from './types.js';

/** Prefix of the request headers that override knobs per request. */
export const KNOB_HEADER_PREFIX = 'x-fake-llm-';

/** Defaults of the library (fast, for tests). */
export const DEFAULT_KNOBS: Readonly<Knobs> = Object.freeze({
  tokens: 64,
  tps: 0,
  ttftMs: 0,
  chunk: 1,
  seed: 1,
  text: 'mixed',
  inputTokens: undefined,
  inputCounting: 'quarter',
  cacheReadTokens: 0,
  cacheWrite5mTokens: 0,
  cacheWrite1hTokens: 0,
  thinkingTokens: undefined,
  toolTokens: undefined,
  toolTurns: undefined,
  toolName: undefined,
  reasoningTokens: 0,
  searches: undefined,
  searchResultTokens: 1000,
  fault: undefined,
  faultAfter: undefined,
  retryAfterSec: 1,
});

export const STREAM_FAULTS: readonly StreamFault[] = [
  'hang',
  'hang-mid-stream',
  'error-mid-stream',
  'reset-mid-stream',
  'malformed-sse',
  'no-message-delta',
  'unknown-events',
];

/** Faults that fire once `faultAfter` tokens were sent. */
export const MID_STREAM_FAULTS: ReadonlySet<Fault> = new Set<Fault>([
  'hang-mid-stream',
  'error-mid-stream',
  'reset-mid-stream',
  'malformed-sse',
]);

/** A knob value that could not be parsed; the message says what was expected. */
export class KnobError extends Error {
  override name = 'KnobError';
}

type Parser<T> = (value: unknown, name: string) => T;

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '') {
    const trimmed = value.trim();
    if (/^\+?inf(inity)?$/i.test(trimmed)) return Number.POSITIVE_INFINITY;
    return Number(trimmed);
  }
  return Number.NaN;
}

const count: Parser<number> = (value, name) => {
  const n = toNumber(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new KnobError(`${name}: expected a non-negative integer, got ${describe(value)}`);
  }
  return n;
};

const positiveCount: Parser<number> = (value, name) => {
  const n = toNumber(value);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new KnobError(`${name}: expected an integer >= 1, got ${describe(value)}`);
  }
  return n;
};

const optionalCount: Parser<number | undefined> = (value, name) =>
  value === undefined || value === 'auto' ? undefined : count(value, name);

const rate: Parser<number> = (value, name) => {
  const n = toNumber(value);
  if (Number.isNaN(n) || n < 0) {
    throw new KnobError(
      `${name}: expected a non-negative number of tokens per second (0 or Infinity = unthrottled), got ${describe(value)}`,
    );
  }
  return n;
};

const millis: Parser<number> = (value, name) => {
  const n = toNumber(value);
  if (!Number.isFinite(n) || n < 0) {
    throw new KnobError(
      `${name}: expected a non-negative number of milliseconds, got ${describe(value)}`,
    );
  }
  return n;
};

const seconds: Parser<number> = (value, name) => {
  const n = toNumber(value);
  if (!Number.isFinite(n) || n < 0) {
    throw new KnobError(
      `${name}: expected a non-negative number of seconds, got ${describe(value)}`,
    );
  }
  return n;
};

const seed: Parser<number> = (value, name) => {
  const n = toNumber(value);
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) {
    throw new KnobError(
      `${name}: expected an integer from 0 to 4294967295, got ${describe(value)}`,
    );
  }
  return n;
};

/** Every text mode, in the order the docs list them. */
export const TEXT_MODES: readonly TextMode[] = [
  'mixed',
  'plain',
  'emoji',
  'vietnamese',
  'cjk',
  'base64',
  'repeat',
];

const textMode: Parser<TextMode> = (value, name) => {
  if (typeof value === 'string' && (TEXT_MODES as readonly string[]).includes(value)) {
    return value as TextMode;
  }
  throw new KnobError(
    `${name}: expected one of ${TEXT_MODES.map((mode) => `"${mode}"`).join(', ')}; got ${describe(value)}`,
  );
};

const inputCounting: Parser<InputCounting> = (value, name) => {
  if (value === 'quarter' || value === 'bytes') return value;
  throw new KnobError(`${name}: expected "quarter" or "bytes", got ${describe(value)}`);
};

const toolName: Parser<string | undefined> = (value, name) => {
  if (value === undefined || value === '' || value === 'auto') return undefined;
  if (typeof value === 'string' && value.length <= 256) return value;
  throw new KnobError(`${name}: expected a tool name, got ${describe(value)}`);
};

const fault: Parser<Fault | undefined> = (value, name) => {
  if (value === undefined || value === 'none' || value === '') return undefined;
  if (typeof value === 'string' && (STREAM_FAULTS as readonly string[]).includes(value)) {
    return value as StreamFault;
  }
  const status = toNumber(value);
  if (Number.isInteger(status) && status >= 400 && status <= 599) return status;
  throw new KnobError(
    `${name}: expected an HTTP status 400-599, "none" or one of ${STREAM_FAULTS.join(', ')}; got ${describe(value)}`,
  );
};

/** How one knob is set from each source, and what it means (used by the CLI help). */
export interface KnobSpec<K extends keyof Knobs = keyof Knobs> {
  key: K;
  /** Request header overriding it for one request. */
  header: string;
  /** CLI flag (without `--`). */
  flag: string;
  parse: Parser<Knobs[K]>;
  doc: string;
}

function spec<K extends keyof Knobs>(
  key: K,
  name: string,
  parse: Parser<Knobs[K]>,
  doc: string,
): KnobSpec<K> {
  return { key, header: KNOB_HEADER_PREFIX + name, flag: name, parse, doc };
}

/** Every knob, in the order the docs list them. */
export const KNOB_SPECS: readonly KnobSpec[] = [
  spec('tokens', 'tokens', count, 'tokens of text in the answer (default 64)'),
  spec('tps', 'tps', rate, 'tokens per second; 0 or Infinity = as fast as possible (default 0)'),
  spec('ttftMs', 'ttft-ms', millis, 'ms before the first content token (default 0)'),
  spec('chunk', 'chunk', positiveCount, 'tokens per delta event (default 1)'),
  spec('seed', 'seed', seed, 'seed of the generated text (default 1)'),
  spec(
    'text',
    'text',
    textMode,
    `text shape: ${TEXT_MODES.join(' | ')} (default mixed; mixed is adversarial)`,
  ),
  spec(
    'inputTokens',
    'input-tokens',
    optionalCount,
    'input tokens to report (default: computed from the request text)',
  ),
  spec(
    'inputCounting',
    'input-counting',
    inputCounting,
    'input tokens per text: quarter (a token per 4 UTF-8 bytes) | bytes (a token per byte, the worst case) (default quarter)',
  ),
  spec('cacheReadTokens', 'cache-read', count, 'reported cache-read input tokens (default 0)'),
  spec(
    'cacheWrite5mTokens',
    'cache-write-5m',
    count,
    'reported 5 min cache-write tokens (default 0)',
  ),
  spec(
    'cacheWrite1hTokens',
    'cache-write-1h',
    count,
    'reported 1 h cache-write tokens (default 0)',
  ),
  spec(
    'thinkingTokens',
    'thinking-tokens',
    optionalCount,
    'tokens of an Anthropic thinking block (default 16 if the request enables thinking, else 0)',
  ),
  spec(
    'toolTokens',
    'tool-tokens',
    optionalCount,
    'tokens of a tool call input, at least a valid instance of its schema (default 12 if the request forces a tool, else 0)',
  ),
  spec(
    'toolTurns',
    'tool-turns',
    optionalCount,
    'agent tool loop: call a tool while the conversation has fewer tool results than this, then answer text (default: no loop)',
  ),
  spec(
    'toolName',
    'tool-name',
    toolName,
    'the tool to call (default: the one tool_choice names, else the first function tool offered)',
  ),
  spec(
    'reasoningTokens',
    'reasoning-tokens',
    count,
    'OpenAI reasoning tokens: hidden, or a Responses reasoning summary (default 0)',
  ),
  spec(
    'searches',
    'searches',
    optionalCount,
    'Anthropic web searches (default 1 if the request has a web_search tool, else 0; capped at max_uses)',
  ),
  spec(
    'searchResultTokens',
    'search-result-tokens',
    count,
    'input tokens each web search result adds (default 1000)',
  ),
  spec('fault', 'fault', fault, `fault: an HTTP status or ${STREAM_FAULTS.join(' | ')}`),
  spec(
    'faultAfter',
    'fault-after',
    optionalCount,
    'tokens sent before a mid-stream fault (default half the answer)',
  ),
  spec('retryAfterSec', 'retry-after', seconds, 'retry-after seconds on 429 answers (default 1)'),
];

function setKnob<K extends keyof Knobs>(
  target: Knobs,
  knob: KnobSpec<K>,
  value: unknown,
  name: string,
) {
  target[knob.key] = knob.parse(value, name);
}

/**
 * Merges user options over `base`, validating each value. Throws a `KnobError` naming the
 * option when a value is out of range, so a misconfigured fake fails at creation.
 */
export function mergeKnobs(base: Readonly<Knobs>, options: KnobOptions): Knobs {
  const merged: Knobs = { ...base };
  const given = options as Record<string, unknown>;
  for (const knob of KNOB_SPECS) {
    if (!(knob.key in given)) continue;
    const value = given[knob.key];
    // An explicit undefined resets the optional knobs (and a fault) to their default.
    if (value === undefined) {
      merged[knob.key] = DEFAULT_KNOBS[knob.key] as never;
      continue;
    }
    setKnob(merged, knob, value, knob.key);
  }
  return merged;
}

/**
 * The knobs for one request: `base` overridden by its `x-fake-llm-*` headers. Throws a
 * `KnobError` naming the header when one cannot be parsed.
 */
export function knobsFromHeaders(
  base: Readonly<Knobs>,
  headers: Readonly<Record<string, string | string[] | undefined>>,
): Knobs {
  let merged: Knobs | undefined;
  for (const knob of KNOB_SPECS) {
    const raw = headers[knob.header];
    if (raw === undefined) continue;
    merged ??= { ...base };
    const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
    setKnob(merged, knob, value, knob.header);
  }
  return merged ?? { ...base };
}

/** Builds knob options from CLI flag values (`{ 'ttft-ms': '200' }`); throws `KnobError`. */
export function knobsFromFlags(values: Readonly<Record<string, unknown>>): KnobOptions {
  const options: Record<string, unknown> = {};
  for (const knob of KNOB_SPECS) {
    const raw = values[knob.flag];
    if (raw === undefined) continue;
    options[knob.key] = knob.parse(raw, `--${knob.flag}`);
  }
  return options as KnobOptions;
}
