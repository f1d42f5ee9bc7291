/**
 * `@tokenmeter/engine/node`: the request and the transport on Node's `http` objects, for
 * the adapters that run on them (Express; Fastify through `request.raw` / `reply.raw`).
 */
export { NodeIncoming } from './incoming.js';
export { NodeTransport } from './transport.js';
