// The smallest valid instance of a JSON Schema, as a tree that tool-arguments.ts turns into
// token pieces: required properties only, the smallest value of each type, the first
// workable branch of anyOf / oneOf, allOf merged, local `$ref`s resolved. Free-text strings
// are marked (`text` nodes with `free`), so that one of them can carry the seeded words a tool
// call needs to reach its planned token count; `extendForWords()` finds a place for one when
// the smallest instance has none (an array item, an optional property).
//
// The schemas come from request bodies, so nothing here trusts them: depth is capped, sizes
// are capped, and anything unusable makes its branch unworkable rather than throwing.

import {
  flatten,
  isSchema,
  MAX_DEPTH,
  merge,
  numberOr,
  omit,
  type Schema,
  typeList,
} from './json-schema.js';

/** A node of an instance: a fixed JSON value, a string, an object or an array. */
export type InstanceNode = ValueNode | TextNode | ObjectNode | ArrayNode;

export interface ValueNode {
  kind: 'value';
  /** The value as JSON (`0`, `false`, `null`, `"pending"`…). */
  json: string;
}

export interface TextNode {
  kind: 'text';
  minLength: number;
  maxLength: number | undefined;
  /** No maxLength, pattern or format: any words will do, so it can carry the tool's words. */
  free: boolean;
}

export interface ObjectNode {
  kind: 'object';
  entries: Array<[name: string, node: InstanceNode]>;
  /** Declared properties left out (not required), in declaration order, with their schema. */
  optional: Array<[name: string, schema: unknown]>;
  /** Properties that may still be added (maxProperties). */
  room: number;
}

export interface ArrayNode {
  kind: 'array';
  items: InstanceNode[];
  /** Schema of the next item, should one be added. */
  next: unknown;
  /** Items that may still be added (maxItems). */
  room: number;
}

/** An instance needing more items than this (minItems) is not built. */
const MAX_ITEMS = 256;

/** Example values of the string formats a tool schema commonly names. */
const FORMAT_EXAMPLES: Readonly<Record<string, string>> = {
  'date-time': '2025-01-01T00:00:00Z',
  date: '2025-01-01',
  time: '00:00:00Z',
  duration: 'P1D',
  email: 'user@example.com',
  'idn-email': 'user@example.com',
  hostname: 'example.com',
  'idn-hostname': 'example.com',
  ipv4: '127.0.0.1',
  ipv6: '::1',
  uri: 'https://example.com/',
  'uri-reference': 'https://example.com/',
  iri: 'https://example.com/',
  'iri-reference': 'https://example.com/',
  url: 'https://example.com/',
  uuid: '00000000-0000-4000-8000-000000000000',
  'json-pointer': '',
  regex: '.*',
};

