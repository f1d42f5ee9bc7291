/**
 * The adapters without a next handler (Web, Fastify) need `upstream()`: left out, they
 * refuse at creation with a message that says what to write, as `costTrackedSSE()` does for
 * a missing `identify()`; a misspelt option is refused by every adapter alike, the
 * gateways' included.
 */
import * as express from '@tokenmeter/express';
import { costTrackedSSE } from '@tokenmeter/express';
import * as fastify from '@tokenmeter/fastify';
import { fastifySSE } from '@tokenmeter/fastify';
import { createMemoryStore } from '@tokenmeter/store-memory';
import * as web from '@tokenmeter/web';
import { meteredSSE } from '@tokenmeter/web';
import { honoSSE } from '@tokenmeter/web/hono';
import { describe, expect, it } from 'vitest';

const identify = () => ({ user: 'u' });

describe('adapter options', () => {
  it.each([
    ['meteredSSE', () => meteredSSE({ store: createMemoryStore(), identify } as never)],
    ['honoSSE', () => honoSSE({ store: createMemoryStore(), identify } as never)],
    [
      'fastifySSE',
      () => fastifySSE({ url: '/chat', store: createMemoryStore(), identify } as never),
    ],
  ])('%s without upstream() is refused at creation, saying what to write', (name, create) => {
    expect(create).toThrow(
      expect.objectContaining({
        code: 'invalid_config',
        message: expect.stringMatching(new RegExp(`^${name} needs upstream\\(req, meter\\)`)),
      }),
    );
  });

  it.each([
    [
      'costTrackedSSE',
      () => costTrackedSSE({ store: createMemoryStore(), identify, budget: {} } as never),
    ],
    [
      'meteredSSE',
      () =>
        meteredSSE({
          store: createMemoryStore(),
          identify,
          upstream: () => [],
          budget: {},
        } as never),
    ],
    [
      'fastifySSE',
      () =>
        fastifySSE({
          url: '/chat',
          store: createMemoryStore(),
          identify,
          upstream: () => [],
          budget: {},
        } as never),
    ],
  ])('%s refuses a misspelt option, naming the nearest one', (name, create) => {
    expect(create).toThrow(`${name} has no option "budget": did you mean "budgets"?`);
  });

  const gatewayOptions = { apiKey: 'sk-x', store: createMemoryStore(), identify: () => undefined };
  it.each([
    ['express', express.anthropicGateway],
    ['web', web.openaiGateway],
    ['fastify', fastify.anthropicGateway],
  ] as const)('%s gateways refuse a misspelt option and a missing apiKey', (_name, create) => {
    const make = create as (options: object) => unknown;
    expect(() => make({ ...gatewayOptions, forwardHeader: [] })).toThrow(
      /Gateway has no option "forwardHeader": did you mean "forwardHeaders"\?/,
    );
    expect(() => make({ ...gatewayOptions, apiKey: '' })).toThrow(/Gateway needs apiKey/);
  });

  it('the Web and Fastify gateways refuse unknownRoutes (they answer every path they are given), and the Web one a relative basePath', () => {
    expect(() =>
      web.anthropicGateway({ ...gatewayOptions, unknownRoutes: 'next' } as never),
    ).toThrow(/route only its prefix to it instead of unknownRoutes/);
    expect(() =>
      fastify.openaiGateway({ ...gatewayOptions, unknownRoutes: 'next' } as never),
    ).toThrow(/register it under a prefix of its own instead of unknownRoutes/);
    expect(() => web.anthropicGateway({ ...gatewayOptions, basePath: 'llm' })).toThrow(
      /basePath must be a path starting with '\/'/,
    );
  });
});
