// The live record of one request. The generator updates counters as it goes; tests read
// the same object through the read-only `RequestRecord` type. Text is not stored: it is
// recomputed from the seed and the tokens sent, so 1,000 streams cost no string memory.

import { seededText, seededThinking } from './text-generator.js';
import { seededToolInput } from './tool-arguments.js';
import type {
  BlockRecord,
  Knobs,
  Provider,
  ReportedUsage,
  RequestRecord,
  StopCause,
} from './types.js';

export class MutableRequestRecord implements RequestRecord {
  readonly id: string;
  readonly seq: number;
  readonly provider: Provider;
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly receivedAt: number;
  body: unknown = undefined;
  model: string | undefined = undefined;
  stream = false;
  maxTokens: number | undefined = undefined;
  knobs: Knobs | undefined = undefined;
  status = 0;
  error: { status: number; type: string; message: string } | undefined = undefined;
  inputTokens = 0;
  blocks: BlockRecord[] = [];
  tokensPlanned = 0;
  tokensGenerated = 0;
  tokensSent = 0;
  reasoningTokens = 0;
  searches = 0;
  usage: ReportedUsage | undefined = undefined;
  stopReason: string | undefined = undefined;
  firstTokenAt: number | undefined = undefined;
  clientClosedAt: number | undefined = undefined;
  tokensSentAtClientClose: number | undefined = undefined;
  generationStoppedAt: number | undefined = undefined;
  stopCause: StopCause | undefined = undefined;
  endedAt: number | undefined = undefined;
  finishedNormally = false;
  writes = 0;
  writesBlocked = 0;
  blockedMs = 0;
  maxBufferedBytes = 0;
  /** The planned tool call, to recompute its input: the tool's schema and the input's size. */
  toolCall: { schema: unknown; inputTokens: number } | undefined = undefined;

  constructor(init: {
    id: string;
    seq: number;
    provider: Provider;
    method: string;
    path: string;
    headers: Readonly<Record<string, string | string[] | undefined>>;
    receivedAt: number;
  }) {
    this.id = init.id;
    this.seq = init.seq;
    this.provider = init.provider;
    this.method = init.method;
    this.path = init.path;
    this.headers = init.headers;
    this.receivedAt = init.receivedAt;
  }

  #sentOf(kind: BlockRecord['kind']): BlockRecord | undefined {
    return this.blocks.find((block) => block.kind === kind);
  }

  get text(): string {
    const block = this.#sentOf('text');
    if (!block || !this.knobs) return '';
    return seededText({ seed: this.knobs.seed, tokens: block.tokensSent, text: this.knobs.text });
  }

  get thinking(): string {
    const block = this.#sentOf('thinking');
    if (!block || !this.knobs) return '';
    return seededThinking(this.knobs.seed, block.tokensSent);
  }

  get toolInput(): string {
    const block = this.#sentOf('tool_use');
    if (!block || !this.knobs) return '';
    const call = this.toolCall ?? { schema: undefined, inputTokens: block.tokens };
    return seededToolInput(this.knobs.seed, call.inputTokens, block.tokensSent, call.schema);
  }

  /** Marks generation stopped, once; later causes do not overwrite the first. */
  stopGeneration(cause: StopCause, at: number): void {
    if (this.stopCause !== undefined) return;
    this.stopCause = cause;
    this.generationStoppedAt = at;
  }
}
