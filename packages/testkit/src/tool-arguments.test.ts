// Tool inputs as valid instances of the tool's schema: whatever the schema and the planned
// size, the pieces concatenate to JSON that ajv accepts, one piece per token, and the size
// only ever grows to fit the smallest instance.

import { describe, expect, it } from 'vitest';
import { toolWordsGenerator } from './text-generator.js';
import { seededToolInput, toolInputSource, toolInputTokens } from './tool-arguments.js';
import { claudeCodeTools, codexTools, expectValid } from './tools.test-helper.js';

/** The pieces of a tool input planned at `planned` tokens, one per token. */
function pieces(seed: number, schema: unknown, planned: number): string[] {
  const tokens = toolInputTokens(seed, schema, planned);
  const source = toolInputSource(seed, schema, tokens);
  return Array.from({ length: tokens }, () => source.next());
}

const realSchemas: Array<[string, unknown]> = [
  ...claudeCodeTools.map((tool): [string, unknown] => [
    `Claude Code ${tool.name}`,
    tool.input_schema,
  ]),
  ...codexTools.map((tool): [string, unknown] => [`Codex ${tool.name}`, tool.parameters]),
];

/** One schema per keyword the instance builder handles. */
const keywordSchemas: Array<[string, unknown]> = [
  [
    'type arrays (the first type listed is used)',
    {
      type: 'object',
      properties: { a: { type: ['integer', 'null'] }, b: { type: ['null', 'string'] } },
      required: ['a', 'b'],
    },
  ],
  [
    'enum and const',
    {
      type: 'object',
      properties: {
        mode: { type: 'string', enum: ['fast', 'slow'] },
        version: { const: 2 },
        level: { type: 'integer', enum: ['x', 3] },
      },
      required: ['mode', 'version', 'level'],
    },
  ],
  [
    'number bounds and multipleOf',
    {
      type: 'object',
      properties: {
        min: { type: 'integer', minimum: 3 },
        open: { type: 'number', exclusiveMinimum: 0 },
        negative: { type: 'integer', maximum: -5 },
        step: { type: 'integer', minimum: 10, multipleOf: 7 },
        band: { type: 'number', minimum: 0.5, maximum: 0.75 },
      },
      required: ['min', 'open', 'negative', 'step', 'band'],
    },
  ],
  [
    'string lengths and formats',
    {
      type: 'object',
      properties: {
        long: { type: 'string', minLength: 40 },
        short: { type: 'string', minLength: 2, maxLength: 3 },
        url: { type: 'string', format: 'uri' },
        email: { type: 'string', format: 'email' },
        when: { type: 'string', format: 'date-time' },
        id: { type: 'string', format: 'uuid' },
      },
      required: ['short', 'url', 'email', 'when', 'id', 'long'],
    },
  ],
  [
    'minItems of objects, draft 7 tuples',
    {
      type: 'object',
      properties: {
        pairs: {
          type: 'array',
          minItems: 2,
          items: { type: 'object', properties: { k: { type: 'string' } }, required: ['k'] },
        },
        tuple: { type: 'array', items: [{ type: 'boolean' }, { type: 'integer' }], minItems: 2 },
      },
      required: ['pairs', 'tuple'],
    },
  ],
  [
    'draft 2020-12 prefixItems and $defs',
    {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: {
        point: {
          type: 'array',
          prefixItems: [{ type: 'number' }, { type: 'number' }],
          minItems: 2,
        },
        step: { $ref: '#/$defs/Step' },
      },
      required: ['point', 'step'],
      $defs: {
        Step: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
      },
    },
  ],
  [
    'anyOf and oneOf take the first workable branch',
    {
      type: 'object',
      properties: {
        impossible_first: {
          anyOf: [{ type: 'string', minLength: 5, maxLength: 1 }, { type: 'integer' }],
        },
        target: {
          oneOf: [
            { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
            { type: 'object', properties: { url: { type: 'string' } }, required: ['url'] },
          ],
        },
      },
      required: ['impossible_first', 'target'],
    },
  ],
  [
    'allOf merges every branch',
    {
      allOf: [
        { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] },
        { properties: { b: { type: 'integer', minimum: 4 } }, required: ['b'] },
        { properties: { a: { minLength: 3 } } },
      ],
    },
  ],
  [
    'draft 7 definitions, a recursive $ref',
    {
      type: 'object',
      properties: { tree: { $ref: '#/definitions/node' }, at: { $ref: '#/definitions/point' } },
      required: ['tree', 'at'],
      definitions: {
        node: {
          type: 'object',
          properties: { children: { type: 'array', items: { $ref: '#/definitions/node' } } },
          required: ['children'],
        },
        point: { type: 'object', properties: { x: { type: 'number' } }, required: ['x'] },
      },
    },
  ],
  [
    'required properties declared only by additionalProperties / patternProperties',
    {
      type: 'object',
      required: ['count', 'x-flag'],
      patternProperties: { '^x-': { type: 'boolean' } },
      additionalProperties: { type: 'integer' },
    },
  ],
  [
    'minProperties pulls in optional properties',
    {
      type: 'object',
      properties: { a: { type: 'string' }, b: { type: 'number' } },
      minProperties: 1,
      additionalProperties: false,
    },
  ],
  [
    'OpenAI strict mode: every property required, optional ones nullable',
    {
      type: 'object',
      properties: {
        query: { type: ['string', 'null'] },
        limit: { type: ['integer', 'null'] },
        filters: {
          type: 'object',
          properties: { lang: { type: ['string', 'null'] } },
          required: ['lang'],
          additionalProperties: false,
        },
      },
      required: ['query', 'limit', 'filters'],
      additionalProperties: false,
    },
  ],
  [
    'untyped properties',
    { type: 'object', properties: { anything: {}, also: true }, required: ['anything', 'also'] },
  ],
];

