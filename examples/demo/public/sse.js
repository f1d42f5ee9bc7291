// @ts-check
/**
 * A small Server-Sent Events parser for fetch() bodies (EventSource cannot POST).
 * Follows the WHATWG rules: lines end in CRLF, LF or CR (a CR at the end of one chunk and
 * an LF at the start of the next are one line end); `event:` names the event, `data:`
 * lines join with "\n", lines starting with ":" are comments, a blank line dispatches.
 */

/**
 * @typedef {{ event: string, data: string }} SseMessage
 */

/**
 * Reads `body` and calls `onMessage` for every event. Resolves at the end of the stream;
 * rejects with the fetch's AbortError when the request is aborted.
 * @param {ReadableStream<Uint8Array>} body
 * @param {(message: SseMessage) => void} onMessage
 */
export async function readSse(body, onMessage) {
  const decoder = /** @type {TransformStream<Uint8Array, string>} */ (
    /** @type {unknown} */ (new TextDecoderStream())
  );
  const reader = body.pipeThrough(decoder).getReader();
  const parser = createSseParser(onMessage);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(value);
    }
  } finally {
    reader.releaseLock();
  }
}

/** @param {(message: SseMessage) => void} onMessage */
export function createSseParser(onMessage) {
  let buffer = '';
  let skipLeadingLf = false;
  let event = '';
  /** @type {string[]} */
  let data = [];

  /** @param {string} line */
  function onLine(line) {
    if (line === '') {
      if (data.length > 0) onMessage({ event: event || 'message', data: data.join('\n') });
      event = '';
      data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    // `id` and `retry` matter only to EventSource's reconnection, which fetch does not do.
  }

  return {
    /** @param {string} text */
    feed(text) {
      if (skipLeadingLf && text.startsWith('\n')) text = text.slice(1);
      skipLeadingLf = false;
      buffer += text;
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const ch = buffer[i];
        if (ch !== '\n' && ch !== '\r') continue;
        onLine(buffer.slice(start, i));
        if (ch === '\r') {
          if (i + 1 === buffer.length) skipLeadingLf = true;
          else if (buffer[i + 1] === '\n') i++;
        }
        start = i + 1;
      }
      buffer = buffer.slice(start);
    },
  };
}
