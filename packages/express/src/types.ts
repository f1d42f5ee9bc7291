/**
 * The Express adapter's own types: its callbacks receive Express's own `Request` (so an
 * app's augmentations, `req.user`, reach them), and `res.locals.tokenmeter` is typed.
 * Types only: they come from `@types/express` (4 or 5), which an Express app in
 * TypeScript has.
 */
import type { MeteredOptions, MeteredStream } from '@tokenmeter/engine';
import type { Request, Response } from 'express';

/** The request the callbacks receive: Express's `Request` (4 or 5). */
export type MeteredRequest = Request;
/** The response as the middleware sees it: Express's `Response`. */
export type MeteredResponse = Response;

/**
 * The options of `costTrackedSSE()`: its callbacks receive the Express request, `Req`
 * when the route's request is typed further (`Request<Params, any, ChatBody>`).
 */
export type CostTrackedSSEOptions<Req extends Request = Request> = MeteredOptions<Req>;

declare global {
  namespace Express {
    interface Locals {
      /** The request's metered stream, once admitted by `costTrackedSSE()` or a gateway. */
      tokenmeter?: MeteredStream;
    }
  }
}
