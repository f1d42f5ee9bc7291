/**
 * Variant `gateway-memory` (and `gateway-chat`, `gateway-responses`): `anthropicGateway()`
 * (or `openaiGateway()` for `BENCH_API=chat|responses`) with the memory store and what a
 * typical gateway configures (a daily budget and two sliding-window limits per key, set
 * high enough never to refuse). The loadgen's request (`POST /chat`, `x-user`) becomes a
 * streaming call of that key in the API's shape, exactly as in the `bare-proxy` variants.
 */
import { createServer } from 'node:http';
import { anthropicGateway, openaiGateway } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import express from 'express';
import { addStats, listen, METERED, PROVIDER_API, settings, statsHandler } from './common.mjs';

const outcomes = {};
const store = createMemoryStore();
const openai = PROVIDER_API.path !== '/v1/messages';
const gateway = (openai ? openaiGateway : anthropicGateway)({
  apiKey: 'bench',
  baseURL: openai ? `${settings.upstreamUrl}/v1` : settings.upstreamUrl,
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
  req.url = PROVIDER_API.path;
  const user = req.headers['x-user'];
  req.headers[PROVIDER_API.keyHeader] = openai ? `Bearer ${user}` : user;
  req.body = PROVIDER_API.body(req.body);
  gateway(req, res, next);
});
addStats(() => ({ outcomes }));
listen(createServer(app), () => store.shutdown());
