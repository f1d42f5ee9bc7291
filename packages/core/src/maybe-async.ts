/**
 * @internal For the request path: a value the app may give as is or as a promise. Awaiting a
 * plain value still costs a promise and a microtask per request (more under the async hooks an
 * OpenTelemetry context manager installs), so the request path awaits only promises.
 */
export function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
