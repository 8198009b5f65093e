// The metrics of a node's process: the built-in edge (`edgepurge edge`) or an agent beside Varnish or
// nginx (`edgepurge agent`). Each reads a snapshot of in-memory counters per scrape; every series
// carries the node id as the `node` label.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

/** What both kinds of node report. */
interface StreamSnapshot {
  /** The purge-log stream to the control plane is open. */
  readonly connected: boolean;
  readonly appliedSeq: number;
  /** Until when the node may serve hits (ms since epoch); -Infinity before its first lease. */
  readonly leaseUntil: number;
  /** Purges applied, by type. */
  readonly appliedByType: Readonly<Record<string, number>>;
  /** Streams opened on another control-plane replica than the one before. */
  readonly failovers: number;
}

export interface EdgeSnapshot extends StreamSnapshot {
  readonly hits: number;
  readonly misses: number;
  readonly revalidated: number;
  readonly bypassed: number;
  readonly objects: number;
  readonly bytes: number;
  readonly rules: number;
  readonly evictions: number;
}

export interface AgentSnapshot extends StreamSnapshot {
  /** Log steps received and not yet executed by the cache. */
  readonly queued: number;
  readonly errors: { readonly retryable: number; readonly refused: number };
  readonly retries: number;
}

type Read<S> = (s: S) => number;

/** Gauges and counters filled from one snapshot per scrape (the first metric collected takes it). */
class SnapshotMetrics<S> {
  readonly registry = new Registry();
  readonly #read: () => S;
  #snapshot: S | undefined;
  #takenAt = 0;

  constructor(nodeId: string, read: () => S) {
    this.#read = read;
    this.registry.setDefaultLabels({ node: nodeId });
    collectDefaultMetrics({ register: this.registry });
  }

  /** The snapshot of this scrape: metrics collected within the same few milliseconds share it. */
  snapshot(): S {
    const now = performance.now();
    if (this.#snapshot === undefined || now - this.#takenAt > 50) {
      this.#snapshot = this.#read();
      this.#takenAt = now;
    }
    return this.#snapshot;
  }

  gauge(name: string, help: string, read: Read<S>): void {
    const g: Gauge = new Gauge({ name, help, registers: [this.registry], collect: () => g.set(read(this.snapshot())) });
  }

  /** A counter mirroring a monotonic count kept elsewhere. */
  counter(name: string, help: string, read: Read<S>): void {
    const c: Counter = new Counter({
      name,
      help,
      registers: [this.registry],
      collect: () => {
        c.reset();
        c.inc(read(this.snapshot()));
      },
    });
  }

  counterBy(name: string, help: string, label: string, read: (s: S) => Readonly<Record<string, number>>): void {
    const c: Counter = new Counter({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      collect: () => {
        c.reset();
        for (const [value, n] of Object.entries(read(this.snapshot()))) c.inc({ [label]: value }, n);
      },
    });
  }

  /** The series both kinds of node have, under `prefix` (edgepurge_edge / edgepurge_agent). */
  stream(prefix: string, s: (x: S) => StreamSnapshot): void {
    this.gauge(`${prefix}_stream_connected`, '1 while the purge-log stream to the control plane is open, else 0.', (x) => (s(x).connected ? 1 : 0));
    this.gauge(`${prefix}_applied_seq`, 'Highest purge-log seq applied.', (x) => s(x).appliedSeq);
    this.gauge(`${prefix}_lease_expiry_timestamp_seconds`, 'When the lease from the control plane runs out (Unix seconds; 0 before the first).', (x) => {
      const until = s(x).leaseUntil;
      return Number.isFinite(until) ? until / 1000 : 0;
    });
    this.counter(`${prefix}_failovers_total`, 'Purge-log streams opened on another control-plane replica than the one before (the node failed over).', (x) => s(x).failovers);
    this.counterBy(`${prefix}_purges_applied_total`, 'Purge-log entries applied to the cache, by type.', 'type', (x) => s(x).appliedByType);
  }
}

/** The built-in edge's registry. */
export function edgeRegistry(nodeId: string, read: () => EdgeSnapshot): Registry {
  const m = new SnapshotMetrics(nodeId, read);
  m.stream('edgepurge_edge', (s) => s);
  m.counter('edgepurge_edge_hits_total', 'Requests answered from the cache (X-Cache: HIT).', (s) => s.hits);
  m.counter('edgepurge_edge_misses_total', 'Requests answered from the origin (X-Cache: MISS).', (s) => s.misses);
  m.counter('edgepurge_edge_revalidations_total', 'Stored objects confirmed by the origin with a 304 (X-Cache: REVALIDATED).', (s) => s.revalidated);
  m.counter('edgepurge_edge_bypasses_total', 'Requests relayed without the cache (methods other than GET and HEAD).', (s) => s.bypassed);
  m.counter('edgepurge_edge_evictions_total', 'Objects evicted to stay within cacheBytes.', (s) => s.evictions);
  m.gauge('edgepurge_edge_cached_objects', 'Objects in the cache.', (s) => s.objects);
  m.gauge('edgepurge_edge_cached_bytes', 'Bytes the cache holds (bodies, headers and per-object overhead).', (s) => s.bytes);
  m.gauge('edgepurge_edge_live_rules', 'Prefix, host, all and tag purge rules still checked at lookup.', (s) => s.rules);
  return m.registry;
}

/** An agent's registry. */
export function agentRegistry(nodeId: string, read: () => AgentSnapshot): Registry {
  const m = new SnapshotMetrics(nodeId, read);
  m.stream('edgepurge_agent', (s) => s);
  m.gauge('edgepurge_agent_queued_entries', 'Purge-log steps received and not yet executed by the cache.', (s) => s.queued);
  m.counterBy('edgepurge_agent_driver_errors_total', 'Failed driver calls: retryable, or refused by the cache (retried at the slowest pace).', 'kind', (s) => s.errors);
  m.counter('edgepurge_agent_retries_total', 'Driver calls that repeated a failed step.', (s) => s.retries);
  return m.registry;
}
