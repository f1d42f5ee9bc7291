/**
 * The adapters without a next handler (Web, Fastify) need `upstream()`: left out, they
 * refuse at creation with a message that says what to write, as `costTrackedSSE()` does for
 * a missing `identify()`; a misspelt option is refused by every adapter alike.
 */
import { costTrackedSSE } from '@tokenmeter/express';
import { fastifySSE } from '@tokenmeter/fastify';
import { createMemoryStore } from '@tokenmeter/store-memory';
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
});
