/**
 * How many pages a PDF has, read from its bytes without a PDF library: what a request's
 * bound needs, since a provider bills a document per page. Page objects may sit in the
 * file as written or inside compressed object streams (PDF 1.5+, most files written
 * today), so both are read; the page tree's `/Count` is read too, and the larger figure
 * wins. Where pages could hide from it (an object stream it cannot inflate, an encrypted
 * file), it says it cannot tell rather than guess low.
 */

/** What zlib offers here (Node, Bun, Deno); undefined where there is none. */
type Inflate = (data: Uint8Array, options: { maxOutputLength: number }) => Uint8Array;

let inflateSync: Inflate | null | undefined;

function inflater(): Inflate | null {
  if (inflateSync === undefined) {
    const get = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
      ?.getBuiltinModule;
    const zlib = get?.('node:zlib') as { inflateSync?: Inflate } | undefined;
    inflateSync = typeof zlib?.inflateSync === 'function' ? zlib.inflateSync : null;
  }
  return inflateSync;
}

/** One inflated stream may be at most this large (a small file must not inflate to gigabytes). */
const MAX_STREAM_BYTES = 16 * 1024 * 1024;
/** And all of them together. */
const MAX_TOTAL_BYTES = 64 * 1024 * 1024;

/** `/Type /Page` (not `/Pages`), with any whitespace or comment between the two names. */
const PAGE_OBJECT = /\/Type(?:\s|%[^\r\n]*[\r\n])*\/Page(?![A-Za-z0-9#])/g;
const PAGE_COUNT = /\/Count\s+(\d{1,7})(?!\d)/g;
const STREAM_START = /\bstream(?:\r\n|\n|\r)/g;

/** Bytes → a string of one char per byte (latin1), the way PDF syntax is read. */
function latin1(bytes: Uint8Array): string {
  const NodeBuffer = (globalThis as { Buffer?: typeof Buffer }).Buffer;
  if (NodeBuffer)
    return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
  let out = '';
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}

/** Names may spell characters as `#xx` (`/P#61ge` is `/Page`): spelled out before matching. */
function withNamesDecoded(text: string): string {
  return text.includes('#')
    ? text.replace(/#([0-9A-Fa-f]{2})/g, (_, hex: string) =>
        String.fromCharCode(Number.parseInt(hex, 16)),
      )
    : text;
}

function pageFigures(text: string): { objects: number; count: number } {
  const decoded = withNamesDecoded(text);
  const objects = decoded.match(PAGE_OBJECT)?.length ?? 0;
  let count = 0;
  for (const match of decoded.matchAll(PAGE_COUNT)) count = Math.max(count, Number(match[1]));
  return { objects, count };
}

/**
 * The number of pages of the PDF in `bytes`, or undefined when it cannot be told for sure:
 * no page found at all, an object stream that is not Flate-compressed or does not inflate
 * (within 16 MB per stream, 64 MB in all), an encrypted file, or no zlib in this runtime
 * while the file has object streams.
 *
 * @example
 * countPdfPages(new Uint8Array(await readFile('report.pdf'))); // 12
 */
export function countPdfPages(bytes: Uint8Array): number | undefined {
  const text = latin1(bytes);
  if (/\/Encrypt\b/.test(text)) return undefined;
  let { objects, count } = pageFigures(text);
  let inflated = 0;
  STREAM_START.lastIndex = 0;
  for (let match = STREAM_START.exec(text); match; match = STREAM_START.exec(text)) {
    const start = match.index + match[0].length;
    const end = text.indexOf('endstream', start);
    if (end < 0) return undefined;
    STREAM_START.lastIndex = end;
    // The stream's dictionary: what follows the last `obj` keyword before it.
    const head = withNamesDecoded(text.slice(Math.max(0, match.index - 8192), match.index));
    const dict = head.slice(head.lastIndexOf('obj') + 3);
    const filters = /\/Filter\s*(\[[^\]]*\]|\/[A-Za-z0-9]+)/
      .exec(dict)?.[1]
      ?.replace(/[\s[\]]/g, '');
    const inflate = inflater();
    if (filters !== '/FlateDecode' || !inflate) {
      // Images and other streams hold no objects; an object stream we cannot read might.
      if (/\/ObjStm\b/.test(dict)) return undefined;
      continue;
    }
    // Every Flate stream is read, not only those marked as object streams: a page hidden
    // in a stream whose dictionary we misread is still found (a false find only adds).
    let content: Uint8Array;
    try {
      content = inflate(bytes.subarray(start, end), {
        maxOutputLength: Math.min(MAX_STREAM_BYTES, MAX_TOTAL_BYTES - inflated),
      });
    } catch (error) {
      // Too large to inflate (a bomb) or unreadable where objects may be: cannot tell.
      if (error instanceof RangeError || /\/ObjStm\b/.test(dict)) return undefined;
      continue;
    }
    inflated += content.length;
    if (inflated >= MAX_TOTAL_BYTES) return undefined;
    const inner = pageFigures(latin1(content));
    objects += inner.objects;
    count = Math.max(count, inner.count);
  }
  const pages = Math.max(objects, count);
  return pages > 0 ? pages : undefined;
}
