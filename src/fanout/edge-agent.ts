// The edge side of the fan-out: streams the purge log from the control plane, applies it in order to
// an EdgeTarget (the built-in cache, or a driver for another cache), acks, and keeps the lease.
import { request, type IncomingMessage } from 'node:http';
import type { Clock } from '../shared/clock.ts';
import { AckChannel, AckChannelUnsupported } from './ack-channel.ts';
import type { Logger } from '../shared/logger.ts';
import type { ExecutedAs } from '../purge/types.ts';
import {
  FAIL_TYPES, MAX_ACK_REPORTS, MAX_ACK_RESULTS, MAX_FAIL_MESSAGE, MAX_REPORT_NOTE,
  type AckRequest, type AckResponse, type ExecutionReport, type FailType, type StreamLine, type TaskResult, type WireEntry,
} from './wire.ts';

export type PrefetchOutcome = { readonly ok: true } | { readonly ok: false; readonly failType: string; readonly failMessage: string };

/** What a target executed for one purge entry, as it tells the agent (see EdgeTarget.apply). */
export interface AppliedEntry {
  /** The entry's method, or what the cache did instead (e.g. `delete` for a Varnish ban). */
  readonly executedAs: ExecutedAs;
  /** Objects the cache matched, only where it counts them; absent when it cannot tell. */
  readonly matched?: number;
  readonly note?: string;
  /** The entry had been applied already (a replay): nothing to report. */
  readonly alreadyApplied?: true;
}

/** What an agent drives. Members are called in log order and never concurrently, except prefetch. */
export interface EdgeTarget {
  /** The cache's driver name (wire DRIVER_NAME: `builtin`, `varnish`, `nginx`), sent with every ack. */
  readonly driver: string;
  /** Highest seq applied. */
  readonly appliedSeq: number;
  /**
   * Applies one purge entry (seq > appliedSeq). A target that executes it before returning (the built-in
   * cache: synchronous and cheap, DESIGN invariant 5) returns what it executed. One that executes later
   * (DriverTarget) returns nothing and hands it over through takeReports() once its cache has done it.
   */
  apply(entry: WireEntry): AppliedEntry | void;
  /**
   * Optional: what was executed since the last call, oldest first, each entry once, every seq at or below
   * appliedSeq as read right after the call. The agent sends them with its next ack.
   */
  takeReports?(): ExecutionReport[];
  /** Marks `seq` applied although nothing up to it concerned this node. */
  advanceTo(seq: number): void;
  /** Starts a prefetch; the entry counts as applied once started, its outcome is reported later. */
  prefetch(entry: WireEntry): Promise<PrefetchOutcome>;
  /**
   * Empties the cache and sets appliedSeq = seq: the node fell behind the retained log, or it starts at
   * the log's end (first connection) and must not keep what it stored before.
   */
  dropAll(seq: number): void;
  /** Hits may be served until `untilMs` (DESIGN invariant 4). */
  renewLease(untilMs: number): void;
}

export interface EdgeAgentOptions {
  /**
   * Control plane base URL, e.g. http://127.0.0.1:8080, or several replicas' URLs on one store: the agent
   * streams from one at a time and moves to the next when its stream fails or goes silent.
   */
  readonly controlPlane: string | readonly string[];
  readonly nodeId: string;
  readonly token: string;
  readonly target: EdgeTarget;
  readonly clock: Clock;
  readonly logger: Logger;
  /** A silent stream for this long is considered dead and reconnected. */
  readonly stallMs?: number;
}

