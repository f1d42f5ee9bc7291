// The arguments of a tool call as one piece per token: a valid instance of the tool's input
// schema (schema-instance.ts), its strings filled with seeded words up to the planned token
// count. Concatenated, the pieces are always JSON that validates against the schema; cut
// short (max_tokens, a fault) they are a prefix of it, as a real truncated call is.
//
// Pieces: structure is glued to the value that follows it (`{"command": "`, `, "status":
// "pending"`), each word of the carrying string is a piece, and whatever closes the JSON
// after the last value is one more (`"}`). For a schema whose only property is an optional
// string `query` this is exactly the legacy `{"query": "` + words + `"}`.

import {
  extendForWords,
  firstFreeText,
  type InstanceNode,
  minimalInstance,
  type TextNode,
} from './schema-instance.js';
import {
  type PieceSource,
  type TextGenerator,
  ToolInputGenerator,
  toolFillGenerator,
  toolWordsGenerator,
} from './text-generator.js';

/** One instance written as pieces, split around the string that carries the words. */
interface Template {
  /** Pieces before the words; with a carrier the last one ends with its opening quote. */
  head: string[];
  /** Pieces after the words; with a carrier the first one starts with its closing quote. */
  tail: string[];
  /** Whether words go between head and tail. */
  carrier: boolean;
  /** Words the carrier needs at least (its minLength). */
  minWords: number;
}

/** The instance without extras, and (when it has no string of its own) one with room for words. */
interface Shape {
  bare: Template;
  carried: Template | undefined;
}

function templateSize(template: Template): number {
  return template.head.length + template.tail.length + (template.carrier ? template.minWords : 0);
}

/** A string of seeded words at least `minLength` long (and cut at `maxLength`). */
function fillText(node: TextNode, fill: TextGenerator): string {
  let text = '';
  while (text.length < node.minLength) text += fill.next();
  return node.maxLength === undefined ? text : text.slice(0, node.maxLength);
}

/** Words of `seed` needed to reach `minLength` characters. */
function wordsFor(seed: number, minLength: number): number {
  const words = toolWordsGenerator(seed);
  let length = 0;
  let count = 0;
  while (length < minLength) {
    length += words.next().length;
    count += 1;
  }
  return count;
}

/** Writes the instance as pieces, `carrier` (if any) left open for the words. */
function compile(root: InstanceNode, carrier: TextNode | undefined, seed: number): Template {
  const head: string[] = [];
  const tail: string[] = [];
  let target = head;
  let pending = '';
  const fill = toolFillGenerator(seed);
  const piece = (text: string) => {
    target.push(pending + text);
    pending = '';
  };
  const emit = (node: InstanceNode): void => {
    switch (node.kind) {
      case 'value':
        piece(node.json);
        return;
      case 'text':
        if (node === carrier) {
          piece('"');
          target = tail;
          pending = '"';
        } else {
          piece(JSON.stringify(fillText(node, fill)));
        }
        return;
      case 'object':
        pending += '{';
        node.entries.forEach(([name, child], i) => {
          pending += `${i > 0 ? ', ' : ''}${JSON.stringify(name)}: `;
          emit(child);
        });
        pending += '}';
        return;
      case 'array':
        pending += '[';
        node.items.forEach((child, i) => {
          if (i > 0) pending += ', ';
          emit(child);
        });
        pending += ']';
        return;
    }
  };
  emit(root);
  if (pending) target.push(pending);
  return {
    head,
    tail,
    carrier: carrier !== undefined,
    minWords: carrier ? wordsFor(seed, carrier.minLength) : 0,
  };
}

function shapeOf(seed: number, schema: unknown): Shape {
  const bare = minimalInstance(schema);
  const own = firstFreeText(bare);
  if (own) return { bare: compile(bare, own, seed), carried: undefined };
  const extended = minimalInstance(schema);
  const added = extendForWords(extended, schema);
  return {
    bare: compile(bare, undefined, seed),
    carried: added ? compile(extended, added, seed) : undefined,
  };
}

function fit(shape: Shape, wanted: number): { template: Template; tokens: number } {
  const { bare, carried } = shape;
  const bareSize = templateSize(bare);
  if (bare.carrier) return { template: bare, tokens: Math.max(wanted, bareSize) };
  if (!carried || wanted <= bareSize) return { template: bare, tokens: bareSize };
  return { template: carried, tokens: Math.max(wanted, templateSize(carried)) };
}

/**
 * Tokens a call of a tool with input schema `schema` takes when `wanted` are asked for: the
 * smallest valid instance may need more (the plan grows to fit it), and an instance with no
 * string to carry words has exactly its own size. `schema` undefined (no schema at all): the
 * legacy `{"query": …}` input, any size.
 */
export function toolInputTokens(seed: number, schema: unknown, wanted: number): number {
  if (schema === undefined) return wanted;
  return fit(shapeOf(seed, schema), wanted).tokens;
}

/** Streams a template's pieces, with `words` seeded words in the carrier. */
class TemplateSource implements PieceSource {
  readonly #head: readonly string[];
  readonly #tail: readonly string[];
  readonly #words: number;
  readonly #wordSource: TextGenerator;
  #index = 0;

  constructor(template: Template, tokens: number, seed: number) {
    this.#head = template.head;
    this.#tail = template.tail;
    this.#words = template.carrier ? tokens - template.head.length - template.tail.length : 0;
    this.#wordSource = toolWordsGenerator(seed);
  }

  next(): string {
    const index = this.#index++;
    if (index < this.#head.length) return this.#head[index]!;
    const afterWords = index - this.#head.length - this.#words;
    if (afterWords < 0) return this.#wordSource.next();
    return this.#tail[afterWords] ?? '';
  }

  take(n: number): string {
    let out = '';
    for (let i = 0; i < n; i++) out += this.next();
    return out;
  }
}

/**
 * The pieces of the input of a tool call planned at `planned` tokens (fitted as
 * `toolInputTokens()` does) for `seed`; `schema` undefined gives the legacy `{"query": …}`.
 */
export function toolInputSource(seed: number, schema: unknown, planned: number): PieceSource {
  if (schema === undefined) return new ToolInputGenerator(seed, planned);
  const { template, tokens } = fit(shapeOf(seed, schema), planned);
  return new TemplateSource(template, tokens, seed);
}

/**
 * The first `sent` tokens (all by default) of the input of a tool call planned at `planned`
 * tokens for `seed`: a valid instance of the tool's input `schema` when one is given (the plan
 * grows to the smallest instance if `planned` is less), else `{"query": " …words"}`.
 *
 * @example
 * const bash = { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] };
 * seededToolInput(1, 5, undefined, bash); // '{"command": " the stream token"}' (words vary by seed)
 */
export function seededToolInput(
  seed: number,
  planned: number,
  sent?: number,
  schema?: unknown,
): string {
  const tokens = toolInputTokens(seed, schema, planned);
  return toolInputSource(seed, schema, tokens).take(sent ?? tokens);
}
