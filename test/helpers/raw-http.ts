// Raw-socket HTTP/1.1 for framing tests: send exact bytes, read back every response the server sends
// (Content-Length, chunked or close-delimited bodies) and whether it closed the connection.

import net from 'node:net';

export interface RawResponse {
  readonly status: number;
  /** Lower-cased field names; repeated fields joined with ", ". */
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface RawExchange {
  readonly responses: RawResponse[];
  /** The server closed (or reset) the connection before `timeoutMs`. */
  readonly closed: boolean;
}

/**
 * Writes `chunks` (in order, `gapMs` apart) on one connection and collects responses until `expect` of
 * them arrived (then ends the connection), the server closes it, or `timeoutMs` passes.
 * `head` marks requests whose responses carry no body (HEAD), in response order.
 */
export function rawExchange(
  port: number,
  chunks: readonly (string | Buffer)[],
  options: { expect?: number; timeoutMs?: number; gapMs?: number; head?: readonly boolean[]; localAddress?: string } = {},
): Promise<RawExchange> {
  const expect = options.expect ?? 1;
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
    let buf = Buffer.alloc(0);
    const responses: RawResponse[] = [];
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ responses, closed });
    };
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 3000);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const parsed = parseResponse(buf, options.head?.[responses.length] ?? false, false);
        if (parsed === undefined) break;
        responses.push(parsed.response);
        buf = buf.subarray(parsed.used);
      }
      if (responses.length >= expect) finish(false);
    });
    const onClose = (): void => {
      const last = parseResponse(buf, options.head?.[responses.length] ?? false, true);
      if (last !== undefined) responses.push(last.response);
      finish(true);
    };
    socket.on('end', onClose);
    socket.on('close', onClose);
    socket.on('error', () => finish(true));
    socket.on('connect', () => {
      void (async () => {
        for (const c of chunks) {
          if (socket.destroyed) return;
          socket.write(c);
          if (options.gapMs) await new Promise((r) => setTimeout(r, options.gapMs));
        }
      })();
    });
  });
}

/** One response at the start of `buf`, or undefined when it is not complete yet. */
function parseResponse(buf: Buffer, head: boolean, eof: boolean): { response: RawResponse; used: number } | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? NaN);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const k = line.slice(0, colon).trim().toLowerCase();
    const v = line.slice(colon + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  let at = end + 4;
  if (head || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    return { response: { status, headers, body: '' }, used: at };
  }
  if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
    const parts: Buffer[] = [];
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at);
      if (lineEnd < 0) return undefined;
      const size = parseInt(buf.subarray(at, lineEnd).toString('latin1'), 16);
      if (buf.length < lineEnd + 2 + size + 2) return undefined;
      if (size === 0) {
        const trailerEnd = buf.indexOf('\r\n', lineEnd + 2);
        if (trailerEnd < 0) return undefined;
        return { response: { status, headers, body: Buffer.concat(parts).toString() }, used: trailerEnd + 2 };
      }
      parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (buf.length < at + n) return undefined;
    return { response: { status, headers, body: buf.subarray(at, at + n).toString() }, used: at + n };
  }
  return eof ? { response: { status, headers, body: buf.subarray(at).toString() }, used: buf.length } : undefined;
}
