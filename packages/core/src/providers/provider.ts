/**
 * What tokenmeter needs of a provider's API to meter it: recognise its stream, translate
 * each chunk into normalised events (text, usage, stop, errors), and read a whole answer.
 * One adapter per API, one line in the registry (`providers/index.ts`).
 */
import type { MeterEvent } from '../meter-event.js';

export interface ProviderAdapter {
  /** The provider's name, as the pricing catalog has it (`'anthropic'`, `'openai'`). */
  readonly name: string;
  /** True when a stream's first chunk is this API's. */
  detect(chunk: object): boolean;
  /** A translator for one stream (it may keep state from chunk to chunk). */
  translator(): (chunk: object) => MeterEvent[];
  /** A whole (non-streamed) answer's events; undefined when the body is not this API's. */
  response?(body: object): MeterEvent[] | undefined;
}
