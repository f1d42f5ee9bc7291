/** Test helper: forwards the test request's `x-fake-llm-*` knob headers to the fake upstream. */
import type { IncomingMessage } from 'node:http';
import type Anthropic from '@anthropic-ai/sdk';
import type { CostTrackedSSEOptions } from '@tokenmeter/express';

type Upstream = NonNullable<CostTrackedSSEOptions['upstream']>;

export function knobHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith('x-fake-llm-') && typeof value === 'string') out[name] = value;
  }
  return out;
}

/**
 * The README's mount pattern: the body as the caller sent it, with the admitted model and
 * max_tokens, streamed from `client` (the fake's knob headers forwarded).
 */
export function readmeUpstream(client: Anthropic): Upstream {
  return (req, meter) =>
    client.messages.create(
      {
        ...(req.body as Anthropic.MessageCreateParams),
        model: meter.model,
        max_tokens: meter.maxTokens,
        stream: true,
      },
      { signal: meter.signal, headers: knobHeaders(req) },
    );
}
