/**
 * A metered route on Web-standard `Request` / `Response`: one function per framework shape
 * (a bare `Request`, Hono's `Context`), all on one engine.
 */

import { TokenmeterError } from '@tokenmeter/core';
import {
  Engine,
  type MeteredOptions,
  parseOptions,
  SSE_DEFAULTS,
  sendJsonError,
} from '@tokenmeter/engine';
import { WebIncoming } from './web-incoming.js';
import { WebTransport } from './web-transport.js';

/** The options of a Web route: `upstream()` is required (there is no next handler to call). */
export type WebRouteOptions<R> = Omit<MeteredOptions<R>, 'upstream'> & {
  upstream: NonNullable<MeteredOptions<R>['upstream']>;
  /**
   * The client's address, for `uploadsPerAddress`, where the runtime tells it (Bun:
   * `server.requestIP(request)`; Deno: `info.remoteAddr.hostname`). Without it, bodies in
   * progress are bounded by `maxBodyBytes` alone.
   */
  clientAddress?: (req: R) => string | undefined;
};

/** A route handler with the number of streams it has open (0 when idle). */
export type WebHandler<R> = ((req: R) => Promise<Response>) & { readonly activeStreams: number };

/** How a framework's request reaches the Web `Request`. @internal */
export interface WebBinding<R> {
  entry: string;
  request(req: R): Request;
  /** The address when the app gave no `clientAddress`. */
  address?(req: R): string | undefined;
}

/** @internal */
export function webRoute<R>(options: WebRouteOptions<R>, binding: WebBinding<R>): WebHandler<R> {
  if (typeof options !== 'object' || options === null) {
    throw new TokenmeterError(
      'invalid_config',
      `${binding.entry}(options) needs an options object with at least { store, identify, upstream }.`,
    );
  }
  const { clientAddress, ...rest } = options;
  const engine = new Engine(
    parseOptions(rest, { ...SSE_DEFAULTS, entry: binding.entry, requireUpstream: true }),
  );
  const addressOf = clientAddress ?? binding.address;
  const handler = async (req: R): Promise<Response> => {
    const request = binding.request(req);
    return respond(request, (transport) =>
      engine.serve(new WebIncoming(req, request, addressOf?.(req)), transport),
    );
  };
  Object.defineProperty(handler, 'activeStreams', { get: () => engine.activeStreams });
  return handler as WebHandler<R>;
}

/**
 * The `Response` for one request, once its status is known: its body streams whatever `serve` writes to the
 * transport. The engine answers every request it serves; a client that left while it was
 * being admitted still gets a Response, for the server to discard.
 * @internal
 */
export function respond(
  request: Request,
  serve: (transport: WebTransport) => Promise<unknown>,
): Promise<Response> {
  const transport = new WebTransport(request.signal);
  void serve(transport).finally(() => {
    if (!transport.headersSent) sendJsonError(transport, 499, 'client_closed', 'The client left.');
  });
  return transport.response;
}
