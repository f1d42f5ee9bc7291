// Reading JSON Schemas from request bodies: resolving local `$ref`s, folding `allOf` into one
// schema (constraints tighten, properties unite), and the small accessors the instance
// builder needs. Nothing here trusts the schema: depth is capped and anything unusable comes
// back as `false` (never holds) or `{}` (constrains nothing), never as an exception.

/** A schema object (boolean schemas are handled by the callers). */
export type Schema = Record<string, unknown>;

/** Nesting (and `$ref` hops) beyond this make a branch unworkable: no hostile schema loops. */
export const MAX_DEPTH = 48;

export function isSchema(value: unknown): value is Schema {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function omit(schema: Schema, ...keys: string[]): Schema {
  const out: Schema = { ...schema };
  for (const key of keys) delete out[key];
  return out;
}

/** The target of a local `$ref` (`#`, `#/$defs/x`, `#/definitions/x`, any JSON pointer). */
function deref(root: unknown, ref: string): unknown {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    let token: string;
    try {
      token = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
    } catch {
      return undefined;
    }
    if (Array.isArray(node)) node = node[Number(token)];
    else if (isSchema(node) && Object.hasOwn(node, token)) node = node[token];
    else return undefined;
  }
  return node;
}

export function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

export function typeList(value: unknown): string[] | undefined {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((t): t is string => typeof t === 'string');
  return undefined;
}

/** Merges two schemas that must both hold (allOf): constraints tighten, properties unite. */
export function merge(a: Schema, b: Schema): Schema {
  const out: Schema = { ...a };
  for (const [key, value] of Object.entries(b)) {
    if (!Object.hasOwn(out, key)) {
      out[key] = value;
      continue;
    }
    const prev = out[key];
    switch (key) {
      case 'properties': {
        const props: Schema = isSchema(prev) ? { ...prev } : {};
        if (isSchema(value)) {
          for (const [name, schema] of Object.entries(value)) {
            props[name] = Object.hasOwn(props, name) ? { allOf: [props[name], schema] } : schema;
          }
        }
        out[key] = props;
        break;
      }
      case 'required':
        out[key] = [
          ...new Set([
            ...(Array.isArray(prev) ? prev : []),
            ...(Array.isArray(value) ? value : []),
          ]),
        ];
        break;
      case 'type': {
        const left = typeList(prev) ?? [];
        const right = new Set(typeList(value) ?? []);
        // integer satisfies number: keep the narrower one.
        out[key] = left.flatMap((t) => {
          if (right.has(t)) return [t];
          if (t === 'number' && right.has('integer')) return ['integer'];
          if (t === 'integer' && right.has('number')) return ['integer'];
          return [];
        });
        break;
      }
      case 'enum': {
        const allowed = new Set((Array.isArray(value) ? value : []).map((v) => JSON.stringify(v)));
        out[key] = (Array.isArray(prev) ? prev : []).filter((v) => allowed.has(JSON.stringify(v)));
        break;
      }
      case 'minimum':
      case 'exclusiveMinimum':
      case 'minLength':
      case 'minItems':
      case 'minProperties':
        out[key] =
          typeof prev === 'number' && typeof value === 'number' ? Math.max(prev, value) : prev;
        break;
      case 'maximum':
      case 'exclusiveMaximum':
      case 'maxLength':
      case 'maxItems':
      case 'maxProperties':
        out[key] =
          typeof prev === 'number' && typeof value === 'number' ? Math.min(prev, value) : prev;
        break;
      case 'additionalProperties':
      case 'items':
        if (prev === false || value === false) out[key] = false;
        else if (isSchema(prev) && isSchema(value)) out[key] = { allOf: [prev, value] };
        else if (isSchema(value)) out[key] = value;
        break;
      default:
        // Anything else (descriptions, a second anyOf…): the first one stands.
        break;
    }
  }
  return out;
}

/**
 * The schema with its `$ref` and `allOf` folded in: one plain schema (anyOf / oneOf left for
 * the builder), `false` when it can never hold.
 */
export function flatten(schema: unknown, root: unknown, depth: number): Schema | false {
  if (schema === false) return false;
  if (!isSchema(schema)) return {};
  if (depth > MAX_DEPTH) return false;
  let out = omit(schema, '$ref', 'allOf');
  const parts: unknown[] = [];
  if (typeof schema.$ref === 'string') {
    // A ref the fake cannot resolve (remote, $anchor) constrains nothing it can check.
    const target = deref(root, schema.$ref);
    if (target !== undefined) parts.push(target);
  }
  if (Array.isArray(schema.allOf)) parts.push(...schema.allOf);
  for (const part of parts) {
    const flat = flatten(part, root, depth + 1);
    if (flat === false) return false;
    out = merge(out, flat);
  }
  return out;
}
