// A TaskStore that tells an observer about its writes (how long each took, what was committed) and
// otherwise behaves exactly as the store it wraps: the metrics see every job, settle and ack without
// the store or its callers knowing about metrics.
import type { TaskRecord } from '../purge/types.ts';
import type { NewJob, NodeAck, NodeReportInput, QuotaCharge, TaskStore, TaskUpdate, WebhookRouter } from './task-store.ts';

/** The writes an observer is told about; every member is called after the write succeeded. */
export interface StoreObserver {
  /** A durable write took `seconds`, from the call until it resolved (createJob: group-commit wait included). */
  written(op: 'create_job' | 'update_tasks' | 'ack_node', seconds: number): void;
  /** A job was committed with these tasks and this quota charge. */
  jobCreated(job: NewJob, charge: QuotaCharge, tasks: readonly TaskRecord[]): void;
  /** `nodeId`'s applied seq was recorded as `seq` at `at` (ms). */
  nodeAcked(nodeId: string, seq: number, at: number): void;
}

const since = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

/**
 * The same store, observed. A Proxy rather than a class that restates every member, so that members
 * added to TaskStore later pass through unchanged.
 */
export function instrumentStore(store: TaskStore, observer: StoreObserver): TaskStore {
  const observed: Partial<TaskStore> = {
    async createJob(job: NewJob, charge: QuotaCharge, webhooks?: WebhookRouter) {
      const t0 = process.hrtime.bigint();
      const result = await store.createJob(job, charge, webhooks);
      observer.written('create_job', since(t0));
      observer.jobCreated(job, charge, result.tasks);
      return result;
    },
    async updateTasks(updates: readonly TaskUpdate[], at: number, webhooks?: WebhookRouter) {
      const t0 = process.hrtime.bigint();
      await store.updateTasks(updates, at, webhooks);
      observer.written('update_tasks', since(t0));
    },
    async ackNode(nodeId: string, seq: number, at: number, reports?: readonly NodeReportInput[]) {
      const t0 = process.hrtime.bigint();
      const outcomes = await store.ackNode(nodeId, seq, at, reports);
      observer.written('ack_node', since(t0));
      observer.nodeAcked(nodeId, seq, at);
      return outcomes;
    },
    async ackNodes(acks: readonly NodeAck[], settled: readonly TaskUpdate[], settledAt: number, webhooks?: WebhookRouter, committed?: () => void) {
      const t0 = process.hrtime.bigint();
      const outcomes = await store.ackNodes(acks, settled, settledAt, webhooks, committed);
      // One durable write for the whole batch, counted once.
      observer.written('ack_node', since(t0));
      for (const a of acks) observer.nodeAcked(a.nodeId, a.seq, a.at);
      return outcomes;
    },
  };
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, prop) {
      if (Object.hasOwn(observed, prop)) return observed[prop as keyof TaskStore];
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      // Methods run on the real store (its private fields are not on the proxy).
      let f = bound.get(prop);
      if (f === undefined) bound.set(prop, (f = (value as (...a: unknown[]) => unknown).bind(target)));
      return f;
    },
  });
}
