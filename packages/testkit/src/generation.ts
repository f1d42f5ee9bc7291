// Generates one answer on a single timer chain: one chunk per tick, paced by `tps`, paused
// while the socket is not draining, stopped the moment the client leaves. Counters on the
// request record say exactly what was generated and what was written, so tests can check
// the two never drift apart (a real provider bills what it generates).

import type { ServerResponse } from 'node:http';
import { MID_STREAM_FAULTS } from './knobs.js';
import { isPerformedSearch, type OutputPlan, searchNumbers } from './plan.js';
import type { ProviderProtocol, ResponseContext, StreamEncoder } from './protocol.js';
import type { MutableRequestRecord } from './record.js';
import { SSE_CONTENT_TYPE } from './sse.js';
import {
  type PieceSource,
  searchQueryGenerator,
  TextGenerator,
  thinkingGenerator,
} from './text-generator.js';
import { toolInputSource } from './tool-arguments.js';
import type { Fault, Knobs, StopCause } from './types.js';

/** How far (ms) a throttled stream may fall behind schedule before it stops catching up. */
const MAX_CATCH_UP_MS = 100;

/** What the job needs from the server around it. */
export interface JobHooks {
  isServerClosing(): boolean;
  onClientClose(record: MutableRequestRecord): void;
  onEnd(record: MutableRequestRecord): void;
}

export interface JobInit {
  res: ServerResponse;
  record: MutableRequestRecord;
  protocol: ProviderProtocol;
  ctx: ResponseContext;
  knobs: Readonly<Knobs>;
  stream: boolean;
  hooks: JobHooks;
}

export class GenerationJob {
  readonly #res: ServerResponse;
  readonly #record: MutableRequestRecord;
  readonly #protocol: ProviderProtocol;
  readonly #ctx: ResponseContext;
  readonly #plan: OutputPlan;
  readonly #knobs: Readonly<Knobs>;
  readonly #hooks: JobHooks;
  /** Streaming writes events as it goes; otherwise texts collect for one JSON body. */
  readonly #encoder: StreamEncoder | undefined;
  readonly #texts: string[];
  /** Web search number of each block (-1 for other kinds). */
  readonly #searchNumbers: number[];
  /** A fault that fires once `#faultAfter` tokens were produced. */
  readonly #midFault: Fault | undefined;
  readonly #faultAfter: number;
  /** 0 when unthrottled. */
  readonly #msPerToken: number;

  #blockIndex = 0;
  #blockLeft: number;
  #source: PieceSource | undefined;
  #nextAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #waitingDrain = false;
  #blockedSince = 0;
  #stopped = false;
  /** The full response, final usage included, was handed to the socket. */
  #completed = false;
  /** The fake closed the socket itself (reset fault), so a close is not the client's. */
  #resetByFault = false;
  #unknownSeq = 0;

  constructor(init: JobInit) {
    this.#res = init.res;
    this.#record = init.record;
    this.#protocol = init.protocol;
    this.#ctx = init.ctx;
    this.#plan = init.ctx.plan;
    this.#knobs = init.knobs;
    this.#hooks = init.hooks;
    this.#encoder = init.stream ? init.protocol.streamEncoder(init.ctx) : undefined;
    this.#texts = this.#plan.blocks.map(() => '');
    this.#searchNumbers = searchNumbers(this.#plan);
    const fault = init.knobs.fault;
    this.#midFault = fault !== undefined && MID_STREAM_FAULTS.has(fault) ? fault : undefined;
    this.#faultAfter = init.knobs.faultAfter ?? Math.floor(this.#plan.totalTokens / 2);
    const tps = init.knobs.tps;
    this.#msPerToken = tps > 0 && Number.isFinite(tps) ? 1000 / tps : 0;
    this.#blockLeft = this.#plan.blocks[0]?.tokens ?? 0;
    this.#source = this.#sourceFor(0);
  }

