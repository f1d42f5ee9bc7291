/** Variant `bare-node`: the bare relay on `node:http` alone. */
import { createServer } from 'node:http';
import { bareRelay } from './bare-relay.mjs';
import { listen, readJson, statsHandler } from './common.mjs';

const server = createServer(async (req, res) => {
  if (req.method === 'GET' && req.url.startsWith('/__stats')) return statsHandler(req, res);
  if (req.method !== 'POST' || req.url !== '/chat') {
    res.writeHead(404).end();
    return;
  }
  let body;
  try {
    body = await readJson(req);
  } catch {
    res.writeHead(400).end();
    return;
  }
  await bareRelay(body, res);
});
listen(server);
