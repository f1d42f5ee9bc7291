/**
 * Variant `bare-express`: the same bare relay as an Express 5 route (the DESIGN's baseline).
 * `bare-express+otel` (BENCH_TELEMETRY=on) registers the same OpenTelemetry SDK as the
 * `tokenmeter-*+otel` variants, at the same point (before the app is built): the baseline
 * for an app that runs with telemetry on, whatever tokenmeter adds.
 */
import { createServer } from 'node:http';
import express from 'express';
import { bareRelay } from './bare-relay.mjs';
import { listen, startTelemetry, statsHandler } from './common.mjs';

await startTelemetry();

const app = express();
app.get('/__stats', statsHandler);
app.post('/chat', express.json(), (req, res) => bareRelay(req.body, res));
listen(createServer(app));
