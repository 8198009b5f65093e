// HTTP/1.1 pipelining for batches of small requests to one server (the Varnish driver's applyBatch):
// pre-serialised requests written back to back on a few raw sockets, answers read in order.
// A full HTTP client costs more CPU per purge than Varnish spends executing it (bench/varnish-bench.ts).
import { connect, type Socket } from 'node:net';

export interface PipelinedRequest {
  readonly method: string;
  /** Origin-form target (path + query, already encoded). */
  readonly path: string;
  /** Header values are written as latin1 bytes; none may contain CR or LF. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface PipelinedAnswer {
  readonly status: number;
  readonly reason: string;
  /** Lower-cased names; a repeated header keeps its first value. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface PipelineOptions {
  readonly host: string;
  readonly port: number;
  /** Sockets used at once (default 4). */
  readonly connections?: number;
  /** Requests outstanding per socket (default 32). */
  readonly window?: number;
  /** Fails the batch when a socket gets no answer for this long. */
  readonly timeoutMs: number;
}

/** Thrown for I/O failures, timeouts and unparseable answers; nothing is known about unanswered requests. */
export class PipelineError extends Error {
  override readonly name = 'PipelineError';
}

export function serialise(r: PipelinedRequest): Buffer {
  if (/\s/.test(r.method + r.path)) throw new TypeError(`unsafe request line ${JSON.stringify(`${r.method} ${r.path}`)}`);
  let head = `${r.method} ${r.path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(r.headers)) {
    if (/[\s:]/.test(k) || /[\r\n]/.test(v)) throw new TypeError(`unsafe header ${JSON.stringify(k)}`);
    head += `${k}: ${v}\r\n`;
  }
  return Buffer.from(`${head}\r\n`, 'latin1');
}

const CRLF2 = Buffer.from('\r\n\r\n');

/** Parses answers off one connection; `feed` returns every answer completed by `chunk`. */
class AnswerParser {
  #buf: Buffer = Buffer.alloc(0);

  feed(chunk: Buffer): PipelinedAnswer[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: PipelinedAnswer[] = [];
    for (;;) {
      const end = this.#buf.indexOf(CRLF2);
      if (end < 0) return out;
      const lines = this.#buf.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0] ?? '');
      if (m === null) throw new PipelineError(`not an HTTP/1.1 answer: ${JSON.stringify(lines[0])}`);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const name = line.slice(0, colon).trim().toLowerCase();
        headers[name] ??= line.slice(colon + 1).trim();
      }
      if (headers['transfer-encoding'] !== undefined) throw new PipelineError('chunked answers are not expected here');
      const length = Number(headers['content-length'] ?? '0');
      if (!Number.isInteger(length) || length < 0) throw new PipelineError(`bad Content-Length ${headers['content-length']}`);
      if (this.#buf.length < end + 4 + length) return out;
      this.#buf = this.#buf.subarray(end + 4 + length);
      out.push({ status: Number(m[1]), reason: m[2] ?? '', headers });
    }
  }
}

/** Sends every request and resolves with the answers in request order; rejects with a PipelineError. */
export async function pipeline(requests: readonly PipelinedRequest[], o: PipelineOptions): Promise<PipelinedAnswer[]> {
  const wire = requests.map(serialise);
  const answers = new Array<PipelinedAnswer>(requests.length);
  const connections = Math.max(1, Math.min(o.connections ?? 4, requests.length));
  const window = o.window ?? 32;
  const sockets = new Set<Socket>();
  const lane = (first: number) =>
    new Promise<void>((resolve, reject) => {
      // This socket's share: requests first, first + connections, …
      const mine: number[] = [];
      for (let i = first; i < requests.length; i += connections) mine.push(i);
      let sent = 0;
      let answered = 0;
      const parser = new AnswerParser();
      const socket = connect({ host: o.host, port: o.port, noDelay: true });
      sockets.add(socket);
      const fail = (e: unknown) => {
        socket.destroy();
        reject(e instanceof PipelineError ? e : new PipelineError(e instanceof Error ? e.message : String(e)));
      };
      const fill = () => {
        const upto = Math.min(mine.length, answered + window);
        if (sent >= upto) return;
        socket.write(Buffer.concat(mine.slice(sent, upto).map((i) => wire[i]!)));
        sent = upto;
      };
      socket.setTimeout(o.timeoutMs, () => fail(new PipelineError(`no answer within ${o.timeoutMs} ms`)));
      socket.on('connect', fill);
      socket.on('data', (chunk: Buffer) => {
        try {
          for (const a of parser.feed(chunk)) {
            if (answered >= mine.length) throw new PipelineError('more answers than requests');
            answers[mine[answered++]!] = a;
          }
        } catch (e) {
          fail(e);
          return;
        }
        if (answered === mine.length) {
          socket.end();
          resolve();
        } else fill();
      });
      socket.on('error', fail);
      socket.on('close', () => {
        if (answered < mine.length) fail(new PipelineError(`connection closed after ${answered} of ${mine.length} answers`));
      });
    });
  try {
    await Promise.all(Array.from({ length: connections }, (_, i) => lane(i)));
  } finally {
    for (const s of sockets) s.destroy();
  }
  return answers;
}