/** The type to build when a schema names none, read from the keywords it uses. */
function inferredTypes(schema: Schema, isRoot: boolean): string[] {
  const has = (...keys: string[]) => keys.some((key) => Object.hasOwn(schema, key));
  if (has('properties', 'required', 'additionalProperties', 'patternProperties', 'minProperties')) {
    return ['object'];
  }
  if (has('items', 'prefixItems', 'minItems', 'maxItems')) return ['array'];
  if (has('minLength', 'maxLength', 'pattern', 'format')) return ['string'];
  if (has('minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf')) {
    return ['number'];
  }
  // Tool arguments are an object; anything else unconstrained is most naturally a string.
  return [isRoot ? 'object' : 'any'];
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function typeAllows(types: string[] | undefined, value: unknown): boolean {
  if (types === undefined) return true;
  const type = jsonType(value);
  return types.includes(type) || (type === 'integer' && types.includes('number'));
}

function isMultiple(value: number, step: number): boolean {
  const ratio = value / step;
  return Math.abs(ratio - Math.round(ratio)) < 1e-9;
}

/** The number closest to 0 that the bounds (and multipleOf, integer) allow. */
function smallestNumber(schema: Schema, integer: boolean): number | undefined {
  let lo = numberOr(schema.minimum, Number.NEGATIVE_INFINITY);
  let hi = numberOr(schema.maximum, Number.POSITIVE_INFINITY);
  // Draft 4 writes exclusive bounds as booleans beside minimum / maximum.
  let loOpen = schema.exclusiveMinimum === true;
  let hiOpen = schema.exclusiveMaximum === true;
  if (typeof schema.exclusiveMinimum === 'number' && schema.exclusiveMinimum >= lo) {
    lo = schema.exclusiveMinimum;
    loOpen = true;
  }
  if (typeof schema.exclusiveMaximum === 'number' && schema.exclusiveMaximum <= hi) {
    hi = schema.exclusiveMaximum;
    hiOpen = true;
  }
  const step =
    typeof schema.multipleOf === 'number' && schema.multipleOf > 0 ? schema.multipleOf : undefined;
  const fits = (v: number) =>
    Number.isFinite(v) &&
    (v > lo || (!loOpen && v === lo)) &&
    (v < hi || (!hiOpen && v === hi)) &&
    (!integer || Number.isInteger(v)) &&
    (step === undefined || isMultiple(v, step));
  const seeds = [0, lo, lo + 1, Math.ceil(lo), Math.ceil(lo) + 1, hi, hi - 1, Math.floor(hi)];
  seeds.push(Math.floor(hi) - 1, (lo + hi) / 2);
  const candidates = step
    ? seeds.flatMap((v) => [Math.ceil(v / step) * step, Math.floor(v / step) * step])
    : seeds;
  return candidates.find(fits);
}

function stringNode(schema: Schema): InstanceNode | undefined {
  const minLength = Math.max(0, numberOr(schema.minLength, 0));
  const maxLength = typeof schema.maxLength === 'number' ? schema.maxLength : undefined;
  if (maxLength !== undefined && maxLength < minLength) return undefined;
  if (typeof schema.format === 'string' && Object.hasOwn(FORMAT_EXAMPLES, schema.format)) {
    return { kind: 'value', json: JSON.stringify(FORMAT_EXAMPLES[schema.format]) };
  }
  const free =
    maxLength === undefined && schema.pattern === undefined && schema.format === undefined;
  return { kind: 'text', minLength, maxLength, free };
}

/** Builds the smallest instance of schemas; each build call is one level deeper. */
class Builder {
  readonly #root: unknown;

  constructor(root: unknown) {
    this.#root = root;
  }

  build(schema: unknown, depth: number, isRoot = false): InstanceNode | undefined {
    if (depth > MAX_DEPTH) return undefined;
    const flat = flatten(schema, this.#root, depth);
    if (flat === false) return undefined;
    for (const key of ['anyOf', 'oneOf'] as const) {
      const branches = flat[key];
      if (!Array.isArray(branches)) continue;
      // The first branch an instance can be built for (oneOf is not checked for exclusivity).
      const base = omit(flat, key);
      for (const branch of branches) {
        const part = flatten(branch, this.#root, depth + 1);
        if (part === false) continue;
        const node = this.build(merge(base, part), depth + 1, isRoot);
        if (node) return node;
      }
      return undefined;
    }
    const types = typeList(flat.type);
    if (Object.hasOwn(flat, 'const')) {
      return typeAllows(types, flat.const)
        ? { kind: 'value', json: JSON.stringify(flat.const) }
        : undefined;
    }
    if (Array.isArray(flat.enum)) {
      const index = flat.enum.findIndex((v) => typeAllows(types, v));
      return index < 0 ? undefined : { kind: 'value', json: JSON.stringify(flat.enum[index]) };
    }
    for (const type of types ?? inferredTypes(flat, isRoot)) {
      const node = this.#typed(type, flat, depth);
      if (node) return node;
    }
    return undefined;
  }

  #typed(type: string, schema: Schema, depth: number): InstanceNode | undefined {
    switch (type) {
      case 'null':
        return { kind: 'value', json: 'null' };
      case 'boolean':
        return { kind: 'value', json: 'false' };
      case 'integer':
      case 'number': {
        const n = smallestNumber(schema, type === 'integer');
        return n === undefined ? undefined : { kind: 'value', json: String(n) };
      }
      case 'string':
        return stringNode(schema);
      case 'object':
        return this.#object(schema, depth);
      case 'array':
        return this.#array(schema, depth);
      case 'any':
        return { kind: 'text', minLength: 0, maxLength: undefined, free: true };
      default:
        return undefined;
    }
  }

  /** The schema a property `name` of this object schema must satisfy. */
  #propertySchema(schema: Schema, name: string): unknown {
    const props = isSchema(schema.properties) ? schema.properties : {};
    if (Object.hasOwn(props, name)) return props[name];
    if (isSchema(schema.patternProperties)) {
      for (const [pattern, sub] of Object.entries(schema.patternProperties)) {
        try {
          if (new RegExp(pattern, 'u').test(name)) return sub;
        } catch {
          // An invalid pattern matches nothing.
        }
      }
    }
    return schema.additionalProperties ?? true;
  }

  #object(schema: Schema, depth: number): ObjectNode | undefined {
    const props = isSchema(schema.properties) ? schema.properties : {};
    const required = Array.isArray(schema.required)
      ? schema.required.filter((name): name is string => typeof name === 'string')
      : [];
    const wanted = new Set(required);
    // Declared order first (what a model writes), then required names declared nowhere.
    const names = [
      ...Object.keys(props).filter((name) => wanted.has(name)),
      ...[...wanted].filter((name) => !Object.hasOwn(props, name)),
    ];
    const maxProperties = numberOr(schema.maxProperties, Number.POSITIVE_INFINITY);
    if (names.length > maxProperties) return undefined;
    const entries: Array<[string, InstanceNode]> = [];
    for (const name of names) {
      const node = this.build(this.#propertySchema(schema, name), depth + 1);
      if (!node) return undefined;
      entries.push([name, node]);
    }
    const optional: Array<[string, unknown]> = Object.keys(props)
      .filter((name) => !wanted.has(name))
      .map((name) => [name, props[name]]);
    const minProperties = numberOr(schema.minProperties, 0);
    while (entries.length < minProperties) {
      const next = optional.shift();
      if (!next) return undefined;
      const node = this.build(next[1], depth + 1);
      if (node) entries.push([next[0], node]);
    }
    return { kind: 'object', entries, optional, room: maxProperties - entries.length };
  }

  #array(schema: Schema, depth: number): ArrayNode | undefined {
    // Draft 2020-12 tuples are prefixItems + items; draft 7's are items[] + additionalItems.
    const tuple = Array.isArray(schema.items);
    const prefix: unknown[] = Array.isArray(schema.prefixItems)
      ? schema.prefixItems
      : tuple
        ? (schema.items as unknown[])
        : [];
    const rest = tuple ? (schema.additionalItems ?? true) : (schema.items ?? true);
    const at = (i: number) => (i < prefix.length ? prefix[i] : rest);
    const minItems = Math.max(0, numberOr(schema.minItems, 0));
    const maxItems = numberOr(schema.maxItems, Number.POSITIVE_INFINITY);
    if (minItems > maxItems || minItems > MAX_ITEMS) return undefined;
    const items: InstanceNode[] = [];
    for (let i = 0; i < minItems; i++) {
      const node = this.build(at(i), depth + 1);
      if (!node) return undefined;
      items.push(node);
    }
    return { kind: 'array', items, next: at(items.length), room: maxItems - items.length };
  }
}

