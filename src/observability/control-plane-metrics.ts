// The control plane's own metrics: tasks created and settled, accept → applied and accept → settled
// latency, store write latency, the fleet (per node), quota use per account. Everything is kept in
// memory and read by collect() callbacks, so a scrape costs the same whatever the history holds.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Clock } from '../shared/clock.ts';

/** A configured node as the fan-out sees it now (structurally FanoutHub's NodeStatus). */
export interface FleetNode {
  readonly nodeId: string;
  readonly connected: boolean;
  readonly ackedSeq: number;
  readonly leaseFresh: boolean;
  readonly hosts: readonly string[] | undefined;
}

/** A configured account: the only accounts that get a label. */
export interface MeteredAccount {
  readonly appId: number;
  /** Daily limit per quota type. */
  readonly daily: Readonly<Record<string, number>>;
}

/** The fields of a committed job and its tasks that the metrics read. */
export interface CommittedJob {
  readonly type: string;
  readonly appId: number;
  readonly createdAt: number;
}
export interface CommittedTask {
  readonly id: number;
  readonly seq: number | null;
  readonly status: string;
  readonly hosts: readonly string[];
  readonly createdAt: number;
}

export interface ControlPlaneMetricsOptions {
  readonly registry: Registry;
  readonly clock: Clock;
  /** Every configured node now; read once per scrape. */
  readonly nodes: () => readonly FleetNode[];
  /** Every configured account; read once per scrape. */
  readonly accounts: () => readonly MeteredAccount[];
  /** Whether per-account series are exposed (only behind metrics.token: see docs/security.md). */
  readonly perAccount: () => boolean;
  /** The quota day now (`YYYY-MM-DD` in server.timezone). */
  readonly today: () => string;
  /** Whether node `nodeId` is sent entries of these hosts (only those count for its apply latency). */
  readonly serves: (nodeId: string, hosts: readonly string[]) => boolean;
  /** Whether this process runs the duties that must run once (the leading replica; always, alone on SQLite). */
  readonly leading?: () => boolean;
  /** Log entries whose accept time is remembered (for apply latency and lag in seconds). Default 65,536. */
  readonly window?: number;
  /** Processing tasks whose accept time is remembered until they settle. Default 100,000. */
  readonly maxPending?: number;
}

