/** Variant `bare-express`: the same bare relay as an Express 5 route (the DESIGN's baseline). */
import { createServer } from 'node:http';
import express from 'express';
import { bareRelay } from './bare-relay.mjs';
import { listen, statsHandler } from './common.mjs';

const app = express();
app.get('/__stats', statsHandler);
app.post('/chat', express.json(), (req, res) => bareRelay(req.body, res));
listen(createServer(app));
