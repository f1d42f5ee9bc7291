/**
 * The pump: reads one provider stream to its end, each chunk through the wire protocol's
 * writer, pausing while the client's side is full (the provider is not read until the
 * client has caught up), and checking the lease after each chunk. It decides nothing about
 * the end: it tells its stream what happened (completed, the provider failed, a limit
 * stopped it) and the stream ends once.
 */
import type { StreamOutcome } from '@tokenmeter/core';
import type { Admission } from './admission-result.js';
import { failureOfLoop, failureOfSource } from './failures.js';
import type { Config } from './options.js';
import type { ChunkWriter, WriterParts } from './protocols.js';
import type { StreamLimit } from './types.js';
import { toAsyncIterable, type UpstreamFailure } from './upstream-errors.js';

/** What the pump needs of its stream. */
export interface PumpOwner {
  readonly requestId: string;
  /** True once the stream began to end (from anywhere): the pump stops at the next step. */
  readonly ended: boolean;
  /** Why the stream aborted the upstream, when it did. */
  readonly abortReason: StreamOutcome | undefined;
  /** The route read `meter.signal`: an error before the first event may be the provider's. */
  readonly signalTouched: boolean;
  /** A limit stopped the stream (the lease could not grow, the cap was reached). */
  stopFor(limit: StreamLimit, outcome: StreamOutcome): void;
  /** The source is read (or failed): end the stream, completed or with the failure. */
  readDone(failure: UpstreamFailure | undefined): Promise<unknown>;
}

export class Pump {
  /** Provider chunks read so far (the watchdog compares it between ticks). */
  chunks = 0;
  /** True while a source is being read. */
  reading = false;
  /** The provider stream being read, to close when the stream ends from elsewhere. */
  private iterator: AsyncIterator<unknown> | undefined;

  constructor(
    private readonly owner: PumpOwner,
    private readonly config: Config,
    private readonly admission: Admission,
    private readonly parts: WriterParts,
    private readonly signal: AbortSignal,
  ) {}

  /** Reads the source to its end, then tells the owner. Never rejects. */
  async run(source: unknown): Promise<void> {
    this.reading = true;
    this.parts.watchdog.readingFrom(performance.now());
    let iterator: AsyncIterator<unknown>;
    try {
      const resolved = await source;
      // The SDK's request promise holds the HTTP response's headers: not needed any more.
      source = undefined;
      iterator = toAsyncIterable(resolved)[Symbol.asyncIterator]();
      this.iterator = iterator;
      if (!this.owner.ended) {
        this.config.protocol.wire.sourceOpened?.(this.parts.transport, resolved, this.admission);
      }
    } catch (error) {
      this.reading = false;
      await this.owner.readDone(this.classify(error));
      return;
    }
    await this.owner.readDone(await this.read(iterator));
  }

  /**
   * The loop: each chunk through the protocol's writer (false: the client must read
   * first), then the lease, then a usage event when one is due. Returns the failure that
   * ended it, if any.
   */
  private async read(iterator: AsyncIterator<unknown>): Promise<UpstreamFailure | undefined> {
    const { parts, owner } = this;
    const writer: ChunkWriter = this.config.protocol.wire.writer(parts);
    try {
      while (!owner.ended) {
        // The provider's failures come from next(); anything thrown below is ours.
        let next: IteratorResult<unknown>;
        try {
          next = await iterator.next();
        } catch (error) {
          return owner.abortReason || owner.ended ? undefined : this.classify(error);
        }
        if (next.done) {
          // Read to its end: nothing to close (return() would only do the source's work twice).
          this.iterator = undefined;
          return undefined;
        }
        if (owner.ended) return undefined;
        this.chunks++;
        if (!writer.write(next.value)) await parts.transport.ready();
        if (this.signal.aborted || owner.ended) return undefined;
        // Provider calls the admission did not see, and a lease the output outgrew.
        if (parts.lease.due) {
          const stop = await parts.lease.afterChunk();
          if (stop) {
            owner.stopFor(stop.limit, stop.outcome);
            return undefined;
          }
        }
        // A due usage event: after the chunk's checks (tokenmeter's own protocol only).
        writer.usage?.();
      }
      return undefined;
    } catch (error) {
      // Our own code (or a custom encoder) failed mid-stream: not the provider's doing.
      if (owner.abortReason || owner.ended) return undefined;
      return failureOfLoop(error, this.config.services.logger, owner.requestId);
    } finally {
      this.reading = false;
      this.close();
    }
  }

  /** What an error from the source means: the handler's bug, or the provider's failure. */
  private classify(error: unknown): UpstreamFailure {
    return failureOfSource(error, {
      eventCount: this.parts.meter.eventCount,
      signalTouched: this.owner.signalTouched,
      logger: this.config.services.logger,
      requestId: this.owner.requestId,
    });
  }

  /** Closes the provider stream (once; a failure to close changes nothing). */
  close(): void {
    const iterator = this.iterator;
    this.iterator = undefined;
    if (!iterator?.return) return;
    try {
      Promise.resolve(iterator.return()).catch(() => {});
    } catch {
      // A source whose return() throws is closed as far as we are concerned.
    }
  }
}