  /** Sends the headers (when streaming) and starts the timer chain. */
  start(): void {
    const res = this.#res;
    res.on('close', this.#onClose);
    res.on('finish', this.#onFinish);
    res.on('drain', this.#onDrain);
    this.#nextAt = performance.now() + this.#knobs.ttftMs;

    if (this.#knobs.fault === 'hang') {
      res.writeHead(200, this.#headers(this.#encoder ? SSE_CONTENT_TYPE : 'application/json'));
      res.flushHeaders();
      this.#record.status = 200;
      this.#stop('fault');
      return;
    }
    if (this.#encoder) {
      res.writeHead(200, { ...this.#headers(SSE_CONTENT_TYPE), 'cache-control': 'no-cache' });
      this.#record.status = 200;
      const open = this.#encoder.open();
      if (this.#midFault !== undefined && this.#faultAfter <= 0) {
        this.#fault(open);
        return;
      }
      if (!this.#write(open)) {
        this.#waitForDrain();
        return;
      }
    }
    this.#schedule();
  }

  #headers(contentType: string): Record<string, string> {
    return { 'content-type': contentType, ...this.#protocol.baseHeaders(this.#ctx.requestId) };
  }

  #sourceFor(index: number): PieceSource | undefined {
    const block = this.#plan.blocks[index];
    if (!block) return undefined;
    const seed = this.#knobs.seed;
    if (block.kind === 'thinking') return thinkingGenerator(seed);
    // A query cut by max_tokens is a prefix of the full 8-token query, as a real cut one is.
    if (block.kind === 'web_search') return searchQueryGenerator(seed, this.#searchNumbers[index]!);
    // A tool input cut by max_tokens is a prefix of the whole input, as a real cut one is.
    if (block.kind === 'tool_use') {
      return toolInputSource(seed, block.toolSchema, block.inputTokens ?? block.tokens);
    }
    return new TextGenerator(seed, this.#knobs.text);
  }

  #schedule(): void {
    const now = performance.now();
    const delay = this.#nextAt - now;
    if (delay > 0) {
      this.#timer = setTimeout(this.#step, delay);
      return;
    }
    // After a long pause (backpressure, a busy loop) resume the pace from now rather than
    // bursting everything that "should" have been sent meanwhile.
    if (delay < -MAX_CATCH_UP_MS) this.#nextAt = now;
    // setImmediate, not a loop: many streams interleave and the socket can signal 'drain'.
    this.#immediate = setImmediate(this.#step);
  }

  readonly #step = (): void => {
    this.#timer = undefined;
    this.#immediate = undefined;
    if (this.#stopped) return;
    if (this.#encoder) {
      if (this.#advance()) this.#schedule();
      return;
    }
    // Nothing is written until the end without streaming, so unthrottled it runs in one go.
    if (this.#msPerToken === 0) {
      while (this.#advance()) {}
    } else if (this.#advance()) {
      this.#schedule();
    }
  };

  /** Produces one chunk. Returns true when the chain should go on. */
  #advance(): boolean {
    const record = this.#record;
    const encoder = this.#encoder;
    let out = '';
    while (this.#blockLeft === 0) {
      if (encoder) out += encoder.blockStop(this.#blockIndex);
      const ended = this.#plan.blocks[this.#blockIndex];
      // A complete query is searched now; its result block goes out with the block's end.
      if (ended && isPerformedSearch(ended)) record.searches += 1;
      this.#blockIndex += 1;
      const block = this.#plan.blocks[this.#blockIndex];
      if (!block) {
        this.#finish(out);
        return false;
      }
      if (encoder) out += encoder.blockStart(this.#blockIndex);
      this.#blockLeft = block.tokens;
      this.#source = this.#sourceFor(this.#blockIndex);
    }

    let n = Math.min(this.#knobs.chunk, this.#blockLeft);
    if (this.#midFault !== undefined) n = Math.min(n, this.#faultAfter - record.tokensGenerated);
    const text = this.#source!.take(n);
    record.tokensGenerated += n;
    this.#blockLeft -= n;
    this.#nextAt += n * this.#msPerToken;

    if (!encoder) {
      this.#texts[this.#blockIndex] += text;
      if (this.#midFault !== undefined && record.tokensGenerated >= this.#faultAfter) {
        this.#fault('');
        return false;
      }
      return true;
    }

    out += encoder.delta(this.#blockIndex, text);
    if (this.#knobs.fault === 'unknown-events') out += encoder.unknown(this.#unknownSeq++);
    record.tokensSent += n;
    record.blocks[this.#blockIndex]!.tokensSent += n;
    record.firstTokenAt ??= performance.now();
    if (this.#midFault !== undefined && record.tokensGenerated >= this.#faultAfter) {
      this.#fault(out);
      return false;
    }
    if (!this.#write(out)) {
      this.#waitForDrain();
      return false;
    }
    return true;
  }

  #write(out: string): boolean {
    const record = this.#record;
    const ok = this.#res.write(out);
    record.writes += 1;
    const buffered = this.#res.writableLength;
    if (buffered > record.maxBufferedBytes) record.maxBufferedBytes = buffered;
    if (!ok) record.writesBlocked += 1;
    return ok;
  }

  #waitForDrain(): void {
    this.#waitingDrain = true;
    this.#blockedSince = performance.now();
  }

  #finish(out: string): void {
    const record = this.#record;
    const encoder = this.#encoder;
    if (this.#midFault !== undefined) {
      // faultAfter was at or past the end: the fault replaces the normal ending.
      this.#fault(out);
      return;
    }
    if (encoder && this.#knobs.fault === 'no-message-delta') {
      this.#res.end(out);
      this.#stop('fault');
      return;
    }
    const cause: StopCause = this.#plan.truncated ? 'max_tokens' : 'completed';
    record.usage = this.#protocol.usage(this.#ctx, record.tokensGenerated);
    record.stopReason = this.#protocol.stopReason(this.#plan);
    this.#completed = true;
    if (encoder) {
      this.#res.end(out + encoder.finish(record.tokensSent));
      this.#stop(cause);
      return;
    }
    const body = this.#protocol.completeBody(this.#ctx, this.#texts, record.tokensGenerated);
    record.tokensSent = record.tokensGenerated;
    for (const block of record.blocks) block.tokensSent = block.tokens;
    record.firstTokenAt = performance.now();
    this.#res.writeHead(200, {
      ...this.#headers('application/json'),
      'content-length': String(Buffer.byteLength(body)),
    });
    record.status = 200;
    this.#res.end(body);
    this.#stop(cause);
  }

  /** Fires the mid-stream fault; `out` is output not yet written (it goes out first). */
  #fault(out: string): void {
    const res = this.#res;
    const encoder = this.#encoder;
    this.#stop('fault');
    switch (this.#midFault) {
      case 'hang-mid-stream':
        if (out) this.#write(out);
        return;
      case 'reset-mid-stream': {
        this.#resetByFault = true;
        const socket = res.socket;
        const destroy = () => socket?.destroy();
        // Destroy only once the tokens are flushed, so the client really received them.
        if (out) res.write(out, destroy);
        else destroy();
        return;
      }
      case 'malformed-sse':
        if (encoder) {
          res.end(out + encoder.malformed(this.#blockIndex));
          return;
        }
        this.#sendTruncatedBody();
        return;
      case 'error-mid-stream':
        if (encoder) {
          res.end(out + encoder.error());
          return;
        }
        this.#sendMidStreamError();
        return;
    }
  }

  #sendTruncatedBody(): void {
    const body = this.#protocol.completeBody(this.#ctx, this.#texts, this.#record.tokensGenerated);
    const cut = body.slice(0, Math.max(1, Math.floor(body.length / 2)));
    this.#res.writeHead(200, this.#headers('application/json'));
    this.#record.status = 200;
    this.#res.end(cut);
  }

  #sendMidStreamError(): void {
    const protocol = this.#protocol;
    const error = protocol.statusError(protocol.midStreamErrorStatus, this.#ctx.model);
    const body = protocol.errorBody(error, this.#ctx.requestId);
    this.#record.error = { status: error.status, type: error.type, message: error.message };
    this.#res.writeHead(error.status, {
      ...this.#headers('application/json'),
      'content-length': String(Buffer.byteLength(body)),
    });
    this.#record.status = error.status;
    this.#res.end(body);
  }

  #stop(cause: StopCause): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
    this.#record.stopGeneration(cause, performance.now());
  }

  /** Stops generating because the server is shutting down. */
  abortForShutdown(): void {
    this.#stop('server-closed');
  }

  readonly #onDrain = (): void => {
    if (!this.#waitingDrain) return;
    this.#waitingDrain = false;
    this.#record.blockedMs += performance.now() - this.#blockedSince;
    if (!this.#stopped) this.#schedule();
  };

  readonly #onFinish = (): void => {
    if (this.#completed) this.#record.finishedNormally = true;
  };

  readonly #onClose = (): void => {
    const record = this.#record;
    const now = performance.now();
    if (this.#waitingDrain) {
      this.#waitingDrain = false;
      record.blockedMs += now - this.#blockedSince;
    }
    record.endedAt = now;
    if (!this.#res.writableFinished) {
      if (this.#hooks.isServerClosing()) {
        this.#stop('server-closed');
      } else if (!this.#resetByFault) {
        record.clientClosedAt = now;
        record.tokensSentAtClientClose = record.tokensSent;
        this.#stop('client-closed');
        this.#hooks.onClientClose(record);
      }
    }
    this.#hooks.onEnd(record);
  };
}
