// The control plane's side of the fan-out: streams the ordered purge log to edge nodes, takes their
// acks (which also renew their leases), and derives every task's status from them (DESIGN 2-4).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { fencesItself, type Config, type NodeConfig } from '../config/schema.ts';
import type { Directory } from '../purge/directory.ts';
import type { PurgeLogEntry, TaskRecord } from '../purge/types.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import type {
  NodeAck, NodeReport, NodeReportInput, NodeReportOutcome, PrefetchResult, PrefetchResultInput, TaskStore, TaskUpdate, WebhookRouter,
} from '../store/task-store.ts';
import { LogTail, tailEntry, type TailEntry } from './log-tail.ts';
import {
  ACK_CHANNEL_PROTOCOL, MAX_CHANNEL_PENDING, ackRequestSchema, type AckRequest, type AckResponse, type IgnoredReason, type ReportIgnoredReason, type StreamLine, type TaskResult,
} from './wire.ts';

export interface FanoutHubOptions {
  readonly config: Readonly<Config>;
  readonly store: TaskStore;
  readonly directory: Directory;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How often an idle stream says it is alive (and how often settling re-checks leases and deadlines). */
  readonly heartbeatMs?: number;
  /** Settled prefetch outcomes kept for nodeViews (default 10,000, about 0.5 KB each). */
  readonly maxSettledOutcomes?: number;
  /** Purge entries streamed to a node and not yet reported on, remembered per node (default 100,000, about 50 B each). */
  readonly maxUnreported?: number;
  /** Enqueues completion webhooks in the transaction that settles a job (store.updateTasks); none when absent. */
  readonly webhooks?: WebhookRouter;
  /**
   * How long the first ack of a batch waits for others before the batch is committed (one durable write
   * and one settle for all of them); default 2 ms. 0: the next turn of the event loop.
   */
  readonly ackLingerMs?: number;
}

/** An ack's reports: those the store may record, and those answered as ignored. */
interface CheckedReports {
  readonly candidates: NodeReportInput[];
  readonly ignored: Array<{ seq: number; taskId: number; reason: ReportIgnoredReason }>;
}

/** An ack's prefetch results: those streamed to the node (the store records them), and those ignored. */
interface CheckedResults {
  readonly candidates: PrefetchResultInput[];
  readonly ignored: Array<{ taskId: number; reason: IgnoredReason }>;
}

/** An ack validated and waiting for its batch's commit. */
interface QueuedAck {
  readonly node: NodeConfig;
  readonly body: AckRequest;
  /** The seq recorded: the node's claim capped at what was streamed to it (and, in the batch, at the log's end). */
  seq: number;
  readonly at: number;
  readonly resolve: (answer: AckResponse) => void;
  readonly reject: (e: unknown) => void;
}

interface Progress {
  ackedSeq: number;
  /** When the last ack was received: the node's lease cannot outlive seenAt + leaseMs. */
  seenAt: number;
}

/** How one node stands with one task (shown by `edgepurge tasks show`). */
export type NodeState = 'applied' | 'pending' | 'fenced' | 'failed';

export interface NodeView {
  readonly nodeId: string;
  readonly state: NodeState;
  /** The node's cache driver: the one it reported for this task, else its configured kind (`builtin` for an edge). */
  readonly driver: string;
  readonly ackedSeq: number;
  readonly seenAt: number | null;
  readonly failMessage?: string;
  /**
   * What the node reported executing for this task; absent when it has not (not applied yet, a prefetch,
   * an entry it skipped by emptying its cache, or a node that does not report).
   */
  readonly report?: Pick<NodeReport, 'executedAs' | 'matched' | 'note' | 'appliedAt'>;
}

/** The last task a node failed or let time out, per account (shown only to that account: DESIGN invariant 7). */
export interface NodeError {
  readonly at: number;
  readonly jobId: string;
  readonly message: string;
}

/** How one configured node stands with the fleet (GET /admin/v1/nodes, `edgepurge nodes`). */
export interface NodeStatus {
  readonly nodeId: string;
  /** `builtin` for the built-in edge, else the driver type its agent applies the log through. */
  readonly driver: 'builtin' | 'varnish' | 'nginx';
  /** The hosts it serves; undefined: every configured domain. */
  readonly hosts: readonly string[] | undefined;
  /** A purge-log stream to it is open now. */
  readonly connected: boolean;
  readonly ackedSeq: number;
  /** When its last ack arrived (null: never). */
  readonly seenAt: number | null;
  /** Log entries it has not acked yet (the log's end minus ackedSeq). */
  readonly lagEntries: number;
  /** How long the oldest entry it has not acked has waited (0 when it is up to date). */
  readonly lagMs: number;
  /**
   * `held`: its last ack is within the lease, it may serve hits; `lapsed`: it serves no hits (built-in,
   * Varnish) so it counts as fenced; `never`: it never acked; `unfenced`: a cache that serves without
   * its agent (nginx) — never counted as fenced whatever its lease.
   */
  readonly lease: 'held' | 'lapsed' | 'never' | 'unfenced';
  /** The last failure or timeout of one of its tasks, by account (AppId). */
  readonly lastErrors: ReadonlyMap<number, NodeError>;
}

/** How a configured node stands with the control plane now (metrics, the fleet view). */
export interface NodeGauge {
  readonly nodeId: string;
  /** `edge` (built-in), or the driver of an agent's cache. */
  readonly kind: 'edge' | 'varnish' | 'nginx';
  /** A purge-log stream to it is open. */
  readonly connected: boolean;
  /** Highest seq it acked (0 when it never did). */
  readonly ackedSeq: number;
  /** When its last ack arrived (ms), null when it never acked. */
  readonly seenAt: number | null;
  /** Its lease (renewed by every ack) has not run out. */
  readonly leaseFresh: boolean;
  /** The hosts it serves; undefined: every configured domain. */
  readonly hosts: readonly string[] | undefined;
}

/** How one node stands with the control plane (the console's fleet page). */
export interface FleetEntry {
  readonly nodeId: string;
  readonly node: NodeConfig;
  /** Streams open to it right now. */
  readonly streams: number;
  readonly ackedSeq: number;
  /** ms of its last ack; null when it never acked. */
  readonly seenAt: number | null;
  /** `fresh` until seenAt + leaseMs, then `expired`; `none` before any ack; `unfenced` for caches that cannot fence themselves (nginx). */
  readonly lease: 'fresh' | 'expired' | 'none' | 'unfenced';
  /** ms left on a fresh lease, else 0. */
  readonly leaseLeftMs: number;
  /** The last thing that went wrong between it and us (a refused ack, a failed or dropped stream). */
  readonly lastError: { readonly at: number; readonly message: string } | null;
}

interface PrefetchOutcome {
  readonly ok: Set<string>;
  /** Nodes that could not fetch it, in the order they said so: the first decides FailType/FailMessage. */
  readonly failed: Map<string, { readonly failType: string; readonly failMessage: string }>;
  /** When the first result arrived; outcomes are kept a while after the task settles, for nodeViews. */
  readonly since: number;
}

/** Adds one node's result to a task's outcome. */
function addResult(o: PrefetchOutcome, nodeId: string, r: Pick<PrefetchResult, 'ok' | 'failType' | 'failMessage'>): void {
  if (r.ok) o.ok.add(nodeId);
  else o.failed.set(nodeId, { failType: r.failType ?? 'taskFailed', failMessage: r.failMessage ?? `${nodeId}: failed` });
}

/** The stored results (TaskStore.prefetchResults) as one outcome per task, in the store's order. */
function outcomesOf(results: readonly PrefetchResult[]): Map<number, PrefetchOutcome> {
  const m = new Map<number, PrefetchOutcome>();
  for (const r of results) {
    let o = m.get(r.taskId);
    if (!o) m.set(r.taskId, (o = { ok: new Set(), failed: new Map(), since: r.at }));
    addResult(o, r.nodeId, r);
  }
  return m;
}

