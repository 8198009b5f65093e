// Test helper: an edge node speaking the wire protocol by hand — what a node token holder can send,
// honest or not — and a polling wait.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { TestContext } from 'node:test';
import type { FanoutHub } from '../../src/fanout/fanout-hub.ts';
import type { AckResponse, StreamLine, WireEntry } from '../../src/fanout/wire.ts';

export async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Serves `hub` alone on a loopback port (its /edge/ routes, 404 for the rest); at the test's end closes
 * the hub, the server, then `cleanup` (the store, the temp dir). Returns the base URL.
 */
export async function serveHub(t: Pick<TestContext, 'after'>, hub: FanoutHub, cleanup: () => Promise<void> | void): Promise<string> {
  const server = createServer((req, res) => {
    if (!hub.route(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(async () => {
    await hub.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await cleanup();
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

export class RawNode {
  readonly lines: StreamLine[] = [];
  /** The control plane's base URL. */
  readonly url: string;
  readonly #headers: Record<string, string>;
  readonly #abort = new AbortController();
  constructor(controlPlane: string, id: string, token: string) {
    this.url = controlPlane;
    this.#headers = { Authorization: `Bearer ${token}`, 'X-Edge-Node': id };
  }

  /** Opens the stream at the log's end (or after `after`, a resume) and keeps reading it until the test ends. */
  async stream(t: Pick<TestContext, 'after'>, after = -1): Promise<void> {
    t.after(() => this.#abort.abort());
    const res = await fetch(`${this.url}/edge/v1/stream?after=${after}`, { headers: this.#headers, signal: this.#abort.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    void (async () => {
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        buf += value;
        for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
          this.lines.push(JSON.parse(buf.slice(0, nl)) as StreamLine);
          buf = buf.slice(nl + 1);
        }
      }
    })();
    await until('hello', () => this.lines.length > 0);
  }

  /** Hangs up its stream (a node leaving this control plane, e.g. to fail over to another). */
  close(): void {
    this.#abort.abort();
  }

  entries(): WireEntry[] {
    return this.lines.flatMap((l) => (l.t === 'entry' ? [l.e] : []));
  }

  /** The highest seq the stream has told this node about. */
  seenSeq(): number {
    let seq = 0;
    for (const l of this.lines) seq = Math.max(seq, l.t === 'entry' ? l.e.seq : l.t === 'hello' ? l.lastSeq : l.seq);
    return seq;
  }

  async ack(body: unknown): Promise<{ status: number; json: AckResponse & { error?: string } }> {
    const res = await fetch(`${this.url}/edge/v1/ack`, {
      method: 'POST',
      headers: { ...this.#headers, 'Content-Type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as AckResponse & { error?: string } };
  }
}
