// Server-Sent Events for the console's live views (the job page until its tasks settle, the fleet page
// while it is open): the view's HTML fragment is sent again whenever it changes. The server watches
// (woken by the hub's events for the stream's topic, re-checked every tick); the browser only listens,
// it never polls.
import type { ServerResponse } from 'node:http';
import type { Clock } from '../shared/clock.ts';

export interface LiveSource {
  /** The view's current fragment and whether it is final; null when its subject is gone (a pruned job). */
  load(): Promise<{ fragment: string; settled: boolean } | null>;
}

/** What wakes a stream: `jobs` on settled tasks, `fleet` on node acks. */
export type LiveTopic = 'jobs' | 'fleet';

export interface LiveStream {
  readonly topic: LiveTopic;
  /** The SSE event name carrying each fragment (the page's script listens for it). */
  readonly event: string;
  readonly source: LiveSource;
  /** At least this long between two loads (ms, default 0): acks come in storms, one render covers them. */
  readonly minGapMs?: number;
}

export interface LiveStreamLimits {
  /** Streams open at once in all (default 500). */
  readonly maxStreams: number;
  /** Streams open at once per session (default 6, a browser's connections per host). */
  readonly maxPerSession: number;
  /** A stream ends after this long whatever happens (the browser reconnects if the view is still live). */
  readonly maxLifetimeMs: number;
  /** Re-check period between wake-ups (default 1 s). */
  readonly tickMs: number;
}

const DEFAULTS: LiveStreamLimits = { maxStreams: 500, maxPerSession: 6, maxLifetimeMs: 15 * 60_000, tickMs: 1000 };

/** A comment line every this often keeps idle proxies from closing the stream. */
const KEEPALIVE_MS = 15_000;

/** One open stream's wake-up state: a wake while it renders is kept, not lost, until it next waits. */
interface Waiter {
  woken: boolean;
  resolve: (() => void) | undefined;
}

export class LiveEventStreams {
  readonly #clock: Clock;
  readonly #limits: LiveStreamLimits;
  readonly #open = new Map<ServerResponse, string>();
  readonly #waiters: Record<LiveTopic, Set<Waiter>> = { jobs: new Set(), fleet: new Set() };
  #closed = false;

  constructor(clock: Clock, limits: Partial<LiveStreamLimits> = {}) {
    this.#clock = clock;
    this.#limits = { ...DEFAULTS, ...limits };
  }

  /** Something on `topic` changed: its streams re-render now. */
  wake(topic: LiveTopic): void {
    for (const w of this.#waiters[topic]) {
      w.woken = true;
      w.resolve?.();
    }
  }

  /** Why a new stream for `sessionKey` cannot open now, or undefined when it can. */
  refusal(sessionKey: string): string | undefined {
    if (this.#closed) return 'the control plane is shutting down';
    if (this.#open.size >= this.#limits.maxStreams) return 'too many live views open on this server';
    let mine = 0;
    for (const k of this.#open.values()) if (k === sessionKey) mine++;
    return mine >= this.#limits.maxPerSession ? 'too many live views open in this session' : undefined;
  }

  /** Serves one stream on `res` (the caller checked refusal() and the viewer's rights). Never rejects. */
  async serve(res: ServerResponse, sessionKey: string, stream: LiveStream, headers: Readonly<Record<string, string>>): Promise<void> {
    res.writeHead(200, { ...headers, 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    res.socket?.setNoDelay(true);
    this.#open.set(res, sessionKey);
    const waiter: Waiter = { woken: false, resolve: undefined };
    const waiters = this.#waiters[stream.topic];
    waiters.add(waiter);
    let open = true;
    res.on('close', () => {
      open = false;
      this.#open.delete(res);
      waiter.resolve?.();
    });
    const started = this.#clock.now();
    let sent = '';
    let lastWrite = started;
    try {
      // Retry after 2 s if the connection drops while the view is live.
      res.write('retry: 2000\n\n');
      while (open && !this.#closed && this.#clock.now() - started < this.#limits.maxLifetimeMs) {
        const loadedAt = this.#clock.now();
        waiter.woken = false;
        const now = await stream.source.load();
        if (!open) break;
        if (!now) {
          res.write('event: gone\ndata: {}\n\n');
          break;
        }
        if (now.fragment !== sent) {
          res.write(`event: ${stream.event}\ndata: ${JSON.stringify(now.fragment)}\n\n`);
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
        await this.#nextWake(waiter);
        const gap = (stream.minGapMs ?? 0) - (this.#clock.now() - loadedAt);
        if (gap > 0 && open && !this.#closed) await new Promise((r) => setTimeout(r, gap));
      }
    } catch {
      // The store failed or the socket broke: end this stream; the browser reconnects.
    } finally {
      waiters.delete(waiter);
      this.#open.delete(res);
      res.end();
    }
  }

  /** Ends every stream. Idempotent. */
  close(): void {
    this.#closed = true;
    this.wake('jobs');
    this.wake('fleet');
    for (const res of this.#open.keys()) res.end();
  }

  /** Until the stream's topic is woken (or was, while it rendered) or a tick passes. */
  #nextWake(w: Waiter): Promise<void> {
    if (w.woken || this.#closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.#limits.tickMs);
      function done(): void {
        clearTimeout(timer);
        w.resolve = undefined;
        resolve();
      }
      w.resolve = done;
    });
  }
}
