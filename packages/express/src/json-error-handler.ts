/**
 * An Express error handler that answers body-parsing failures (from `express.json()`)
 * in the same JSON shape as every other tokenmeter rejection, with a stable code:
 * 400 `invalid_json`, 413 `body_too_large`, 415 `unsupported_media_type`. Other errors
 * go on to the app's own handlers.
 */
import type { ServerResponse } from 'node:http';
import { sendJsonError } from '@tokenmeter/engine';
import { NodeTransport } from '@tokenmeter/engine/node';

interface BodyParserError {
  type?: unknown;
  status?: unknown;
  limit?: unknown;
}

const BY_TYPE: Record<string, [number, string, string]> = {
  'entity.parse.failed': [400, 'invalid_json', 'The request body is not valid JSON.'],
  'entity.too.large': [413, 'body_too_large', 'The request body is too large.'],
  'encoding.unsupported': [
    415,
    'unsupported_media_type',
    'The request body encoding is not supported.',
  ],
  'charset.unsupported': [
    415,
    'unsupported_media_type',
    'The request body charset is not supported.',
  ],
  'request.aborted': [400, 'request_aborted', 'The request body was not received in full.'],
  'request.size.invalid': [
    400,
    'invalid_request',
    'The request body size does not match its Content-Length.',
  ],
  'stream.encoding.set': [500, 'internal_error', 'Internal error.'],
};

/**
 * Mount after your routes: `app.use(jsonErrorHandler())`.
 *
 * @example
 * app.post('/api/chat', express.json({ limit: '64kb' }), costTrackedSSE(options));
 * app.use(jsonErrorHandler());
 */
export function jsonErrorHandler() {
  return function jsonErrorHandler(
    error: unknown,
    _req: unknown,
    res: ServerResponse,
    next: (error?: unknown) => void,
  ): void {
    const e = (typeof error === 'object' && error !== null ? error : {}) as BodyParserError;
    const known = typeof e.type === 'string' ? BY_TYPE[e.type] : undefined;
    if (!known || res.headersSent) {
      next(error);
      return;
    }
    const [status, code, message] = known;
    sendJsonError(
      new NodeTransport(res),
      status,
      code,
      message,
      typeof e.limit === 'number' ? { limitBytes: e.limit } : {},
    );
  };
}
