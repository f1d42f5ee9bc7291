/**
 * A stream's chunks → the small set of normalised `MeterEvent`s that the meter, the
 * middleware and telemetry understand. The first chunk picks the translation: a provider
 * API's (the registry in `providers/`), the AI SDK's parts, LangChain.js chunks, or events
 * already normalised; later chunks it does not know map to nothing. A first chunk of no
 * known format is an error.
 */
import { TokenmeterError } from './errors.js';
import type { MeterEvent } from './meter-event.js';
import { providerAdapters } from './providers/registry.js';
import {
  createAiSdkTranslator,
  createLangChainTranslator,
  isAiSdkPartType,
  isLangChainChunk,
} from './sources.js';

export type { MeterEvent, MeterEventType } from './meter-event.js';

/**
 * A stateful translator for one stream, whose format is recognised from its first chunk:
 * Anthropic events (`message_start`, …), OpenAI chunks (`object: "chat.completion.chunk"`),
 * OpenAI Responses events (`response.created`, …),
 * any registered provider's, AI SDK `fullStream` parts (`text-delta`, `finish-step`, …),
 * LangChain.js `AIMessageChunk`s, or events already normalised.
 *
 * @example
 * const translate = createEventTranslator();
 * for await (const raw of client.messages.create({ ...params, stream: true }, { signal })) {
 *   for (const event of translate(raw)) meter.observe(event);
 * }
 */
export function createEventTranslator(): (raw: unknown) => MeterEvent[] {
  let translate: ((chunk: object) => MeterEvent[]) | undefined;
  return (raw) => {
    if (typeof raw !== 'object' || raw === null) {
      if (!translate) throw unrecognized(raw);
      return [];
    }
    if (!translate) {
      // The AI SDK's own `{ type: 'start' }` (no provider) says nothing ran yet: the next
      // chunk decides.
      if (isBareStart(raw)) return [];
      translate = translatorFor(raw);
    }
    return translate(raw);
  };
}

/** The translation a stream's first chunk asks for; throws when none recognises it. */
function translatorFor(first: object): (chunk: object) => MeterEvent[] {
  const type = (first as { type?: unknown }).type;
  // The AI SDK's own parts and LangChain's chunks first: they wrap a provider's stream.
  if (typeof type === 'string' && isAiSdkPartType(type)) return createAiSdkTranslator();
  if (isLangChainChunk(first)) return createLangChainTranslator();
  for (const provider of providerAdapters()) {
    if (provider.detect(first)) return provider.translator();
  }
  if (isNormalised(first)) return normalised;
  throw unrecognized(first);
}

/** Events already normalised pass through (a start without a provider is no event). */
function normalised(chunk: object): MeterEvent[] {
  return isNormalised(chunk) && !isBareStart(chunk) ? [chunk as MeterEvent] : [];
}

function isBareStart(chunk: object): boolean {
  const c = chunk as { type?: unknown; provider?: unknown };
  return c.type === 'start' && typeof c.provider !== 'string';
}

function isNormalised(chunk: object): boolean {
  const type = (chunk as { type?: unknown }).type;
  return (
    typeof type === 'string' && (NORMALISED.has(type) || (type === 'error' && 'errorType' in chunk))
  );
}

/**
 * A first chunk no format matches: metering it as nothing would bill an answer the
 * provider charged for as if it were empty, so the stream fails instead.
 */
function unrecognized(raw: unknown): TokenmeterError {
  const shape =
    typeof raw === 'object' && raw !== null
      ? `an object with keys ${Object.keys(raw).slice(0, 6).join(', ') || '(none)'}`
      : typeof raw;
  return new TokenmeterError(
    'unrecognized_stream',
    `The stream's first chunk is ${shape}: not an Anthropic Messages event, an OpenAI Chat Completions chunk or Responses event, an AI SDK part, a LangChain.js chunk or a normalised MeterEvent, so it cannot be metered. Hand over the provider's raw stream (see "Which stream to hand over").`,
  );
}

/**
 * A complete (non-streamed) answer as the events its stream would have given, by the
 * provider API whose answer it is (an Anthropic Message, an OpenAI chat completion, …).
 * Anything else gives no events.
 *
 * @example
 * for (const event of responseEvents(await response.json())) meter.observe(event);
 */
export function responseEvents(body: unknown): MeterEvent[] {
  if (typeof body !== 'object' || body === null) return [];
  for (const provider of providerAdapters()) {
    const events = provider.response?.(body);
    if (events) return events;
  }
  return [];
}

const NORMALISED = new Set<string>([
  'start',
  'text',
  'thinking',
  'tool_input',
  'tool_call',
  'request',
  'server_tool',
  'unseen_output',
  'usage',
  'stop',
]);
