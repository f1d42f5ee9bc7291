/**
 * Text as the ledger stores it. PostgreSQL cannot store two things a JavaScript string can
 * hold: a NUL (U+0000: `text` refuses it, `jsonb` refuses `\u0000`) and a lone UTF-16
 * surrogate (`jsonb` refuses it; `text` silently turns it into U+FFFD, so two different
 * ids would become one). Such characters are written as a JSON-style escape, `\uXXXX`
 * (lower-case hex), and so the escape stays unambiguous, a backslash followed by `u` is
 * written `\u005c` (then the `u`). Nothing else changes: text without a NUL, a lone
 * surrogate or the two characters `\u` is stored as it is. The mapping is one-to-one, so
 * two different scope ids never share a row, and `unescapeText()` gives the original back.
 */

/** A NUL, a lone surrogate, or a backslash that starts `\u`. */
const NEEDS_ESCAPE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching a NUL is the point.
  /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]|\\(?=u)/g;

const ESCAPED = /\\u([0-9a-f]{4})/g;

function hex(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** The text as the ledger stores it (unchanged unless it holds what Postgres cannot store). */
export function escapeText(value: string): string {
  // The common case, checked without a regular expression's allocation.
  if (!value.includes('\u0000') && !value.includes('\\u') && value.isWellFormed()) return value;
  return value.replace(NEEDS_ESCAPE, hex);
}

/** The original text of a value `escapeText()` stored. */
export function unescapeText(stored: string): string {
  if (!stored.includes('\\u')) return stored;
  return stored.replace(ESCAPED, (_, code: string) =>
    String.fromCharCode(Number.parseInt(code, 16)),
  );
}