/** An empty object: the arguments of a tool whose schema yields nothing usable. */
function emptyObject(): ObjectNode {
  return { kind: 'object', entries: [], optional: [], room: 0 };
}

/**
 * The smallest instance of `schema` (a tool's input schema): `{}` when no instance can be
 * built from it.
 */
export function minimalInstance(schema: unknown): InstanceNode {
  return new Builder(schema).build(schema, 0, true) ?? emptyObject();
}

/** The first free-text string of the instance, depth first (the order it is written in). */
export function firstFreeText(node: InstanceNode): TextNode | undefined {
  switch (node.kind) {
    case 'text':
      return node.free ? node : undefined;
    case 'object':
      for (const [, child] of node.entries) {
        const found = firstFreeText(child);
        if (found) return found;
      }
      return undefined;
    case 'array':
      for (const child of node.items) {
        const found = firstFreeText(child);
        if (found) return found;
      }
      return undefined;
    default:
      return undefined;
  }
}

function* walk(node: InstanceNode): Generator<ObjectNode | ArrayNode> {
  if (node.kind === 'object') {
    yield node;
    for (const [, child] of node.entries) yield* walk(child);
  } else if (node.kind === 'array') {
    yield node;
    for (const child of node.items) yield* walk(child);
  }
}

/**
 * Adds to `root` (in place) the least it takes to hold a free-text string — one more item of
 * the first array that can take one, else the first optional property that can be one — and
 * returns that string; undefined when the schema leaves no room for words.
 */
export function extendForWords(root: InstanceNode, schema: unknown): TextNode | undefined {
  const builder = new Builder(schema);
  // Arrays first: `command: []` is better filled than a `workdir` added beside it.
  for (const node of walk(root)) {
    if (node.kind !== 'array' || node.room < 1) continue;
    const item = builder.build(node.next, 1);
    const text = item && firstFreeText(item);
    if (item && text) {
      node.items.push(item);
      node.room -= 1;
      return text;
    }
  }
  for (const node of walk(root)) {
    if (node.kind !== 'object' || node.room < 1) continue;
    for (const [index, [name, propertySchema]] of node.optional.entries()) {
      const value = builder.build(propertySchema, 1);
      const text = value && firstFreeText(value);
      if (value && text) {
        node.entries.push([name, value]);
        node.optional.splice(index, 1);
        node.room -= 1;
        return text;
      }
    }
  }
  return undefined;
}
