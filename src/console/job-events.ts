// Server-Sent Events for the job page: the job's fragment is sent again whenever it changes, until
// every task has settled. The server watches the job (woken by the hub's settle events, re-checked every
// second for per-node progress); the browser only listens, it never polls.
import type { ServerResponse } from 'node:http';
import type { Clock } from '../shared/clock.ts';

export interface JobStreamSource {
  /** The job's current fragment and whether it is final; null when the job is gone (pruned). */
  load(): Promise<{ fragment: string; settled: boolean } | null>;
}

export interface JobStreamLimits {
  /** Streams open at once in all (default 500). */
  readonly maxStreams: number;
  /** Streams open at once per session (default 6, a browser's connections per host). */
  readonly maxPerSession: number;
  /** A stream ends after this long whatever happens (the browser reconnects if the job is still live). */
  readonly maxLifetimeMs: number;
  /** Re-check period between settle events (default 1 s). */
  readonly tickMs: number;
}

const DEFAULTS: JobStreamLimits = { maxStreams: 500, maxPerSession: 6, maxLifetimeMs: 15 * 60_000, tickMs: 1000 };

/** A comment line every this often keeps idle proxies from closing the stream. */
const KEEPALIVE_MS = 15_000;

export class JobEventStreams {
  readonly #clock: Clock;
  readonly #limits: JobStreamLimits;
  readonly #open = new Map<ServerResponse, string>();
  readonly #waiters = new Set<() => void>();
  #closed = false;

  constructor(clock: Clock, limits: Partial<JobStreamLimits> = {}) {
    this.#clock = clock;
    this.#limits = { ...DEFAULTS, ...limits };
  }

  /** Something about some job changed (the hub settled tasks): every stream re-renders now. */
  wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Why a new stream for `sessionKey` cannot open now, or undefined when it can. */
  refusal(sessionKey: string): string | undefined {
    if (this.#closed) return 'the control plane is shutting down';
    if (this.#open.size >= this.#limits.maxStreams) return 'too many live views open on this server';
    let mine = 0;
    for (const k of this.#open.values()) if (k === sessionKey) mine++;
    return mine >= this.#limits.maxPerSession ? 'too many live views open in this session' : undefined;
  }

  /** Serves one stream on `res` (the caller checked refusal() and the job's owner). Never rejects. */
  async serve(res: ServerResponse, sessionKey: string, source: JobStreamSource, headers: Readonly<Record<string, string>>): Promise<void> {
    res.writeHead(200, { ...headers, 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    res.socket?.setNoDelay(true);
    this.#open.set(res, sessionKey);
    let open = true;
    res.on('close', () => {
      open = false;
      this.#open.delete(res);
    });
    const started = this.#clock.now();
    let sent = '';
    let lastWrite = started;
    try {
      // Retry after 2 s if the connection drops while the job is live.
      res.write('retry: 2000\n\n');
      while (open && !this.#closed && this.#clock.now() - started < this.#limits.maxLifetimeMs) {
        const now = await source.load();
        if (!open) break;
        if (!now) {
          res.write('event: gone\ndata: {}\n\n');
          break;
        }
        if (now.fragment !== sent) {
          res.write(`event: job\ndata: ${JSON.stringify(now.fragment)}\n\n`);
          sent = now.fragment;
          lastWrite = this.#clock.now();
        } else if (this.#clock.now() - lastWrite >= KEEPALIVE_MS) {
          res.write(': keep-alive\n\n');
          lastWrite = this.#clock.now();
        }
        if (now.settled) {
          res.write('event: settled\ndata: {}\n\n');
          break;
        }
        await this.#nextWake();
      }
    } catch {
      // The store failed or the socket broke: end this stream; the browser reconnects.
    } finally {
      this.#open.delete(res);
      res.end();
    }
  }

  /** Ends every stream. Idempotent. */
  close(): void {
    this.#closed = true;
    this.wake();
    for (const res of this.#open.keys()) res.end();
  }

  #nextWake(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, this.#limits.tickMs);
      this.#waiters.add(done);
    });
  }
}