export class EdgeAgent {
  readonly #o: EdgeAgentOptions;
  #res: IncomingMessage | undefined;
  #closed = false;
  /** Aborted by close(): cuts the stream, an ack in flight and the reconnect backoff short. */
  readonly #abort = new AbortController();
  #loop: Promise<void> | undefined;
  #acking: Promise<void> | undefined;
  #ackAgain = false;
  #ackedSeq = -1;
  /** The seq of the last ack sent (answered or not). */
  #sentSeq = -1;
  #results: TaskResult[] = [];
  /** Execution reports waiting for an ack; every one has a seq above the last ack's. */
  #reports: ExecutionReport[] = [];
  #leaseMs = 10_000;
  #lastAckAt = 0;
  #pendingLease: { seq: number; until: number } | undefined;
  #leaseTimer: NodeJS.Timeout | undefined;
  #connected = false;
  /**
   * The node has a place in the log (it started at its end, or was reset, or applied entries): it resumes
   * after its applied seq, even 0, instead of asking for the log's end again.
   */
  #positioned = false;
  #waiters = new Set<() => void>();
  /** The replicas in this node's own order (shuffled, so that nodes spread over them and fail over apart). */
  readonly #urls: readonly string[];
  /** Index in #urls of the replica streamed from (or tried next); acks go to it too. */
  #current = 0;
  /** The replica the last stream was opened on; -1 before the first. */
  #lastConnected = -1;
  #failovers = 0;
  /** Aborted when the stream ends: an ack stuck on a dead replica must not hold back acks to the next one. */
  #ackAbort = new AbortController();
  /** The ack channel to the replica streamed from (opened at the first ack, closed when the stream ends). */
  #channel: { readonly url: string; readonly open: Promise<AckChannel> } | undefined;
  /** Replicas that answered the channel's upgrade with 404 (older control planes): acks are posted to them. */
  readonly #noChannel = new Set<string>();

  constructor(options: EdgeAgentOptions) {
    this.#o = options;
    const urls = typeof options.controlPlane === 'string' ? [options.controlPlane] : [...options.controlPlane];
    if (urls.length === 0) throw new Error('EdgeAgent: no control-plane URL');
    this.#urls = shuffle(urls);
  }

  /** Connects and keeps reconnecting (exponential backoff with jitter) until close(). */
  start(): void {
    this.#loop ??= this.#run();
    this.#leaseTimer = setInterval(() => {
      // Renew before a quarter of the lease is left, even with nothing new to ack.
      if (this.#o.clock.now() - this.#lastAckAt >= this.#leaseMs / 4) this.#scheduleAck();
    }, 250);
    this.#leaseTimer.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#leaseTimer);
    this.#abort.abort();
    this.#res?.destroy();
    await this.#loop;
    await this.#acking;
    this.#dropChannel();
    for (const w of this.#waiters) w();
    this.#waiters.clear();
  }

