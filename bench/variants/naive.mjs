/**
 * Variant `naive`: what the seed articles and blog posts do, on Express 5 + Redis.
 * - write-and-forget: `res.write()`'s return value is ignored, so a slow client's backlog
 *   piles up in the server's memory;
 * - no abort on disconnect: the upstream call runs to its end whoever is listening;
 * - check-then-deduct in two round trips: GET the user's spend, compare with the budget
 *   (spend + worst case of this request, so it only overspends under concurrency), stream,
 *   then INCRBY the actual cost;
 * - prices hard-coded (claude-haiku-4-5: $1 / $5 per million tokens), in nano-dollars.
 */
import { createServer } from 'node:http';
import express from 'express';
import { Redis } from 'ioredis';
import { anthropic, deltaEvent, listen, SSE_HEADERS, settings, statsHandler } from './common.mjs';

const NANOS_PER_TOKEN = { input: 1_000, output: 5_000 };
const redis = new Redis(settings.redisUrl ?? 'redis://127.0.0.1:6379');

const app = express();
app.get('/__stats', statsHandler);
app.post('/chat', express.json(), async (req, res) => {
  const user = req.get('x-user') ?? 'anonymous';
  const key = `${settings.prefix}naive:spent:${user}`;
  const body = req.body;
  // Round trip 1: check.
  const spent = Number((await redis.get(key)) ?? 0);
  if (spent + body.max_tokens * NANOS_PER_TOKEN.output > settings.budgetNanos) {
    res.status(402).json({ error: { code: 'budget_exceeded', message: 'Budget exceeded.' } });
    return;
  }
  res.on('error', () => {});
  res.writeHead(200, SSE_HEADERS);
  res.flushHeaders();
  let input = 0;
  let output = 0;
  try {
    const stream = await anthropic.messages.create({
      model: body.model,
      max_tokens: body.max_tokens,
      messages: body.messages,
      stream: true,
    });
    for await (const event of stream) {
      if (event.type === 'message_start') input = event.message.usage.input_tokens;
      else if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
        res.write(deltaEvent(event.delta.text));
      } else if (event.type === 'message_delta') output = event.usage.output_tokens;
    }
    res.end('event: done\ndata: {}\n\n');
  } catch (error) {
    res.end(`event: error\ndata: ${JSON.stringify({ message: String(error?.message) })}\n\n`);
  }
  // Round trip 2: deduct.
  await redis.incrby(key, input * NANOS_PER_TOKEN.input + output * NANOS_PER_TOKEN.output);
});
app.use((error, _req, res, _next) => {
  if (!res.headersSent) res.status(500).json({ error: { message: String(error?.message) } });
  else res.end();
});

listen(createServer(app), () => redis.quit());
