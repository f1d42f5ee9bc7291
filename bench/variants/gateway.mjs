/**
 * Variant `gateway-memory`: `anthropicGateway()` with the memory store and what a typical
 * gateway configures (a daily budget and two sliding-window limits per key, set high enough
 * never to refuse). The loadgen's request (`POST /chat`, `x-user`) becomes an Anthropic
 * streaming call of that key, exactly as in the `bare-proxy` variant.
 */
import { createServer } from 'node:http';
import { anthropicGateway } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import express from 'express';
import { addStats, listen, METERED, settings, statsHandler } from './common.mjs';

const outcomes = {};
const store = createMemoryStore();
const gateway = anthropicGateway({
  apiKey: 'bench',
  baseURL: settings.upstreamUrl,
  store,
  identify: (key) => (key ? { user: key } : undefined),
  budgets: METERED.budgets,
  maxTokensLimit: METERED.maxTokensLimit,
  rateLimits: METERED.rateLimits,
  onSettle: ({ outcome }) => {
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  },
  logger: { warn: (m) => console.error('warn', m), error: (m) => console.error('error', m) },
});

const app = express();
app.get('/__stats', statsHandler);
app.post('/chat', express.json(), (req, res, next) => {
  req.url = '/v1/messages';
  req.headers['x-api-key'] = req.headers['x-user'];
  req.body = { ...req.body, stream: true };
  gateway(req, res, next);
});
addStats(() => ({ outcomes }));
listen(createServer(app), () => store.shutdown());
