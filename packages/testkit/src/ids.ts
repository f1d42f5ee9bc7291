// Ids in each provider's format (`req_…`, `msg_…`, `toolu_…`, `srvtoolu_…`, `chatcmpl-…`,
// `call_…`, and the Responses API's `resp_…`, `rs_…`, `fc_…`).
// They are predictable — server number plus arrival order — so two fakes in one process
// never collide and a failing test names the same request on every run.

let servers = 0;

/** A per-server id factory. */
export class IdFactory {
  readonly #prefix: string;

  constructor() {
    servers += 1;
    this.#prefix = `fake${servers.toString(36).padStart(2, '0')}`;
  }

  /** The stem shared by all ids of one request. */
  stem(seq: number): string {
    return this.#prefix + seq.toString(36).padStart(10, '0');
  }
}

export function requestId(stem: string): string {
  return `req_${stem}`;
}

export function anthropicMessageId(stem: string): string {
  return `msg_${stem}`;
}

export function anthropicToolUseId(stem: string): string {
  return `toolu_${stem}`;
}

/** The id of web search `search` (0-based) of a request: `srvtoolu_<stem><2 base-36 digits>`. */
export function anthropicServerToolUseId(stem: string, search: number): string {
  return `srvtoolu_${stem}${search.toString(36).padStart(2, '0')}`;
}

export function openaiCompletionId(stem: string): string {
  return `chatcmpl-${stem}`;
}

export function openaiToolCallId(stem: string): string {
  return `call_${stem}`;
}

export function responseId(stem: string): string {
  return `resp_${stem}`;
}

/** The id of an output item of a Response: `msg_…`, `rs_…` (reasoning) or `fc_…` (function call). */
export function responseItemId(prefix: 'msg' | 'rs' | 'fc', stem: string): string {
  return `${prefix}_${stem}`;
}
