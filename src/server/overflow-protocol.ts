// Which protocol a request refused by Node's HTTP parser (HPE_HEADER_OVERFLOW) spoke, so its answer
// uses that protocol's envelope although the request line never reached JavaScript.

/** The legacy endpoint (TENCENT-API §1.1: "The path is always /v2/index.php"). */
const LEGACY_PATH = '/v2/index.php';

/**
 * Node exposes only `err.rawPacket`, the last chunk read (at most 64 KiB); the URL seen so far stays in
 * the parser's native memory. A request over the 64 KiB limit has spanned at least two chunks, so its
 * request line is usually gone. From what is left, in order:
 * 1. a request line in the chunk (`GET /v2/index.php?…`; the last one, if a keep-alive chunk holds two): its path;
 * 2. otherwise the query keys of the URL part of the chunk: legacy v2 interface parameters start with a
 *    lower-case letter (`urls.0`, `dirs.0`, `hosts.0`; §1.2 "Interface parameters start with a lowercase
 *    letter"), API 3.0 ones never do (`Urls.0`, `Targets.0`, `Filters.0.Name`). One key after `&` or
 *    `?` that starts lower-case means legacy; a key cut by the chunk's start is not looked at;
 * 3. otherwise API 3.0, the protocol at "/".
 * A legacy request that overflows in its header fields (not its URL) therefore gets API 3.0's envelope.
 */
export function overflowedProtocol(rawPacket: unknown): 'legacy' | 'api3' {
  if (!Buffer.isBuffer(rawPacket)) return 'api3';
  // latin1: one char per byte, and every byte of a request line or header block survives as is.
  const text = rawPacket.toString('latin1');
  let path: string | undefined;
  // A pipelined request may follow the previous one's body directly, without a line break.
  for (const m of text.matchAll(/(?<![A-Z])(?:GET|POST|HEAD|PUT|DELETE|OPTIONS|PATCH) (\/[^\s?#]*)/g)) path = m[1];
  if (path !== undefined) return path === LEGACY_PATH ? 'legacy' : 'api3';
  // The URL part: up to the request line's end; a chunk of header lines only (CRLF, no URL end) has none.
  const end = text.indexOf(' HTTP/1.');
  const url = end !== -1 ? text.slice(0, end) : text.includes('\n') ? '' : text;
  return /[?&][a-z][^=&\s]*=/.test(url) ? 'legacy' : 'api3';
}

/** Whether the refused request was a HEAD, as far as `rawPacket` still shows its request line (its answer then has no body). */
export function overflowedHead(rawPacket: unknown): boolean {
  return Buffer.isBuffer(rawPacket) && /(?<![A-Z])HEAD \//.test(rawPacket.toString('latin1'));
}