describe('tool inputs from real tool schemas', () => {
  it.each(realSchemas)(
    '%s: valid JSON for the schema at every size, one piece per token',
    (_, schema) => {
      for (const planned of [1, 2, 3, 5, 12, 40]) {
        const parts = pieces(5, schema, planned);
        expect(parts.every((piece) => piece.length > 0)).toBe(true);
        // Each of these schemas has a string to carry words: never fewer tokens than planned.
        expect(parts.length).toBeGreaterThanOrEqual(planned);
        const json = parts.join('');
        expectValid(schema, json);
        expect(seededToolInput(5, planned, undefined, schema)).toBe(json);
      }
    },
  );

  it('fills the required string of Bash, Read and Glob with the words', () => {
    for (const [name, field] of [
      ['Bash', 'command'],
      ['Read', 'file_path'],
      ['Glob', 'pattern'],
    ] as const) {
      const schema = claudeCodeTools.find((t) => t.name === name)!.input_schema;
      const input = JSON.parse(seededToolInput(2, 12, undefined, schema));
      expect(Object.keys(input)).toEqual([field]);
      expect(input[field]).toBe(toolWordsGenerator(2).take(10));
    }
  });

  it('adds a todo (Claude Code TodoWrite) or a command word (Codex shell) to carry words', () => {
    const todo = claudeCodeTools.find((t) => t.name === 'TodoWrite')!.input_schema;
    expect(seededToolInput(2, 1, undefined, todo)).toBe('{"todos": []}');
    const todos = JSON.parse(seededToolInput(2, 12, undefined, todo)).todos;
    expect(todos).toHaveLength(1);
    expect(todos[0]).toMatchObject({ status: 'pending', content: toolWordsGenerator(2).take(8) });
    const shell = codexTools.find((t) => t.name === 'shell')!.parameters;
    expect(JSON.parse(seededToolInput(2, 1, undefined, shell))).toEqual({ command: [] });
    expect(JSON.parse(seededToolInput(2, 12, undefined, shell))).toEqual({
      command: [toolWordsGenerator(2).take(10)],
    });
  });
});

describe('tool inputs for every schema keyword', () => {
  it.each(keywordSchemas)('%s', (_, schema) => {
    for (const planned of [1, 4, 20]) {
      const parts = pieces(9, schema, planned);
      expectValid(schema, parts.join(''));
    }
  });
});