  /** Acks soon: a target that applies asynchronously (a cache driver) calls it when its applied seq moved. */
  nudge(): void {
    this.#scheduleAck();
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** The control-plane URL the node streams from (or tries next). */
  get controlPlane(): string {
    return this.#urls[this.#current]!;
  }

  /** Streams opened on another replica than the one before (the `*_failovers_total` metrics). */
  get failovers(): number {
    return this.#failovers;
  }

  /** Resolves once the stream is connected and the node has applied and acked everything up to `seq`. */
  async waitForAck(seq: number): Promise<void> {
    while (this.#ackedSeq < seq && !this.#closed) await new Promise<void>((r) => this.#waiters.add(r));
  }

  async #run(): Promise<void> {
    let backoff = 100;
    // Attempts since the last stream opened: while some replica is still untried, the next one is tried
    // at once (a dead replica must not cost a backoff per replica); a whole round failed backs off.
    let failed = 0;
    while (!this.#closed) {
      const url = this.controlPlane;
      try {
        await this.#streamOnce(url, () => {
          backoff = 100;
          failed = 0;
          if (this.#lastConnected !== -1 && this.#lastConnected !== this.#current) {
            this.#failovers++;
            this.#o.logger.warn('streaming from another control-plane replica', { node: this.#o.nodeId, controlPlane: url, appliedSeq: this.#o.target.appliedSeq });
          }
          this.#lastConnected = this.#current;
        });
      } catch (e) {
        if (!this.#closed) this.#o.logger.warn('purge stream lost; reconnecting', { node: this.#o.nodeId, controlPlane: url, error: e, inMs: backoff });
      }
      this.#connected = false;
      this.#ackAbort.abort();
      this.#ackAbort = new AbortController();
      this.#dropChannel();
      if (this.#closed) break;
      failed++;
      this.#current = (this.#current + 1) % this.#urls.length;
      if (failed < this.#urls.length) {
        await sleep(Math.random() * 50, this.#abort.signal);
        continue;
      }
      failed = 0;
      await sleep(backoff + Math.random() * backoff, this.#abort.signal);
      backoff = Math.min(backoff * 2, 5000);
    }
  }

  #headers(): Record<string, string> {
    return { Authorization: `Bearer ${this.#o.token}`, 'X-Edge-Node': this.#o.nodeId };
  }

  #streamOnce(base: string, onConnected: () => void): Promise<void> {
    const { target } = this.#o;
    // A node without a place in the log need not replay history: it starts at the log's end (see 'hello').
    // After a failover too: the replicas share one log, so the node resumes after its applied seq.
    const after = this.#positioned || target.appliedSeq > 0 ? target.appliedSeq : -1;
    const url = new URL(`/edge/v1/stream?after=${after}`, base);
    return new Promise<void>((resolve, reject) => {
      // A replica that accepts the connection and never answers (a black-holed host, a hung process) is
      // as dead as one that refuses it: no answer within stallMs moves the node on.
      const noAnswer = setTimeout(() => req.destroy(new Error('no answer from the control plane')), this.#o.stallMs ?? 5000);
      noAnswer.unref();
      const req = request(url, { headers: this.#headers(), signal: this.#abort.signal }, (res) => {
        clearTimeout(noAnswer);
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`stream answered HTTP ${res.statusCode}`));
          return;
        }
        this.#res = res;
        this.#connected = true;
        onConnected();
        res.setEncoding('utf8');
        let buf = '';
        let stall: NodeJS.Timeout | undefined;
        const arm = () => {
          clearTimeout(stall);
          stall = setTimeout(() => res.destroy(new Error('stream stalled')), this.#o.stallMs ?? 5000);
          stall.unref();
        };
        arm();
        res.on('data', (chunk: string) => {
          arm();
          buf += chunk;
          let nl: number;
          let changed = false;
          while ((nl = buf.indexOf('\n')) !== -1) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line) changed = this.#handle(JSON.parse(line) as StreamLine, after) || changed;
          }
          // Only once the applied seq moved past the last ack sent: a target that applies asynchronously (a
          // cache driver) has not applied an entry yet when it arrives, and an ack sent now would only delay
          // the one that matters (at most one is in flight); the target nudges when it has applied it.
          if (changed && this.#o.target.appliedSeq > this.#sentSeq) this.#scheduleAck();
        });
        res.on('end', () => {
          clearTimeout(stall);
          resolve();
        });
        res.on('error', (e) => {
          clearTimeout(stall);
          reject(e);
        });
        res.on('close', () => {
          clearTimeout(stall);
          resolve();
        });
      });
      req.on('error', (e) => {
        clearTimeout(noAnswer);
        reject(e);
      });
      req.end();
    });
  }

