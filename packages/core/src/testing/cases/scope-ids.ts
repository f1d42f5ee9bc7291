/**
 * Conformance case for scope ids: they come from users and may hold separators, key
 * pattern characters, newlines, unicode, NUL and 10 kB of text; a store must never let
 * two different scopes share state (the classic `kind:id` join makes `a:b`/`c` and
 * `a`/`b:c` collide).
 */
import type { ScopeRef } from '../../store/types.js';
import {
  assert,
  defineCase,
  expectAdmitted,
  expectEnded,
  request,
  uniqueToken,
} from '../conformance-kit.js';
import type { ConformanceCase } from '../types.js';

export const scopeIdCases: readonly ConformanceCase[] = [
  defineCase('scopes', 'hostile and look-alike scope ids never share state', async ({ store }) => {
    const u = uniqueToken();
    const scopes: ScopeRef[] = [
      { kind: 'user', id: `${u}:a:b` },
      { kind: `user:${u}`, id: 'a:b' },
      { kind: `user:${u}:a`, id: 'b' },
      { kind: 'user', id: `${u}:a` },
      { kind: 'user', id: `${u}:a:b:` },
      { kind: 'user', id: `${u}{tag}*?[x]` },
      { kind: 'user', id: `${u}\n\r\t"'\\` },
      { kind: 'user', id: `${u}\u0000nul` },
      { kind: 'user', id: `${u}👩‍💻 naïve 東京` },
      { kind: 'user', id: `${u}${'x'.repeat(10_240)}` },
      { kind: 'user', id: `${u}${'x'.repeat(10_241)}` },
      { kind: `${u}`, id: '' },
      { kind: `${u}:`, id: '' },
      { kind: 'user', id: `${u}%3A` },
    ];
    const budget = { limitNanos: 1_000_000, period: 'lifetime' as const };
    for (const [index, scope] of scopes.entries()) {
      const cost = (index + 1) * 1_000;
      const { reservation } = expectAdmitted(
        await store.admit(request(scope, { budget, reserveNanos: cost })),
        `admitting scope #${index}`,
      );
      assert.deepEqual(reservation.scope, scope, `scope #${index} comes back unchanged`);
      expectEnded(
        await store.settle(reservation.id, { costNanos: cost, tokens: 1 }),
        'settled',
        `settling scope #${index}`,
      );
    }
    for (const [index, scope] of scopes.entries()) {
      const state = await store.getState(scope, { budget });
      assert.equal(
        state.budget?.spentNanos,
        (index + 1) * 1_000,
        `scope #${index} (${JSON.stringify(scope).slice(0, 60)}) sees only its own spend`,
      );
      assert.deepEqual(state.scope, scope, `getState returns scope #${index} unchanged`);
    }
  }),
];
