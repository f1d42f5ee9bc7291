// Public API of @tokenmeter/testkit: the fake Anthropic / OpenAI server, its knobs, and the
// helpers that recompute what it sends.

export { countInputTokens } from './input-tokens.js';
export {
  DEFAULT_KNOBS,
  KNOB_HEADER_PREFIX,
  KNOB_SPECS,
  KnobError,
  type KnobSpec,
  STREAM_FAULTS,
  TEXT_MODES,
} from './knobs.js';
export { CLI_DEFAULTS, type CliHandle, type CliIO, parseCliArgs, runCli } from './run-cli.js';
export { FakeLLM, startFakeLLM, type WaitOptions } from './server.js';
export {
  SEARCH_QUERY_TOKENS,
  type SeededTextOptions,
  seededSearchQuery,
  seededText,
  seededThinking,
  seededTokens,
  TextGenerator,
} from './text-generator.js';
export { seededToolInput } from './tool-arguments.js';
export type {
  BlockRecord,
  FakeLLMEvents,
  FakeLLMOptions,
  FakeLLMTotals,
  Fault,
  KnobOptions,
  Knobs,
  Provider,
  ReportedUsage,
  RequestRecord,
  StopCause,
  StreamFault,
  TextMode,
} from './types.js';