const MAX_ACK_BYTES = 1024 * 1024;
/** Reports per ack checked against the log (entries another process streamed): one index read each. */
const MAX_REPORT_LOOKUPS = 64;
/** Log reads per ack to check prefetch results this process did not stream (see #logEntries). */
const MAX_RESULT_READS = 16;

/** The routes and their one method each. */
const ENDPOINTS: ReadonlyMap<string, 'GET' | 'POST'> = new Map([
  ['/edge/v1/stream', 'GET'],
  ['/edge/v1/ack', 'POST'],
]);

/** `after` of GET /edge/v1/stream: -1 (the log's end, also when absent) or a seq; plain digits only ("", "1e3", "0x10" are refused). */
const afterParam = z
  .string()
  .regex(/^(?:-1|0|[1-9][0-9]{0,15})$/, 'after must be -1 or a non-negative integer')
  .transform(Number)
  .pipe(z.int().min(-1));

/** "results[0].taskId: Invalid input: …; seq: …" — the first few problems of a refused body. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('').replace(/^\./, '') : 'body'}: ${i.message}`)
    .join('; ');
}

/** The one place /edge/ answers are rendered. */
function reply(res: ServerResponse, status: number, body: object, headers: Readonly<Record<string, string>> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers }).end(JSON.stringify(body));
}

const refuse = (res: ServerResponse, status: number, error: string, headers?: Readonly<Record<string, string>>): void => reply(res, status, { error }, headers);