describe('sizes', () => {
  const bash = claudeCodeTools.find((t) => t.name === 'Bash')!.input_schema;

  it('grows to the smallest instance, and keeps any larger planned size', () => {
    // `{"command": "` and `"}`: an empty command is the smallest valid input.
    expect(toolInputTokens(1, bash, 1)).toBe(2);
    expect(pieces(1, bash, 1)).toEqual(['{"command": "', '"}']);
    expect(toolInputTokens(1, bash, 12)).toBe(12);
    // minLength 40 needs words enough for 40 characters, whatever was planned.
    const long = {
      type: 'object',
      properties: { s: { type: 'string', minLength: 40 } },
      required: ['s'],
    };
    const grown = toolInputTokens(1, long, 1);
    expect(grown).toBeGreaterThan(2);
    expect(JSON.parse(pieces(1, long, 1).join('')).s.length).toBeGreaterThanOrEqual(40);
  });

  it('is exactly the instance when no string can carry words', () => {
    const closed = { type: 'object', properties: {}, additionalProperties: false };
    expect(pieces(1, closed, 12)).toEqual(['{}']);
    const flag = { type: 'object', properties: { on: { type: 'boolean' } }, required: ['on'] };
    expect(pieces(1, flag, 12)).toEqual(['{"on": false', '}']);
    // No undeclared property is ever invented, even where the schema would allow one.
    expect(pieces(1, { type: 'object' }, 12)).toEqual(['{}']);
  });

  it('without a schema is the legacy {"query": …} input; an optional query string matches it', () => {
    const query = { type: 'object', properties: { query: { type: 'string' } } };
    for (const planned of [1, 3, 12, 30]) {
      expect(JSON.parse(seededToolInput(4, planned))).toBeTypeOf('object');
      if (planned >= 3) {
        expect(seededToolInput(4, planned, undefined, query)).toBe(seededToolInput(4, planned));
      }
    }
    expect(seededToolInput(4, 3)).toBe(`{"query": "${toolWordsGenerator(4).take(1)}"}`);
  });

  it('a cut input is a prefix of the whole one and not valid JSON', () => {
    for (const [, schema] of realSchemas) {
      const whole = seededToolInput(3, 20, undefined, schema);
      const tokens = toolInputTokens(3, schema, 20);
      if (tokens < 2) continue;
      const cut = seededToolInput(3, 20, tokens - 1, schema);
      expect(whole.startsWith(cut)).toBe(true);
      expect(() => JSON.parse(cut)).toThrow(SyntaxError);
    }
  });

  it('is deterministic per seed, and seeds differ', () => {
    const glob = claudeCodeTools.find((t) => t.name === 'Glob')!.input_schema;
    expect(seededToolInput(8, 12, undefined, glob)).toBe(seededToolInput(8, 12, undefined, glob));
    expect(seededToolInput(8, 12, undefined, glob)).not.toBe(
      seededToolInput(9, 12, undefined, glob),
    );
  });
});

describe('schemas that cannot be satisfied or are hostile', () => {
  it.each([
    ['false', false],
    [
      'an impossible required property',
      {
        type: 'object',
        properties: { n: { type: 'integer', minimum: 5, maximum: 1 } },
        required: ['n'],
      },
    ],
    [
      'a required property additionalProperties forbids',
      { type: 'object', required: ['x'], additionalProperties: false },
    ],
    [
      'a self-referencing required property',
      { type: 'object', properties: { self: { $ref: '#' } }, required: ['self'] },
    ],
    [
      'a remote $ref',
      {
        type: 'object',
        properties: { r: { $ref: 'https://example.com/s.json' } },
        required: ['r'],
      },
    ],
    [
      'a huge minItems',
      { type: 'object', properties: { a: { type: 'array', minItems: 1e9 } }, required: ['a'] },
    ],
    [
      'an invalid pattern property',
      { type: 'object', required: ['a'], patternProperties: { '(': { type: 'string' } } },
    ],
  ])('%s: an input that is still JSON, without throwing', (_, schema) => {
    const json = seededToolInput(1, 12, undefined, schema);
    expect(() => JSON.parse(json)).not.toThrow();
    expect(pieces(1, schema, 12).join('')).toBe(json);
  });
});