/** Seconds from accept to applied or settled: milliseconds when the fleet keeps up, up to the task timeout. */
const DELIVERY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Seconds of a durable write: an fsync, or several when writes queue. */
const WRITE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class ControlPlaneMetrics {
  readonly #o: ControlPlaneMetricsOptions;
  readonly #tasksCreated: Counter<'type'>;
  readonly #tasksSettled: Counter<'status'>;
  readonly #applied: Histogram;
  readonly #settled: Histogram<'status'>;
  readonly #writes: Histogram<'op'>;
  readonly #nodeGauges: Record<'connected' | 'appliedSeq' | 'lagEntries' | 'lagSeconds' | 'lease', Gauge<'node'>>;
  readonly #quotaUsed: Gauge<'account' | 'type'>;
  readonly #quotaLimit: Gauge<'account' | 'type'>;
  /** Recent log entries by seq % window: when each was accepted, and its hosts. */
  readonly #ringSeq: Float64Array;
  readonly #ringAt: Float64Array;
  readonly #ringHosts: Array<readonly string[] | undefined>;
  #lastSeq = 0;
  /** Each node's acked seq as last seen by nodeAcked() (the start of its next apply observations). */
  readonly #acked = new Map<string, number>();
  /** Processing tasks created by this process: task id → accept time, oldest first. */
  readonly #pending = new Map<number, number>();
  /** Units used per account and quota type on #quotaDay. */
  #quota = new Map<number, Map<string, number>>();
  #quotaDay = '';
  #fleetAt = Number.NEGATIVE_INFINITY;

  constructor(options: ControlPlaneMetricsOptions) {
    this.#o = options;
    const registers = [options.registry];
    const window = options.window ?? 65_536;
    this.#ringSeq = new Float64Array(window).fill(-1);
    this.#ringAt = new Float64Array(window);
    this.#ringHosts = new Array<readonly string[] | undefined>(window);
    this.#tasksCreated = new Counter({ name: 'edgepurge_tasks_created_total', help: 'Tasks accepted (committed), by type.', labelNames: ['type'], registers });
    this.#tasksSettled = new Counter({ name: 'edgepurge_tasks_settled_total', help: 'Tasks that reached a final status, by status (success, failed, timeout).', labelNames: ['status'], registers });
    this.#applied = new Histogram({
      name: 'edgepurge_task_applied_seconds',
      help: 'Accept → applied: from a task\'s commit until a node serving its host acked its seq (one observation per task and node).',
      buckets: DELIVERY_BUCKETS,
      registers,
    });
    this.#settled = new Histogram({ name: 'edgepurge_task_settled_seconds', help: 'Accept → settled: from a task\'s commit until its final status, by status.', labelNames: ['status'], buckets: DELIVERY_BUCKETS, registers });
    this.#writes = new Histogram({ name: 'edgepurge_store_commit_seconds', help: 'Durable store writes, from the call until committed, by operation.', labelNames: ['op'], buckets: WRITE_BUCKETS, registers });
    const fleet = () => this.#collectFleet();
    const nodeGauge = (name: string, help: string) => new Gauge({ name, help, labelNames: ['node'], registers, collect: fleet });
    this.#nodeGauges = {
      connected: nodeGauge('edgepurge_node_connected', '1 while the node has a purge-log stream open, else 0.'),
      appliedSeq: nodeGauge('edgepurge_node_applied_seq', 'Highest purge-log seq the node acked.'),
      lagEntries: nodeGauge('edgepurge_node_lag_entries', 'Purge-log entries committed after the node\'s applied seq.'),
      lagSeconds: nodeGauge('edgepurge_node_lag_seconds', 'How long the oldest entry the node has not acked has been committed (0 when caught up).'),
      lease: nodeGauge('edgepurge_node_lease_fresh', '1 while the node\'s lease is fresh (it may serve hits), else 0.'),
    };
    const leader: Gauge = new Gauge({
      name: 'edgepurge_replica_leader',
      help: '1 while this control plane runs the duties that must run once (settling, timeouts, pruning, webhooks), else 0.',
      registers,
      collect: () => leader.set(options.leading?.() === false ? 0 : 1),
    });
    const lastSeq: Gauge = new Gauge({ name: 'edgepurge_purge_log_last_seq', help: 'Highest purge-log seq committed.', registers, collect: () => lastSeq.set(this.#lastSeq) });
    this.#quotaUsed = new Gauge({
      name: 'edgepurge_quota_used',
      help: 'Quota units used today (server.timezone) per account (appId) and type, for the types it used; only with metrics.token set.',
      labelNames: ['account', 'type'],
      registers,
      collect: () => this.#collectQuota(this.#quotaUsed, (a, type) => this.#quota.get(a.appId)?.get(type) ?? 0),
    });
    this.#quotaLimit = new Gauge({
      name: 'edgepurge_quota_daily_limit',
      help: 'Daily quota per account (appId) and type, beside each edgepurge_quota_used series; only with metrics.token set.',
      labelNames: ['account', 'type'],
      registers,
      collect: () => this.#collectQuota(this.#quotaLimit, (a, type) => a.daily[type] ?? 0),
    });
  }

  /** The log's end at start (the store's lastSeq), and log entries of it still to be applied by some node. */
  seedLog(lastSeq: number, entries: ReadonlyArray<{ seq: number; createdAt: number; hosts: readonly string[] }>): void {
    this.#lastSeq = Math.max(this.#lastSeq, lastSeq);
    for (const e of entries) this.#remember(e.seq, e.createdAt, e.hosts);
  }

  /** A node's applied seq at start: its later acks are measured from here. */
  seedNode(nodeId: string, ackedSeq: number): void {
    if (!this.#acked.has(nodeId)) this.#acked.set(nodeId, ackedSeq);
  }

  /**
   * What the store says an account used on `day` (at start, and after a reload). It replaces the count
   * kept so far: the store's figure holds every job committed before it was read.
   */
  seedQuota(appId: number, day: string, used: ReadonlyMap<string, number>): void {
    this.#rollQuotaDay(day);
    if (day === this.#quotaDay) this.#quota.set(appId, new Map(used));
  }

  /** Observer of the store: a durable write took `seconds`. */
  written(op: string, seconds: number): void {
    this.#writes.labels(op).observe(seconds);
  }

  /** Observer of the store: a job was committed. */
  jobCreated(job: CommittedJob, charge: { quotaType: string; day: string; amount: number }, tasks: readonly CommittedTask[]): void {
    this.#tasksCreated.labels(job.type).inc(tasks.length);
    this.#rollQuotaDay(charge.day);
    if (charge.day === this.#quotaDay) {
      let m = this.#quota.get(job.appId);
      if (!m) this.#quota.set(job.appId, (m = new Map()));
      m.set(charge.quotaType, (m.get(charge.quotaType) ?? 0) + charge.amount);
    }
    const maxPending = this.#o.maxPending ?? 100_000;
    for (const t of tasks) {
      if (t.seq !== null) this.#remember(t.seq, t.createdAt, t.hosts);
      if (t.status === 'processing') {
        this.#pending.set(t.id, t.createdAt);
        // Oldest first: a task that waits this long is timing out anyway; its latency is then not measured.
        if (this.#pending.size > maxPending) this.#pending.delete(this.#pending.keys().next().value!);
      } else {
        this.#tasksSettled.labels(t.status).inc();
      }
    }
  }

  /** The fan-out settled tasks at `at` (ms). */
  tasksSettled(updates: ReadonlyArray<{ taskId: number; status: string }>, at: number): void {
    for (const u of updates) {
      this.#tasksSettled.labels(u.status).inc();
      const createdAt = this.#pending.get(u.taskId);
      if (createdAt === undefined) continue;
      this.#pending.delete(u.taskId);
      this.#settled.labels(u.status).observe(Math.max(0, at - createdAt) / 1000);
    }
  }

  /** Observer of the store: `nodeId` acked up to `seq` at `at` (ms). One observation per remembered entry it serves. */
  nodeAcked(nodeId: string, seq: number, at: number): void {
    const prev = this.#acked.get(nodeId);
    if (prev !== undefined && seq <= prev) return;
    this.#acked.set(nodeId, seq);
    // The first ack seen from a node only sets where it stands: what it applied before is unknown.
    if (prev === undefined) return;
    const window = this.#ringSeq.length;
    for (let s = Math.max(prev + 1, seq - window + 1); s <= seq; s++) {
      const i = s % window;
      if (this.#ringSeq[i] !== s) continue;
      if (!this.#o.serves(nodeId, this.#ringHosts[i]!)) continue;
      this.#applied.observe(Math.max(0, at - this.#ringAt[i]!) / 1000);
    }
  }

  #remember(seq: number, createdAt: number, hosts: readonly string[]): void {
    const i = seq % this.#ringSeq.length;
    this.#ringSeq[i] = seq;
    this.#ringAt[i] = createdAt;
    this.#ringHosts[i] = hosts;
    if (seq > this.#lastSeq) this.#lastSeq = seq;
  }

  /** Accept time of the first entry after `seq`, or of the oldest one remembered when it is older than the window. */
  #acceptedAfter(seq: number): number | undefined {
    const window = this.#ringSeq.length;
    for (let s = Math.max(seq + 1, this.#lastSeq - window + 1); s <= this.#lastSeq; s++) {
      if (this.#ringSeq[s % window] === s) return this.#ringAt[s % window];
    }
    return undefined;
  }

  #collectFleet(): void {
    // One read of the fleet serves all five gauges of a scrape.
    const now = this.#o.clock.now();
    if (now - this.#fleetAt < 100 && now >= this.#fleetAt) return;
    this.#fleetAt = now;
    const g = this.#nodeGauges;
    for (const gauge of Object.values(g)) gauge.reset();
    for (const n of this.#o.nodes()) {
      const behind = Math.max(0, this.#lastSeq - n.ackedSeq);
      const since = behind > 0 ? this.#acceptedAfter(n.ackedSeq) : undefined;
      g.connected.labels(n.nodeId).set(n.connected ? 1 : 0);
      g.appliedSeq.labels(n.nodeId).set(n.ackedSeq);
      g.lagEntries.labels(n.nodeId).set(behind);
      g.lagSeconds.labels(n.nodeId).set(since === undefined ? 0 : Math.max(0, now - since) / 1000);
      g.lease.labels(n.nodeId).set(n.leaseFresh ? 1 : 0);
    }
  }

  #rollQuotaDay(day: string): void {
    // Days only move forward; a write stamped with yesterday (at midnight) counts for no gauge.
    if (day > this.#quotaDay) {
      this.#quotaDay = day;
      this.#quota = new Map();
    }
  }

  /**
   * Fills a per-account gauge: configured accounts only, so the series are bounded by the config, and
   * only the types an account used today (absent = nothing used): series with nothing to say would
   * make up most of a scrape's cost (100 accounts × 6 types × 2 gauges).
   */
  #collectQuota(gauge: Gauge<'account' | 'type'>, value: (a: MeteredAccount, type: string) => number): void {
    gauge.reset();
    if (!this.#o.perAccount()) return;
    this.#rollQuotaDay(this.#o.today());
    for (const a of this.#o.accounts()) {
      const used = this.#quota.get(a.appId);
      if (used === undefined) continue;
      const account = String(a.appId);
      for (const [type, n] of used) if (n > 0) gauge.labels(account, type).set(value(a, type));
    }
  }
}