/** Bearer tokens are compared as SHA-256 digests: equal lengths, so the comparison leaks neither content nor length. */
const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export class FanoutHub {
  #o: FanoutHubOptions;
  readonly #nodes = new Map<string, NodeConfig>();
  readonly #progress = new Map<string, Progress>();
  /**
   * Outcomes this process recorded of prefetches not seen to settle yet, per task: nodeViews shows them
   * when its caller passes no stored results. The verdict reads the store's (prefetch_results: whichever
   * process took them, across restarts, issue 9). A late result for a task that settled without any (a
   * timeout) also lands here.
   */
  readonly #prefetch = new Map<number, PrefetchOutcome>();
  /**
   * Outcomes of settled prefetches, oldest first, kept so per-node progress can still be shown: the newest
   * maxSettledOutcomes, each for at most 2 × taskTimeoutMs. Bounded by count, not only by time, so memory
   * does not grow with the prefetch rate (hardening issue 3).
   */
  readonly #settledPrefetch = new Map<number, PrefetchOutcome>();
  /**
   * Per node: the prefetches streamed to it whose outcome it has not reported yet (task id → the entry's
   * createdAt). A node's results count only for these (hardening issue 1): a node token cannot fail, or
   * pass, another node's or tenant's task, a purge, a task it was never sent or one not yet created.
   * Entries leave when reported, or 2 × taskTimeoutMs after the entry was created: a result after the
   * deadline changes no status but is still shown per node, as long as outcomes are kept.
   */
  readonly #awaiting = new Map<string, Map<number, number>>();
  /**
   * Per node: the purge entries streamed to it (seq → task id) that it may still report on. A node's
   * reports count only for these (as its results, hardening issue 1). An entry leaves at the first ack
   * after the one that covered it (one ack's grace: a retried ack whose answer was lost finds its reports
   * `duplicate`, not `unexpected`), or when the node holds more than maxUnreported.
   */
  readonly #unreported = new Map<string, Map<number, number>>();
  /** Per node: the seq of its previous ack; entries up to it leave #unreported at the next ack. */
  readonly #reportGrace = new Map<string, number>();
  /**
   * Per node: every log entry up to here that concerns it has been streamed to it (the start of its
   * stream — its own resume point, or the log's end — counts). Its acks are capped here: an ack beyond
   * claims entries it cannot have applied. Absent until the node's first stream in this process.
   */
  readonly #sent = new Map<string, number>();
  /**
   * Nodes with an open stream that were streamed something (up to the seq held) no ack has covered yet.
   * Empty when the last of them acks: nothing more is coming, so that batch commits without the linger.
   */
  readonly #unacked = new Map<string, number>();
  /** Open ack channels (upgraded sockets) and the node each one authenticated as. */
  readonly #channels = new Map<Duplex, string>();
  /** Open streams and the node each one serves. */
  readonly #streams = new Map<ServerResponse, string>();
  /** Per node: the last refused ack or broken stream (NodeStatus.lastError). */
  readonly #lastError = new Map<string, { at: number; message: string }>();
  readonly #settledListeners = new Set<(tasks: readonly TaskUpdate[], at: number) => void>();
  readonly #ackListeners = new Set<(nodeId: string, ackedSeq: number) => void>();
  /** Per node, per account: the last task the node failed or did not apply in time (bounded: nodes × accounts). */
  readonly #lastErrors = new Map<string, Map<number, NodeError>>();
  /** The newest log entries, read once for every stream; its generation, bumped by notify(), wakes them. */
  #tail: LogTail;
  /** Acks waiting for the next batch commit (#flushAcks). */
  #ackQueue: QueuedAck[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  /**
   * Settle passes and ack batches run one at a time, in order: a task is settled by exactly one of them
   * (the other then no longer sees it processing), so no settled listener hears of a task twice.
   */
  #lane: Promise<unknown> = Promise.resolve();
  /** Ack batches that left the lane at their commit, answered in commit order once synced (#answerBatch). */
  #answering: Promise<void> = Promise.resolve();
  /**
   * Streams waiting for notify(), their next heartbeat or close(); each removes itself when it wakes. (Racing
   * one shared promise against a sleep instead added a reaction to it on every heartbeat of every stream
   * until the next purge: about 300 bytes a second per node on an idle log.)
   */
  readonly #waiters = new Set<() => void>();
  #timer: NodeJS.Timeout | undefined;
  #settling: Promise<void> | undefined;
  #settleAgain = false;
  #closed = false;
  /**
   * This process runs the full settle pass (the `settle` duty, issue 9): fenced nodes count as done and
   * deadlines end tasks as `timeout`. A replica that does not lead settles only what every responsible
   * node has applied (store-read progress): never on an assumption about a node it may not stream to.
   * Alone on its store (SQLite) a process always leads.
   */
  #leader: boolean;

  constructor(options: FanoutHubOptions) {
    this.#o = options;
    this.#leader = options.store.replicas === undefined;
    this.#tail = new LogTail(options.store);
    for (const n of options.config.nodes) this.#nodes.set(n.id, n);
  }

  /**
   * Applies a reloaded configuration (SIGHUP): nodes added, removed or given a new token or host
   * list take effect at once; a node whose entry changed is disconnected and reconnects under it.
   */
  reconfigure(config: Readonly<Config>, directory: Directory): void {
    const before = new Map(this.#nodes);
    this.#o = { ...this.#o, config, directory };
    this.#nodes.clear();
    for (const n of config.nodes) this.#nodes.set(n.id, n);
    for (const [id, old] of before) {
      const now = this.#nodes.get(id);
      if (now && JSON.stringify(now) === JSON.stringify(old)) continue;
      if (!now) {
        this.#progress.delete(id);
        this.#awaiting.delete(id);
        this.#unreported.delete(id);
        this.#reportGrace.delete(id);
        this.#lastErrors.delete(id);
        this.#lastError.delete(id);
      }
      this.#sent.delete(id);
      this.#unacked.delete(id);
      for (const [res, nodeId] of this.#streams) if (nodeId === id) res.end();
      // A channel was authenticated once, under the old entry (perhaps the old token): it must not outlive it.
      for (const [socket, nodeId] of this.#channels) if (nodeId === id) socket.destroy();
    }
    this.settle();
  }

  get #leaseMs(): number {
    return this.#o.config.fanout.leaseMs;
  }

  get #heartbeatMs(): number {
    return this.#o.heartbeatMs ?? Math.min(1000, Math.floor(this.#leaseMs / 4));
  }

  /** Loads node progress and starts the periodic settle (leases expire and deadlines pass without any event). */
  async start(): Promise<void> {
    const { store } = this.#o;
    for (const p of await store.nodeProgress()) {
      if (this.#nodes.has(p.nodeId)) this.#progress.set(p.nodeId, { ackedSeq: p.ackedSeq, seenAt: p.seenAt });
    }
    // Prefetches still processing that a node acked before a restart were streamed to it by the previous
    // process: it may still report their outcome.
    const last = await store.lastSeq();
    for (let after = 0; ; ) {
      const tasks = await store.processingTasks(last, 1000, after);
      for (const t of tasks) {
        after = t.seq ?? after;
        if (t.type !== 'prefetch_url' || t.seq === null) continue;
        for (const n of this.#responsible(t.hosts)) if ((this.#progress.get(n)?.ackedSeq ?? 0) >= t.seq) this.#await(n, t.id, t.createdAt);
      }
      if (tasks.length < 1000) break;
    }
    this.#timer = setInterval(() => this.settle(), this.#heartbeatMs);
    this.#timer.unref();
    this.settle();
  }

  /** Ends every stream and stops settling. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#wakeStreams();
    for (const res of this.#streams.keys()) res.end();
    // Acks already taken are committed and answered, not dropped.
    clearTimeout(this.#flushTimer);
    await this.#exclusive(() => this.#flushAcks());
    await this.#answering;
    // Ack channels end once the acks they carried are answered (those answers are written a turn after the
    // batch resolves); one whose node does not hang up in turn is cut a second later, so close() is not held.
    await new Promise<void>((r) => setImmediate(r));
    for (const socket of this.#channels.keys()) {
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    }
    await this.#settling;
  }

  /** Takes up (true) or leaves (false) the full settle pass; see #leader. */
  lead(leader: boolean): void {
    if (this.#leader === leader) return;
    this.#leader = leader;
    if (leader) this.settle();
  }

  /** Whether this hub runs the full settle pass now. */
  get leading(): boolean {
    return this.#leader;
  }

  /**
   * Wakes the streams: new entries up to `lastSeq` are committed; `entries`, when the caller has them, are
   * the last of them (see LogTail.notify). Nothing to wake for when the shared tail holds `lastSeq` already.
   */
  notify(lastSeq: number, entries?: readonly PurgeLogEntry[]): void {
    if (this.#tail.notify(lastSeq, entries)) this.#wakeStreams();
  }

  #wakeStreams(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  /** Resolves at the next notify(), after `ms`, or at close(), whichever is first; leaves no timer or waiter behind. */
  #nextWake(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.#waiters.add(done);
    });
  }

  /** How much the hub holds in memory (soak bench, tests): everything here must stay bounded. */
  memory(): {
    awaitedResults: number; awaitedReports: number; outcomes: number; settledOutcomes: number; nodes: number; streams: number; waitingStreams: number;
    /** Entries the shared log tail holds (bounded by its capacity). */
    tailEntries: number;
    queuedAcks: number;
    /** Open ack channels. */
    ackChannels: number;
  } {
    let awaitedResults = 0;
    for (const m of this.#awaiting.values()) awaitedResults += m.size;
    let awaitedReports = 0;
    for (const m of this.#unreported.values()) awaitedReports += m.size;
    return {
      awaitedResults, awaitedReports, outcomes: this.#prefetch.size, settledOutcomes: this.#settledPrefetch.size, nodes: this.#progress.size, streams: this.#streams.size,
      waitingStreams: this.#waiters.size, tailEntries: this.#tail.size, queuedAcks: this.#ackQueue.length, ackChannels: this.#channels.size,
    };
  }

  /** Called with every batch of tasks the hub settles (benchmarks and tests measure with it). */
  onSettled(listener: (tasks: readonly TaskUpdate[], at: number) => void): () => void {
    this.#settledListeners.add(listener);
    return () => this.#settledListeners.delete(listener);
  }

  /** Called after every recorded ack, with the node's acked seq (live job views follow per-node progress with it). */
  onAck(listener: (nodeId: string, ackedSeq: number) => void): () => void {
    this.#ackListeners.add(listener);
    return () => this.#ackListeners.delete(listener);
  }

  /** Every configured node: connection, progress and lag against the log's end, lease, last errors. */
  async nodeStatuses(): Promise<NodeStatus[]> {
    const { store, clock } = this.#o;
    const lastSeq = await store.lastSeq();
    const now = clock.now();
    const connected = new Set(this.#streams.values());
    // Nodes at the same seq wait on the same entry: one read per distinct seq.
    const waitedSince = new Map<number, number>();
    const statuses: NodeStatus[] = [];
    for (const node of this.#nodes.values()) {
      const p = this.#progress.get(node.id);
      const ackedSeq = p?.ackedSeq ?? 0;
      let lagMs = 0;
      if (ackedSeq < lastSeq) {
        let since = waitedSince.get(ackedSeq);
        if (since === undefined) waitedSince.set(ackedSeq, (since = (await store.readLog(ackedSeq, 1))[0]?.createdAt ?? now));
        lagMs = Math.max(0, now - since);
      }
      const lease = !fencesItself(node) ? 'unfenced' : !p ? 'never' : now - p.seenAt > this.#leaseMs ? 'lapsed' : 'held';
      statuses.push({
        nodeId: node.id,
        driver: node.driver?.type ?? 'builtin',
        hosts: node.hosts,
        connected: connected.has(node.id),
        ackedSeq,
        seenAt: p?.seenAt ?? null,
        lagEntries: Math.max(0, lastSeq - ackedSeq),
        lagMs,
        lease,
        lastErrors: this.#lastErrors.get(node.id) ?? new Map(),
      });
    }
    return statuses;
  }

  #noteError(nodeId: string, t: TaskRecord, at: number, message: string): void {
    let m = this.#lastErrors.get(nodeId);
    if (!m) this.#lastErrors.set(nodeId, (m = new Map()));
    m.set(t.appId, { at, jobId: t.jobId, message });
  }

  /**
   * The control plane's routes under /edge/v1/; false when the request is not for the hub. Every input
   * (node id, token, query, body) is checked before anything is read from or written to the store
   * (hardening issue 2): a refusal changes nothing and answers a JSON `{"error"}`, never a 500.
   */
  route(req: IncomingMessage, res: ServerResponse): boolean {
    const url = URL.parse(req.url ?? '/', 'http://x');
    if (!url?.pathname.startsWith('/edge/v1/')) return false;
    // Authenticated first: an unknown caller learns nothing, not even which endpoints exist.
    const node = this.#authenticate(req);
    if (!node) {
      refuse(res, 401, 'unknown node or bad token: send X-Edge-Node: <id> and Authorization: Bearer <token> as configured', { 'WWW-Authenticate': 'Bearer' });
      return true;
    }
    const method = ENDPOINTS.get(url.pathname);
    if (!method) {
      refuse(res, 404, 'no such edge endpoint: GET /edge/v1/stream, POST /edge/v1/ack');
      return true;
    }
    if (req.method !== method) {
      refuse(res, 405, `${url.pathname} takes ${method}`, { Allow: method });
      return true;
    }
    if (this.#closed) {
      refuse(res, 503, 'the control plane is shutting down');
      return true;
    }
    if (method === 'GET') {
      const given = url.searchParams.getAll('after');
      const after = given.length === 0 ? ({ success: true, data: -1 } as const) : given.length === 1 ? afterParam.safeParse(given[0]) : undefined;
      if (!after?.success) {
        refuse(res, 400, after ? describeIssues(after.error) : 'after must be given at most once');
        return true;
      }
      this.#stream(node, after.data, res).catch((e: unknown) => {
        this.#o.logger.error('edge stream failed', { node: node.id, error: e });
        this.#noteLinkError(node.id, `stream failed: ${(e as Error).message}`);
        res.destroy();
      });
      return true;
    }
    this.#ack(node, req, res).catch((e: unknown) => {
      // Only the store can fail here (input was validated before anything was written).
      this.#o.logger.error('edge ack failed', { node: node.id, error: e });
      if (!res.headersSent) refuse(res, 500, 'ack not recorded');
      else res.destroy();
    });
    return true;
  }

  #authenticate(req: IncomingMessage): NodeConfig | undefined {
    const id = req.headers['x-edge-node'];
    const auth = req.headers.authorization;
    const node = typeof id === 'string' ? this.#nodes.get(id) : undefined;
    const token = typeof auth === 'string' ? /^Bearer ([\x21-\x7e]{1,1024})$/.exec(auth)?.[1] : undefined;
    // Compared whether or not the node exists, so a timing difference tells nothing either.
    const same = timingSafeEqual(digest(token ?? ''), digest(node?.token ?? ''));
    return node && token !== undefined && same ? node : undefined;
  }

  #serves(node: NodeConfig, hosts: readonly string[]): boolean {
    return !node.hosts || hosts.some((h) => node.hosts!.includes(h));
  }

  async #stream(node: NodeConfig, after: number, res: ServerResponse): Promise<void> {
    const { store } = this.#o;
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-store' });
    res.socket?.setNoDelay(true);
    this.#streams.set(res, node.id);
    let open = true;
    res.on('close', () => {
      open = false;
      this.#streams.delete(res);
      // A node without a stream acks nothing soon: the others' acks must not linger for it.
      if (![...this.#streams.values()].includes(node.id)) this.#unacked.delete(node.id);
      if (!res.writableFinished && !this.#closed) this.#noteLinkError(node.id, 'stream dropped (connection closed)');
    });
    const write = (line: StreamLine) => writeLine(`${JSON.stringify(line)}\n`);
    const writeLine = async (line: string) => {
      if (res.write(line)) return;
      // Wait for whichever comes first, and leave no listener behind for the other.
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done).off('close', done);
          resolve();
        };
        res.on('drain', done).on('close', done);
      });
    };
    /** Recorded before the line goes out: the node may ack it before write() returns. */
    const sentUpTo = (seq: number) => {
      const before = this.#sent.get(node.id);
      if (before !== undefined && seq <= before) return;
      this.#sent.set(node.id, seq);
      this.#unacked.set(node.id, seq);
    };
    const [firstSeq, lastSeq] = [await store.firstSeq(), await store.lastSeq()];
    let cursor = after === -1 ? lastSeq : after;
    // Behind the retained log (or ahead of it, after a store reset): the node must start from empty.
    const reset = cursor < firstSeq - 1 || cursor > lastSeq;
    if (reset) cursor = Math.max(firstSeq - 1, Math.min(cursor, lastSeq));
    sentUpTo(cursor);
    await write({ t: 'hello', firstSeq, lastSeq, leaseMs: this.#leaseMs });
    if (reset) await write({ t: 'reset', seq: cursor });
    let announced = -1;
    let lastBeat = 0;
    while (open && !this.#closed) {
      const seen = this.#tail.generation;
      // The shared tail serves every stream that is near the log's end; one catching up reads the store.
      const recent = await this.#tail.after(cursor, seen);
      let entries: readonly TailEntry[];
      let end: number;
      if (recent) ({ entries, end } = recent);
      else {
        end = await store.lastSeq();
        entries = cursor < end ? (await store.readLog(cursor, 1000)).map(tailEntry) : [];
      }
      // Lines of one pass go out in one write (up to 64 KiB): an entry and the heartbeat after it cost one
      // chunk on the socket, not two, on each of the fleet's streams (issue 11).
      let out = '';
      for (const { entry: e, line } of entries) {
        if (this.#serves(node, e.hosts)) {
          if (e.type === 'prefetch_url') this.#await(node.id, e.taskId, e.createdAt);
          else this.#awaitReport(node.id, e.seq, e.taskId);
          sentUpTo(e.seq);
          out += line;
          if (out.length >= 65_536) {
            await writeLine(out);
            out = '';
          }
        }
        cursor = e.seq;
      }
      if (!recent && entries.length === 1000) {
        if (out) await writeLine(out);
        continue;
      }
      // Everything up to `end` was committed before the log was read, so all of it has been read.
      cursor = Math.max(cursor, end);
      const now = this.#o.clock.now();
      if (cursor !== announced || now - lastBeat >= this.#heartbeatMs) {
        sentUpTo(cursor);
        out += `${JSON.stringify({ t: 'hb', seq: cursor } satisfies StreamLine)}\n`;
        announced = cursor;
        lastBeat = now;
      }
      if (out) await writeLine(out);
      // Entries committed while the log was read were announced meanwhile: read again at once.
      if (this.#tail.generation === seen && open && !this.#closed) await this.#nextWake(this.#heartbeatMs);
    }
    res.end();
  }

  async #ack(node: NodeConfig, req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on('finish', () => {
      if (res.statusCode >= 400) this.#noteLinkError(node.id, `ack refused (HTTP ${res.statusCode})`);
    });
    if (Number(req.headers['content-length'] ?? 0) > MAX_ACK_BYTES) {
      refuse(res, 413, `ack body over ${MAX_ACK_BYTES} bytes`, { Connection: 'close' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > MAX_ACK_BYTES) {
        refuse(res, 413, `ack body over ${MAX_ACK_BYTES} bytes`, { Connection: 'close' });
        return;
      }
      chunks.push(c);
    }
    const answer = await this.#takeAck(node, Buffer.concat(chunks).toString('utf8'));
    if ('error' in answer) refuse(res, 400, answer.error);
    else reply(res, 200, answer);
  }

  /**
   * One ack, as the text of its JSON body (POST /edge/v1/ack, or one line of an ack channel): validated
   * whole before anything is written (hardening issue 2: `{"seq":0,"results":[null]}` used to record the
   * ack, then fail on the null with a 500), then queued for the next batch commit and answered once it
   * is durable. Rejects only when the store fails.
   */
  async #takeAck(node: NodeConfig, text: string): Promise<AckResponse | { error: string }> {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { error: 'ack body is not JSON: send {"seq": N, "results"?: [{"taskId", "ok", "failType"?, "failMessage"?}], "driver"?: NAME, "reports"?: [{"seq", "taskId", "executedAs", "matched"?, "note"?}]}' };
    }
    const parsed = ackRequestSchema.safeParse(json);
    if (!parsed.success) return { error: `invalid ack: ${describeIssues(parsed.error)}` };
    const body = parsed.data;
    const { clock } = this.#o;
    const known = this.#progress.get(node.id)?.ackedSeq ?? 0;
    // Only entries streamed to the node count (hardening issue 1); before its first stream in this process,
    // it stays where it was. Never beyond the log's end either (#flushAcks: one read of it per batch).
    const seq = Math.min(body.seq, this.#sent.get(node.id) ?? known);
    // Persisted before answering, with the reports, in the batch's one transaction: a restarted control
    // plane must not think a lease ended earlier than it did.
    return new Promise<AckResponse>((resolve, reject) => {
      this.#ackQueue.push({ node, body, seq, at: clock.now(), resolve, reject });
      const owed = this.#unacked.get(node.id);
      if (owed !== undefined && seq >= owed) {
        this.#unacked.delete(node.id);
        if (this.#unacked.size === 0) {
          // The last node that owed an ack: no other ack is coming to share the batch (a small fleet, or the
          // last of a large one), so it commits now instead of after the linger: the purge settles sooner.
          clearTimeout(this.#flushTimer);
          this.#flushTimer = undefined;
          void this.#exclusive(() => this.#flushAcks());
          return;
        }
      }
      if (this.#flushTimer === undefined) {
        this.#flushTimer = setTimeout(() => {
          this.#flushTimer = undefined;
          void this.#exclusive(() => this.#flushAcks());
        }, this.#o.ackLingerMs ?? 2);
      }
    });
  }

  /**
   * `GET /edge/v1/acks` with `Upgrade: edgepurge-acks` (the server's 'upgrade' event): a node's ack channel.
   * Authenticated once, as the HTTP routes are; then the node writes one AckRequest per line and reads one
   * answer per line, in the same order: an AckResponse, or `{"error"}` for a line refused as POST
   * /edge/v1/ack would refuse its body (400: nothing changed, the channel stays open). It spares each ack
   * an HTTP request (headers, token check, a response head): the cost that grew with the fleet (issue 11).
   * Refusals before the switch answer as the HTTP routes do, then close. Returns false when the request is
   * not for the hub.
   */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = URL.parse(req.url ?? '/', 'http://x');
    if (!url?.pathname.startsWith('/edge/v1/')) return false;
    const fail = (status: number, text: string, error: string, extra = '') => {
      const body = JSON.stringify({ error });
      socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      return true;
    };
    const node = this.#authenticate(req);
    if (!node) return fail(401, 'Unauthorized', 'unknown node or bad token: send X-Edge-Node: <id> and Authorization: Bearer <token> as configured', 'WWW-Authenticate: Bearer\r\n');
    if (url.pathname !== '/edge/v1/acks' || String(req.headers.upgrade).toLowerCase() !== ACK_CHANNEL_PROTOCOL) {
      return fail(404, 'Not Found', `no such edge upgrade: GET /edge/v1/acks with Upgrade: ${ACK_CHANNEL_PROTOCOL}`);
    }
    if (req.method !== 'GET') return fail(405, 'Method Not Allowed', '/edge/v1/acks takes GET', 'Allow: GET\r\n');
    if (this.#closed) return fail(503, 'Service Unavailable', 'the control plane is shutting down');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${ACK_CHANNEL_PROTOCOL}\r\nConnection: Upgrade\r\n\r\n`);
    if ('setNoDelay' in socket && typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
    this.#channels.set(socket, node.id);
    // A node acks at least every quarter lease; a channel silent for two leases is gone (no HTTP timeout covers it).
    if ('setTimeout' in socket && typeof socket.setTimeout === 'function') socket.setTimeout(2 * this.#leaseMs + 10_000, () => socket.destroy());
    let buf = '';
    let pending = 0;
    /** Answers go out in line order: each waits for the one before. */
    let answered: Promise<void> = Promise.resolve();
    socket.on('error', () => {});
    socket.on('close', () => this.#channels.delete(socket));
    // The HTTP server's sockets allow half-open: a node that hung up would otherwise hold its socket forever.
    socket.on('end', () => socket.end());
    const onData = (chunk: Buffer | string) => {
      buf += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === '') continue;
        pending++;
        // A node that does not read its answers is not read either (bounded memory per channel).
        if (pending >= MAX_CHANNEL_PENDING) socket.pause();
        const taken = this.#closed ? Promise.resolve({ error: 'the control plane is shutting down' }) : this.#takeAck(node, line);
        answered = answered.then(async () => {
          let out: AckResponse | { error: string };
          try {
            out = await taken;
          } catch (e) {
            // Only the store can fail here; the node retries on a new channel.
            this.#o.logger.error('edge ack failed', { node: node.id, error: e });
            socket.destroy();
            return;
          }
          if ('error' in out) this.#noteLinkError(node.id, 'ack refused (400 on the ack channel)');
          socket.write(`${JSON.stringify(out)}\n`);
          if (--pending < MAX_CHANNEL_PENDING && socket.isPaused()) socket.resume();
        });
      }
      if (buf.length > MAX_ACK_BYTES) {
        socket.end(`${JSON.stringify({ error: `ack line over ${MAX_ACK_BYTES} bytes` })}\n`);
        socket.off('data', onData);
        buf = '';
      }
    };
    if (head.length) onData(head);
    socket.on('data', onData);
    return true;
  }

  /** Runs `fn` after every settle pass and ack batch queued before it (see #lane). */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lane.then(fn);
    this.#lane = run.catch(() => {});
    return run;
  }

  /**
   * Commits the queued acks as one batch: their progress, reports and the tasks they complete, in one
   * transaction (TaskStore.ackNodes); each ack is answered once it is durable. Settling here looks only at
   * the tasks these acks can have completed (seqs between the nodes' old and new progress), instead of a
   * pass over every processing task per ack. Runs in the lane up to its commit (see #answerBatch).
   */
  async #flushAcks(): Promise<void> {
    const batch = this.#ackQueue;
    if (batch.length === 0) return;
    this.#ackQueue = [];
    const { store, clock } = this.#o;
    /** Progress as it was before this batch, while its commit is under way. */
    const before = new Map<string, Progress | undefined>();
    try {
      // The log's end, read after every ack of the batch was taken: each answer's lastSeq (the node renews its
      // lease only once it applied up to there) is at least what was committed when its ack arrived.
      const lastSeq = await store.lastSeq();
      for (const q of batch) q.seq = Math.min(q.seq, lastSeq);
      // The progress the batch will record, over what memory holds: verdicts read it before it is durable,
      // and the statuses they give are committed with it, never before it.
      const next = new Map<string, Progress>();
      const checked: CheckedReports[] = [];
      const checkedResults: CheckedResults[] = [];
      let lo = Number.POSITIVE_INFINITY;
      let hi = 0;
      for (const q of batch) {
        const known = next.get(q.node.id)?.ackedSeq ?? this.#progress.get(q.node.id)?.ackedSeq ?? 0;
        checked.push(await this.#checkReports(q.node, q.body, q.seq, known));
        // Most acks carry no result (purges only): no extra turn of the loop for them.
        checkedResults.push(q.body.results?.length ? await this.#checkResults(q.node, q.body.results) : { candidates: [], ignored: [] });
        const after = Math.max(known, q.seq);
        next.set(q.node.id, { ackedSeq: after, seenAt: q.at });
        if (after > known) [lo, hi] = [Math.min(lo, known), Math.max(hi, after)];
      }
      const now = clock.now();
      const progressOf = (id: string) => next.get(id) ?? this.#progress.get(id);
      const updates: TaskUpdate[] = [];
      for (let after = lo; after < hi; ) {
        const tasks = await store.processingTasks(hi, 1000, after);
        const outcomes = await this.#storedOutcomes(tasks);
        for (const t of tasks) {
          const u = this.#verdict(t, now, outcomes, progressOf);
          if (u) updates.push(u);
        }
        if (tasks.length < 1000) break;
        after = tasks[tasks.length - 1]!.seq ?? hi;
      }
      // Results go in the same transaction as their ack (issue 9: a restart or failover loses none).
      const acks: NodeAck[] = batch.map((q, i) => ({
        nodeId: q.node.id, seq: q.seq, at: q.at, reports: checked[i]!.candidates, results: checkedResults[i]!.candidates,
      }));
      // Memory moves as the commit starts, not after its sync: a store whose commit is readable before it
      // is synced (SQLite's WAL sync off the loop) may show the settled status meanwhile, and the per-node
      // view must not then say `pending`. Put back should the batch fail (nothing else runs in the lane).
      for (const [id, p] of next) {
        const old = this.#progress.get(id);
        before.set(id, old);
        this.#progress.set(id, { ackedSeq: Math.max(old?.ackedSeq ?? 0, p.ackedSeq), seenAt: p.seenAt });
      }
      // Completion webhooks of the jobs it settles are enqueued in the same transaction.
      let committed!: () => void;
      const atCommit = new Promise<'committed'>((r) => (committed = () => r('committed')));
      const write = store.ackNodes(acks, updates, now, this.#o.webhooks, committed);
      const first = await Promise.race([atCommit, write.then(() => 'durable' as const, () => 'failed' as const)]);
      if (first === 'committed') {
        // Committed, its sync under way: the lane is free for the next batch, whose verdicts read the progress
        // moved above (committed already) and whose own commit need not wait for this sync (the last ack of a
        // purge often arrives during the sync of the ones before it). The answers still wait for this sync,
        // in commit order (the store answers syncs in the order they started).
        before.clear();
        const answered = this.#answering.then(() => this.#answerBatch(batch, write, lastSeq, checked, checkedResults, updates, now, true));
        this.#answering = answered.catch(() => {});
        return;
      }
      // A store that answers only once durable (or a failed write: the catch below puts memory back).
      await write;
      before.clear();
      await this.#answerBatch(batch, write, lastSeq, checked, checkedResults, updates, now, false);
    } catch (e) {
      for (const [id, p] of before) {
        if (p) this.#progress.set(id, p);
        else this.#progress.delete(id);
      }
      for (const q of batch) q.reject(e);
    }
  }

  /**
   * What follows a batch's durable commit: the settled tasks announced, reports and results recorded in
   * memory, then each ack answered. `split`: the batch left the lane at its commit, so a settle pass it
   * needs queues in the lane; a sync that fails then answers no ack as recorded (the nodes send them again)
   * but cannot move memory back, as later batches built on it (nor can the store take the commit back).
   */
  async #answerBatch(
    batch: readonly QueuedAck[],
    write: Promise<NodeReportOutcome[][]>,
    lastSeq: number,
    checked: readonly CheckedReports[],
    checkedResults: readonly CheckedResults[],
    updates: readonly TaskUpdate[],
    now: number,
    split: boolean,
  ): Promise<void> {
    let outcomes: NodeReportOutcome[][];
    try {
      outcomes = await write;
    } catch (e) {
      this.#o.logger.error('ack batch committed but not synced: its acks are refused, the nodes send them again', { acks: batch.length, error: e });
      for (const q of batch) q.reject(e);
      return;
    }
    try {
      if (updates.length) this.#settled(updates, now);
      let failed = false;
      let results = false;
      const answers = batch.map((q, i): AckResponse => {
        const stored = outcomes[i] ?? [];
        const nReports = checked[i]!.candidates.length;
        const ignoredReports = this.#afterAck(q.node.id, q.seq, checked[i]!, stored.slice(0, nReports));
        for (const l of this.#ackListeners) l(q.node.id, this.#progress.get(q.node.id)!.ackedSeq);
        // Outcomes are only recorded here; settling turns them into a status, and only for tasks still
        // processing: a late result (a node that was fenced, or answered after the deadline) changes no final
        // status.
        const recorded = this.#recordResults(q.node.id, checkedResults[i]!, stored.slice(nReports), q.at);
        failed ||= recorded.failed;
        results ||= (q.body.results?.length ?? 0) > 0;
        return {
          lastSeq,
          leaseMs: this.#leaseMs,
          ...(recorded.ignored.length ? { ignored: recorded.ignored } : {}),
          ...(ignoredReports.length ? { ignoredReports } : {}),
        };
      });
      // A failure is settled before the ack is answered: the node will not report it again.
      if (failed) {
        await (split ? this.#exclusive(() => this.#settleOnce()) : this.#settleOnce()).catch((e: unknown) =>
          this.#o.logger.error('settling task statuses failed', { error: e }),
        );
      }
      batch.forEach((q, i) => q.resolve(answers[i]!));
      // A prefetch's success needs every node's result: a pass over the processing tasks sees it.
      if (results && !failed) this.settle();
    } catch (e) {
      // Durable, but bookkeeping failed: no ack is left unanswered (the nodes send the refused ones again).
      this.#o.logger.error('answering an ack batch failed', { acks: batch.length, error: e });
      for (const q of batch) q.reject(e);
    }
  }
  #await(nodeId: string, taskId: number, createdAt: number): void {
    let m = this.#awaiting.get(nodeId);
    if (!m) this.#awaiting.set(nodeId, (m = new Map()));
    m.set(taskId, createdAt);
  }

  #awaitReport(nodeId: string, seq: number, taskId: number): void {
    let m = this.#unreported.get(nodeId);
    if (!m) this.#unreported.set(nodeId, (m = new Map()));
    m.set(seq, taskId);
    // A node that never reports (an older agent, or one stuck behind its cache) must not grow this forever.
    if (m.size > (this.#o.maxUnreported ?? 100_000)) m.delete(m.keys().next().value!);
  }

  /**
   * Which of an ack's reports (seq `ackSeq`, the capped one) may be recorded: purge entries streamed to the
   * node with seq up to `ackSeq`; the others are answered as ignored. Like results, they are ignored rather
   * than refused: the ack's seq and lease still count.
   */
  async #checkReports(
    node: NodeConfig,
    body: AckRequest,
    ackSeq: number,
    known: number,
  ): Promise<CheckedReports> {
    const ignored: Array<{ seq: number; taskId: number; reason: ReportIgnoredReason }> = [];
    const streamed = this.#unreported.get(node.id);
    const candidates: NodeReportInput[] = [];
    let lookups = 0;
    for (const r of body.reports ?? []) {
      const take = () => candidates.push({ taskId: r.taskId, seq: r.seq, driver: body.driver ?? null, executedAs: r.executedAs, matched: r.matched ?? null, note: r.note ?? null });
      const local = streamed?.get(r.seq);
      if (local === r.taskId) {
        if (r.seq > ackSeq) ignored.push({ seq: r.seq, taskId: r.taskId, reason: 'not_applied' });
        else take();
      } else if (local === undefined && known < r.seq && r.seq <= ackSeq && lookups++ < MAX_REPORT_LOOKUPS && (await this.#streamedElsewhere(node, r.seq, r.taskId))) {
        take();
      } else ignored.push({ seq: r.seq, taskId: r.taskId, reason: 'unexpected' });
    }
    return { candidates, ignored };
  }

  /**
   * After the ack committed: its reports the store did not record join the ignored ones (the answer), and
   * the entries the previous ack covered are forgotten (see #unreported).
   */
  #afterAck(
    nodeId: string,
    ackSeq: number,
    checked: CheckedReports,
    outcomes: readonly NodeReportOutcome[],
  ): Array<{ seq: number; taskId: number; reason: ReportIgnoredReason }> {
    const ignored = checked.ignored;
    outcomes.forEach((o, i) => {
      const r = checked.candidates[i]!;
      if (o !== 'recorded') ignored.push({ seq: r.seq, taskId: r.taskId, reason: o === 'duplicate' ? 'duplicate' : 'unexpected' });
    });
    const streamed = this.#unreported.get(nodeId);
    if (streamed) {
      const grace = this.#reportGrace.get(nodeId) ?? 0;
      // Streamed in log order, so the oldest come first (entries re-sent after a reconnect may sit a little
      // out of order; they leave on a later ack, or by the count bound).
      for (const seq of streamed.keys()) {
        if (seq > grace) break;
        streamed.delete(seq);
      }
    }
    this.#reportGrace.set(nodeId, Math.max(this.#reportGrace.get(nodeId) ?? 0, ackSeq));
    return ignored;
  }

  /**
   * Whether purge entry `seq` of task `taskId` was streamed to `node` by another process: a replica the node
   * failed over from, or this one before a restart (issue 9). Checked by the node's host set against the log
   * itself, not by who streamed it; the caller has checked that this ack newly covers `seq`.
   */
  async #streamedElsewhere(node: NodeConfig, seq: number, taskId: number): Promise<boolean> {
    const [e] = await this.#o.store.readLog(seq - 1, 1);
    return e !== undefined && e.seq === seq && e.taskId === taskId && e.type !== 'prefetch_url' && this.#serves(node, e.hosts);
  }

  /**
   * Splits an ack's prefetch results: those of prefetches streamed to the node and not yet reported
   * (hardening issue 1) go to the store; the others are ignored rather than refused, and named in the
   * answer: refusing the ack would also refuse its seq and lease, and an honest node can race (a result
   * after the deadline, or a retried ack) — it must not be fenced for it. A result this process did not
   * stream (the node failed over from another replica, issue 9) counts when it carries its entry's seq,
   * that seq is at or below what the node's stream here started from or was sent, and the log holds a
   * prefetch of that task there for one of the node's hosts. A result the store already holds for this
   * node is `duplicate` (one read, only for results not taken).
   */
  async #checkResults(node: NodeConfig, results: readonly TaskResult[]): Promise<CheckedResults> {
    const candidates: PrefetchResultInput[] = [];
    const ignored: Array<{ taskId: number; reason: IgnoredReason }> = [];
    const take = (r: TaskResult) =>
      candidates.push({
        taskId: r.taskId, ok: r.ok,
        failType: r.ok ? null : (r.failType ?? 'taskFailed'),
        failMessage: r.ok ? null : `${node.id}: ${r.failMessage ?? 'failed'}`,
      });
    const awaiting = this.#awaiting.get(node.id);
    const sent = this.#sent.get(node.id);
    const others: number[] = [];
    const elsewhere: Array<TaskResult & { seq: number }> = [];
    for (const r of results) {
      if (awaiting?.has(r.taskId)) take(r);
      else if (r.seq !== undefined && sent !== undefined && r.seq <= sent) elsewhere.push({ ...r, seq: r.seq });
      else others.push(r.taskId);
    }
    if (elsewhere.length) {
      const log = await this.#logEntries(elsewhere.map((r) => r.seq));
      for (const r of elsewhere) {
        const e = log.get(r.seq);
        if (e && e.taskId === r.taskId && e.type === 'prefetch_url' && this.#serves(node, e.hosts)) take(r);
        else others.push(r.taskId);
      }
    }
    if (others.length) {
      const seen = new Set((await this.#o.store.prefetchResults(others)).filter((x) => x.nodeId === node.id).map((x) => x.taskId));
      for (const taskId of others) ignored.push({ taskId, reason: seen.has(taskId) ? 'duplicate' : 'unexpected' });
    }
    return { candidates, ignored };
  }

  /**
   * The log entries at `seqs`: from the shared tail when it holds them, else read in runs (at most
   * MAX_RESULT_READS reads of up to 1,000 entries per call; seqs beyond are left out, as pruned ones are).
   */
  async #logEntries(seqs: readonly number[]): Promise<Map<number, PurgeLogEntry>> {
    const found = new Map<number, PurgeLogEntry>();
    const wanted = [...new Set(seqs)].sort((a, b) => a - b);
    let reads = 0;
    for (let i = 0; i < wanted.length; i++) {
      const seq = wanted[i]!;
      if (found.has(seq)) continue;
      const held = this.#tail.entry(seq);
      if (held) {
        found.set(seq, held);
        continue;
      }
      if (reads++ >= MAX_RESULT_READS) break;
      // One read from here to the last wanted seq within 1,000 entries (the log is gap-free).
      let last = seq;
      for (let j = i + 1; j < wanted.length && wanted[j]! < seq + 1000; j++) last = wanted[j]!;
      for (const e of await this.#o.store.readLog(seq - 1, last - seq + 1)) found.set(e.seq, e);
    }
    return found;
  }

  /**
   * After the ack committed: the results the store recorded are no longer awaited and join this process's
   * outcomes (nodeViews); `failed` when one of them is a failure (settled before the ack is answered).
   */
  #recordResults(
    nodeId: string,
    checked: CheckedResults,
    outcomes: readonly NodeReportOutcome[],
    now: number,
  ): { failed: boolean; ignored: Array<{ taskId: number; reason: IgnoredReason }> } {
    let failed = false;
    const ignored = checked.ignored;
    const awaiting = this.#awaiting.get(nodeId);
    checked.candidates.forEach((r, i) => {
      const o = outcomes[i];
      awaiting?.delete(r.taskId);
      if (o !== 'recorded') {
        ignored.push({ taskId: r.taskId, reason: o === 'duplicate' ? 'duplicate' : 'unexpected' });
        return;
      }
      // A late result for a settled task is still shown by nodeViews; it changes no status.
      let kept = this.#prefetch.get(r.taskId) ?? this.#settledPrefetch.get(r.taskId);
      if (!kept) this.#prefetch.set(r.taskId, (kept = { ok: new Set<string>(), failed: new Map(), since: now }));
      addResult(kept, nodeId, r);
      failed ||= !r.ok;
    });
    return { failed, ignored };
  }

  /** The stored outcomes of the prefetches among `tasks` (one read; none when there is no prefetch). */
  async #storedOutcomes(tasks: readonly TaskRecord[]): Promise<ReadonlyMap<number, PrefetchOutcome>> {
    const ids = tasks.filter((t) => t.type === 'prefetch_url').map((t) => t.id);
    return ids.length ? outcomesOf(await this.#o.store.prefetchResults(ids)) : new Map();
  }

  /** Fenced, as the verdict may assume it: only the leader assumes anything (see #leader). */
  #countsFenced(nodeId: string, now: number, progressOf?: (id: string) => Progress | undefined): boolean {
    return this.#leader && this.#fenced(nodeId, now, progressOf);
  }

  #fenced(nodeId: string, now: number, progressOf: (id: string) => Progress | undefined = (id) => this.#progress.get(id)): boolean {
    const node = this.#nodes.get(nodeId);
    // A cache that keeps serving without its agent (nginx) may still hold the purged copy: never fenced.
    if (node !== undefined && !fencesItself(node)) return false;
    const p = progressOf(nodeId);
    // A node that never acked holds no lease, so it serves no hits (DESIGN invariant 4).
    return !p || now - p.seenAt > this.#leaseMs;
  }

  /** Re-derives the status of processing tasks; coalesces concurrent calls. */
  settle(): void {
    void this.#settle();
  }

  /** settle(), resolving once a pass that started after this call has finished (it never rejects). */
  #settle(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#settling) {
      this.#settleAgain = true;
      return this.#settling;
    }
    return (this.#settling = (async () => {
      try {
        do {
          this.#settleAgain = false;
          await this.#exclusive(() => this.#settleOnce());
        } while (this.#settleAgain && !this.#closed);
      } catch (e) {
        this.#o.logger.error('settling task statuses failed', { error: e });
      } finally {
        this.#settling = undefined;
      }
    })());
  }

  async #settleOnce(): Promise<void> {
    const { store, clock } = this.#o;
    // Replicas record the acks of the nodes that stream from them: their progress and leases are in the store.
    if (store.replicas) await this.#loadProgress();
    const now = clock.now();
    const last = await store.lastSeq();
    // Page through every processing task; settle each page on its own and yield between pages, so a
    // large backlog (a restart onto a busy store) never holds the event loop for long.
    let after = 0;
    for (;;) {
      const tasks = await store.processingTasks(last, 1000, after);
      const outcomes = await this.#storedOutcomes(tasks);
      const updates: TaskUpdate[] = [];
      for (const t of tasks) {
        after = t.seq ?? after;
        const u = this.#verdict(t, now, outcomes);
        if (u) updates.push(u);
      }
      if (updates.length) await this.#finish(updates, now);
      if (tasks.length < 1000 || this.#closed) break;
      await new Promise<void>((r) => setImmediate(r));
    }
    // Past the deadline every task has settled: older outcomes only serve nodeViews. Oldest first, so the
    // scan stops at the first one to keep (`since` is when the first result came, near enough in order).
    const keep = 2 * this.#o.config.fanout.taskTimeoutMs;
    for (const outcomes of [this.#settledPrefetch, this.#prefetch]) {
      for (const [taskId, o] of outcomes) {
        if (now - o.since <= keep) break;
        outcomes.delete(taskId);
      }
    }
    // Stop waiting for results no view would show any more. Entries are added in log order, so the oldest
    // come first (a re-sent entry may sit a little out of order; it leaves on a later pass).
    for (const m of this.#awaiting.values()) {
      for (const [taskId, createdAt] of m) {
        if (now - createdAt <= keep) break;
        m.delete(taskId);
      }
    }
  }

  /** Merges the store's node progress (acks taken by other replicas) into this process's view. */
  async #loadProgress(): Promise<void> {
    for (const p of await this.#o.store.nodeProgress()) {
      if (!this.#nodes.has(p.nodeId)) continue;
      const mine = this.#progress.get(p.nodeId);
      if (mine && mine.ackedSeq >= p.ackedSeq && mine.seenAt >= p.seenAt) continue;
      this.#progress.set(p.nodeId, { ackedSeq: Math.max(p.ackedSeq, mine?.ackedSeq ?? 0), seenAt: Math.max(p.seenAt, mine?.seenAt ?? 0) });
    }
  }

  async #finish(updates: TaskUpdate[], at: number): Promise<void> {
    await this.#o.store.updateTasks(updates, at, this.#o.webhooks);
    this.#settled(updates, at);
  }

  /** Memory and listeners after `updates` committed. */
  #settled(updates: readonly TaskUpdate[], at: number): void {
    for (const u of updates) {
      const o = this.#prefetch.get(u.taskId);
      if (!o) continue;
      this.#prefetch.delete(u.taskId);
      this.#settledPrefetch.set(u.taskId, o);
    }
    for (const taskId of this.#settledPrefetch.keys()) {
      if (this.#settledPrefetch.size <= (this.#o.maxSettledOutcomes ?? 10_000)) break;
      this.#settledPrefetch.delete(taskId);
    }
    for (const l of this.#settledListeners) l(updates, at);
  }

  /** DESIGN invariant 3: success when every responsible node applied it (or is fenced), timeout past the deadline. */
  #verdict(
    t: TaskRecord,
    now: number,
    outcomes: ReadonlyMap<number, PrefetchOutcome>,
    progressOf: (id: string) => Progress | undefined = (id) => this.#progress.get(id),
  ): TaskUpdate | undefined {
    const seq = t.seq ?? 0;
    const nodes = this.#responsible(t.hosts);
    // A prefetch's results as stored: every node's, whichever process took them (issue 9).
    const outcome = outcomes.get(t.id);
    let pending: string[];
    if (t.type === 'prefetch_url') {
      const failed = outcome?.failed.values().next().value;
      if (failed) {
        // FailMessage reads "NODE: why"; the node's own record needs only the why.
        for (const [nodeId, f] of outcome!.failed) this.#noteError(nodeId, t, now, `${t.target}: ${f.failMessage.slice(nodeId.length + 2)}`);
        return { taskId: t.id, status: 'failed', failType: failed.failType, failMessage: failed.failMessage };
      }
      // A prefetch is done when every reachable node has the object; a fenced node cannot fetch it.
      pending = nodes.filter((n) => !outcome?.ok.has(n) && !this.#countsFenced(n, now, progressOf));
      if (pending.length === 0 && (outcome?.ok.size ?? 0) > 0) return { taskId: t.id, status: 'success' };
      if (pending.length === 0) pending = nodes;
    } else {
      pending = nodes.filter((n) => (progressOf(n)?.ackedSeq ?? 0) < seq && !this.#countsFenced(n, now, progressOf));
      if (pending.length === 0) return { taskId: t.id, status: 'success' };
    }
    // Deadlines are the leader's to call (a replica's clock or view may lag).
    if (!this.#leader) return undefined;
    if (now - t.createdAt > this.#o.config.fanout.taskTimeoutMs) {
      for (const nodeId of pending) this.#noteError(nodeId, t, now, `${t.target}: not applied within ${Math.round(this.#o.config.fanout.taskTimeoutMs / 1000)} s`);
      return {
        taskId: t.id,
        status: 'timeout',
        failType: 'taskFailed',
        failMessage: `not applied within ${Math.round(this.#o.config.fanout.taskTimeoutMs / 1000)} s by: ${pending.join(', ')}`,
      };
    }
    return undefined;
  }

  /** Every configured node, now (the metrics' gauges). Cost: one pass over the nodes and the open streams, no store access. */
  nodeGauges(): NodeGauge[] {
    const connected = new Set(this.#streams.values());
    const now = this.#o.clock.now();
    return [...this.#nodes.values()].map((n) => {
      const p = this.#progress.get(n.id);
      return {
        nodeId: n.id,
        kind: n.driver?.type ?? 'edge',
        connected: connected.has(n.id),
        ackedSeq: p?.ackedSeq ?? 0,
        seenAt: p?.seenAt ?? null,
        leaseFresh: p !== undefined && now - p.seenAt <= this.#leaseMs,
        hosts: n.hosts,
      };
    });
  }

  #responsible(hosts: readonly string[]): string[] {
    const ids = new Set<string>();
    for (const h of hosts) for (const n of this.#o.directory.nodesFor(h)) ids.add(n.id);
    return [...ids];
  }

  #noteLinkError(nodeId: string, message: string): void {
    this.#lastError.set(nodeId, { at: this.#o.clock.now(), message });
  }

  /** Every configured node's connection, applied sequence, lease and last error, in config order. */
  fleet(): FleetEntry[] {
    const now = this.#o.clock.now();
    const streams = new Map<string, number>();
    for (const id of this.#streams.values()) streams.set(id, (streams.get(id) ?? 0) + 1);
    return [...this.#nodes.values()].map((node) => {
      const p = this.#progress.get(node.id);
      const left = p ? Math.max(0, p.seenAt + this.#leaseMs - now) : 0;
      const lease = !fencesItself(node) ? 'unfenced' : !p ? 'none' : left > 0 ? 'fresh' : 'expired';
      return {
        nodeId: node.id,
        node,
        streams: streams.get(node.id) ?? 0,
        ackedSeq: p?.ackedSeq ?? 0,
        seenAt: p?.seenAt ?? null,
        lease,
        leaseLeftMs: left,
        lastError: this.#lastError.get(node.id) ?? null,
      };
    });
  }

  /**
   * nodeViews of each of one job's `tasks` (by task id), with the prefetch results as stored, whichever
   * process took them; `reports` are the job's (TaskStore.jobNodeReports). Cost: one read when the job
   * holds prefetches.
   */
  async jobViews(tasks: readonly TaskRecord[], reports: readonly NodeReport[]): Promise<Map<number, NodeView[]>> {
    const prefetches = tasks.filter((t) => t.type === 'prefetch_url').map((t) => t.id);
    const results = prefetches.length ? Map.groupBy(await this.#o.store.prefetchResults(prefetches), (r) => r.taskId) : new Map<number, PrefetchResult[]>();
    const reportsOf = Map.groupBy(reports, (r) => r.taskId);
    return new Map(tasks.map((t) => [t.id, this.nodeViews(t, reportsOf.get(t.id), t.type === 'prefetch_url' ? (results.get(t.id) ?? []) : undefined)]));
  }

  /**
   * Per-node progress of one task (DESIGN invariant 3: "per-node progress is kept and shown"); `reports`
   * are this task's node reports (TaskStore.jobNodeReports, those of other tasks are not looked at);
   * `results`, when given, its prefetch results (TaskStore.prefetchResults), else those this process took.
   */
  nodeViews(t: TaskRecord, reports: readonly NodeReport[] = [], results?: readonly PrefetchResult[]): NodeView[] {
    const stored = results && outcomesOf(results.filter((r) => r.taskId === t.id)).get(t.id);
    const now = this.#o.clock.now();
    return this.#responsible(t.hosts).map((nodeId) => {
      const p = this.#progress.get(nodeId);
      const r = reports.find((x) => x.nodeId === nodeId && x.taskId === t.id);
      const configured = this.#nodes.get(nodeId)?.driver?.type ?? 'builtin';
      const base = {
        nodeId,
        driver: r?.driver ?? configured,
        ackedSeq: p?.ackedSeq ?? 0,
        seenAt: p?.seenAt ?? null,
        ...(r ? { report: { executedAs: r.executedAs, matched: r.matched, note: r.note, appliedAt: r.appliedAt } } : {}),
      };
      const outcome = results ? stored : (this.#prefetch.get(t.id) ?? this.#settledPrefetch.get(t.id));
      const failed = outcome?.failed.get(nodeId);
      if (failed) return { ...base, state: 'failed' as const, failMessage: failed.failMessage };
      // Its outcome no longer kept: the task's own FailMessage still names the node that failed it.
      if (!outcome && t.type === 'prefetch_url' && t.status === 'failed' && t.failMessage?.startsWith(`${nodeId}: `)) {
        return { ...base, state: 'failed' as const, failMessage: t.failMessage };
      }
      const applied = t.type === 'prefetch_url' ? (outcome?.ok.has(nodeId) ?? t.status === 'success') : base.ackedSeq >= (t.seq ?? 0);
      if (applied) return { ...base, state: 'applied' as const };
      return { ...base, state: this.#fenced(nodeId, now) ? ('fenced' as const) : ('pending' as const) };
    });
  }
}

