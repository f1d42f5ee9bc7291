/** The Express adapter's own types: its request and response, and the options it takes. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MeteredOptions } from '@tokenmeter/engine';

/** The request as the middleware sees it: Express 4 and 5 requests both fit. */
export type MeteredRequest = IncomingMessage & { body?: unknown };
/** The response as the middleware sees it: Express 4 and 5 responses both fit. */
export type MeteredResponse = ServerResponse & { locals?: Record<string, unknown> };

/** The options of `costTrackedSSE()`: its callbacks receive the Express request. */
export type CostTrackedSSEOptions = MeteredOptions<MeteredRequest>;
