import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type SseBlock, sseBlocks } from './relay.js';

const STREAM = [
  'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1"}}\n\n',
  ': a comment\n\n',
  'event: content_block_delta\r\ndata: {"type":"content_block_delta","delta":{"text":"héllo 世界 🧮"}}\r\n\r\n',
  'data: {"a":1}\ndata: {"b":2}\n\n',
  'event: ping\rdata: {}\r\r',
  'event: message_stop\ndata: {"type":"message_stop"}\n\n',
].join('');

async function* chunks(bytes: Uint8Array, cuts: number[]): AsyncGenerator<Uint8Array> {
  let start = 0;
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
    yield bytes.subarray(start, cut);
    start = cut;
  }
  yield bytes.subarray(start);
}

async function read(
  body: AsyncIterable<Uint8Array>,
): Promise<{ reads: number; blocks: SseBlock[] }> {
  const blocks: SseBlock[] = [];
  let reads = 0;
  for await (const batch of sseBlocks(body)) {
    reads++;
    expect(batch.length).toBeGreaterThan(0);
    blocks.push(...batch);
  }
  return { reads, blocks };
}

describe('sseBlocks', () => {
  it('parses names and data, keeps each event’s bytes, and batches one read’s events together', async () => {
    const bytes = new TextEncoder().encode(STREAM);
    const { reads, blocks } = await read(chunks(bytes, []));
    expect(reads).toBe(1);
    expect(blocks.map((b) => b.wire).join('')).toBe(STREAM);
    expect(blocks.map((b) => [b.name, b.data])).toEqual([
      ['message_start', '{"type":"message_start","message":{"id":"msg_1"}}'],
      [undefined, undefined],
      ['content_block_delta', '{"type":"content_block_delta","delta":{"text":"héllo 世界 🧮"}}'],
      [undefined, '{"a":1}\n{"b":2}'],
      ['ping', '{}'],
      ['message_stop', '{"type":"message_stop"}'],
    ]);
  });

  it('gives the same events whatever the reads (splits inside CRLF and inside UTF-8 characters)', async () => {
    const bytes = new TextEncoder().encode(STREAM);
    const whole = (await read(chunks(bytes, []))).blocks;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 40 }),
        async (cuts) => {
          const { blocks } = await read(chunks(bytes, cuts));
          expect(blocks).toEqual(whole);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('yields an unterminated last event when the body ends', async () => {
    const bytes = new TextEncoder().encode('data: {"x":1}\n\ndata: {"y":2}\n');
    const { blocks } = await read(chunks(bytes, [5]));
    expect(blocks.map((b) => b.data)).toEqual(['{"x":1}', '{"y":2}']);
  });
});