  /** Applies one line of a stream opened with `after`; true when the applied seq or results changed. */
  #handle(line: StreamLine, after: number): boolean {
    const { target } = this.#o;
    switch (line.t) {
      case 'hello':
        this.#leaseMs = line.leaseMs;
        this.#scheduleAck();
        if (after !== -1) return false;
        this.#positioned = true;
        // Starting at the log's end skips entries up to lastSeq, so nothing cached before this point may
        // stay: objects the node stored while it could not reach us (it serves misses without a lease)
        // predate purges it will never see. Before the first purge there is nothing to skip.
        if (line.lastSeq > 0) target.dropAll(line.lastSeq);
        return line.lastSeq > 0;
      case 'reset':
        this.#o.logger.warn('fell behind the retained purge log; emptying the cache', { node: this.#o.nodeId, seq: line.seq });
        this.#positioned = true;
        target.dropAll(line.seq);
        return true;
      case 'hb':
        if (line.seq > target.appliedSeq) {
          target.advanceTo(line.seq);
          return true;
        }
        return false;
      case 'entry': {
        const e = line.e;
        if (e.seq <= target.appliedSeq) return false;
        if (e.type === 'prefetch_url') {
          target.advanceTo(e.seq);
          void target.prefetch(e).then(
            (r) => this.#report(taskResult(e, r)),
            (err: unknown) => this.#report(taskResult(e, { ok: false, failType: 'taskFailed', failMessage: String(err) })),
          );
        } else {
          const done = target.apply(e);
          if (done && !done.alreadyApplied) this.#reports.push(executionReport(e, done));
        }
        return true;
      }
    }
  }

  #report(r: TaskResult): void {
    this.#results.push(r);
    this.#scheduleAck();
  }

  /** At most one ack in flight; later changes ride on the next one. */
  #scheduleAck(): void {
    if (this.#closed) return;
    if (this.#acking) {
      this.#ackAgain = true;
      return;
    }
    this.#acking = (async () => {
      try {
        do {
          this.#ackAgain = false;
          await this.#ackOnce();
        } while (this.#ackAgain && !this.#closed);
      } catch (e) {
        if (!this.#closed) this.#o.logger.warn('ack failed; will retry', { node: this.#o.nodeId, error: e });
      } finally {
        this.#acking = undefined;
      }
    })();
  }

  async #ackOnce(): Promise<void> {
    const { target, clock } = this.#o;
    // Reports before the seq: each one taken is then covered by the seq read after it.
    for (const r of target.takeReports?.() ?? []) this.#reports.push(executionReport(r, r));
    const reports = this.#reports.splice(0, MAX_ACK_REPORTS);
    // The control plane refuses longer lists; the rest rides on the next ack (see below). It records a
    // report only up to the ack's seq and forgets entries an ack later: with reports left over, this ack
    // stops short of them.
    const seq = this.#reports.length ? Math.min(target.appliedSeq, this.#reports[0]!.seq - 1) : target.appliedSeq;
    const results = this.#results.splice(0, MAX_ACK_RESULTS);
    // The lease is counted from before the request left: the control plane records the ack later than this.
    const sentAt = clock.now();
    this.#sentSeq = seq;
    let reply: AckResponse;
    try {
      const body: AckRequest = { seq, results, driver: target.driver, ...(reports.length ? { reports } : {}) };
      // To the replica streamed from: it knows what it streamed (reports, prefetch results).
      reply = await this.#sendAck(body);
    } catch (e) {
      this.#results = [...results, ...this.#results];
      this.#reports = [...reports, ...this.#reports];
      this.#sentSeq = this.#ackedSeq;
      throw e;
    }
    // Not retried: the control plane will not take them later either (see AckResponse.ignored). A
    // `duplicate` is what a retried ack whose first answer was lost looks like; `unexpected` is not normal.
    const unexpected = reply.ignored?.filter((i) => i.reason !== 'duplicate') ?? [];
    if (unexpected.length) {
      this.#o.logger.warn('control plane ignored prefetch results', { node: this.#o.nodeId, ignored: unexpected.slice(0, 10), count: unexpected.length });
    }
    if (reply.ignored && reply.ignored.length > unexpected.length) {
      this.#o.logger.debug('prefetch results already recorded (a retried ack)', { node: this.#o.nodeId, count: reply.ignored.length - unexpected.length });
    }
    const lostReports = reply.ignoredReports?.filter((i) => i.reason !== 'duplicate') ?? [];
    if (lostReports.length) {
      this.#o.logger.warn('control plane ignored execution reports', { node: this.#o.nodeId, ignored: lostReports.slice(0, 10), count: lostReports.length });
    }
    this.#lastAckAt = sentAt;
    this.#leaseMs = reply.leaseMs;
    this.#ackedSeq = Math.max(this.#ackedSeq, seq);
    // A lease is only good once everything committed before it was granted has been applied.
    if (target.appliedSeq >= reply.lastSeq) target.renewLease(sentAt + reply.leaseMs);
    else this.#pendingLease = { seq: reply.lastSeq, until: sentAt + reply.leaseMs };
    if (this.#pendingLease && target.appliedSeq >= this.#pendingLease.seq) {
      target.renewLease(this.#pendingLease.until);
      this.#pendingLease = undefined;
    }
    for (const w of this.#waiters) w();
    this.#waiters.clear();
    if (target.appliedSeq > seq || this.#results.length || this.#reports.length) this.#ackAgain = true;
  }

  /**
   * One ack, over the channel to the replica streamed from (one connection and token check for all acks,
   * issue 11), or posted when that replica has no channel (an older control plane answers 404).
   */
  async #sendAck(body: AckRequest): Promise<AckResponse> {
    const url = this.controlPlane;
    const signal = AbortSignal.any([this.#abort.signal, this.#ackAbort.signal]);
    if (!this.#noChannel.has(url)) {
      if (this.#channel?.url !== url) {
        this.#dropChannel();
        this.#channel = { url, open: AckChannel.open(url, this.#headers(), signal) };
      }
      const entry = this.#channel;
      let channel: AckChannel;
      try {
        channel = await entry.open;
      } catch (e) {
        if (this.#channel === entry) this.#channel = undefined;
        if (!(e instanceof AckChannelUnsupported)) throw e;
        // A warning, once per control plane: acks still work, but each costs an HTTP request (slower fan-out
        // on a large fleet). Usually an older control plane, or a proxy that does not pass `Upgrade`.
        this.#o.logger.warn('control plane has no ack channel; posting each ack instead (an older control plane, or a proxy in between that does not pass Upgrade for /edge/v1/acks)', { node: this.#o.nodeId, controlPlane: url, error: e });
        this.#noChannel.add(url);
        return this.#sendAck(body);
      }
      try {
        return await channel.send(body);
      } catch (e) {
        // Lost, timed out or refused: the next ack opens a new channel (a refusal changed nothing).
        if (this.#channel === entry) this.#dropChannel();
        throw e;
      }
    }
    return postJson<AckResponse>(new URL('/edge/v1/ack', url), this.#headers(), body, signal);
  }

  #dropChannel(): void {
    const c = this.#channel;
    this.#channel = undefined;
    c?.open.then((ch) => ch.close(), () => {});
  }
}

/** The wire form of what a target executed for `e`: the note cut to the wire's bound, matched only when counted. */
function executionReport(
  e: { readonly seq: number; readonly taskId: number },
  done: { readonly executedAs: ExecutedAs; readonly matched?: number | null; readonly note?: string },
): ExecutionReport {
  return {
    seq: e.seq,
    taskId: e.taskId,
    executedAs: done.executedAs,
    matched: done.matched ?? null,
    ...(done.note === undefined ? {} : { note: done.note.slice(0, MAX_REPORT_NOTE) }),
  };
}

/** The wire form of a prefetch outcome: a FailType the API knows, a message within the wire's bound. */
/** The result of prefetch entry `e`, with its seq: a replica the node fails over to before sending it can check it. */
function taskResult(e: WireEntry, r: PrefetchOutcome): TaskResult {
  const { taskId, seq } = e;
  if (r.ok) return { taskId, seq, ok: true };
  const failType = (FAIL_TYPES as readonly string[]).includes(r.failType) ? (r.failType as FailType) : 'taskFailed';
  return { taskId, seq, ok: false, failType, failMessage: r.failMessage.slice(0, MAX_FAIL_MESSAGE) };
}

function postJson<T>(url: URL, headers: Record<string, string>, body: unknown, signal: AbortSignal): Promise<T> {
  const data = JSON.stringify(body);
  return new Promise<T>((resolve, reject) => {
    const req = request(url, { method: 'POST', signal, headers: { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`ack answered HTTP ${res.statusCode}: ${text}`));
        try {
          resolve(JSON.parse(text) as T);
        } catch (e) {
          reject(e);
        }
      });
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('ack timed out')));
    req.on('error', reject);
    req.end(data);
  });
}

/** A copy of `xs` in random order (Fisher–Yates). */
function shuffle<T>(xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Resolves after `ms`, or at once when `signal` aborts (close() must not wait out a 10 s backoff). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    if (signal.aborted) done();
    else signal.addEventListener('abort', done, { once: true });
  });
}
