/** Test helper: forwards the test request's `x-fake-llm-*` knob headers to the fake upstream. */
import type { IncomingMessage } from 'node:http';

export function knobHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith('x-fake-llm-') && typeof value === 'string') out[name] = value;
  }
  return out;
}
