// Group commit, what every backend shares: createJob calls queued in one batch and answered after its COMMIT.
import type { TaskRecord } from '../purge/types.ts';
import type { NewJob, QuotaCharge, WebhookRouter } from './task-store.ts';

/** A createJob call waiting for the batch that commits it. */
export interface PendingJob {
  readonly job: NewJob;
  readonly charge: QuotaCharge;
  /** Routes the event of a job settled at creation (TaskStore.createJob). */
  readonly webhooks: WebhookRouter | undefined;
  readonly resolve: (r: { tasks: TaskRecord[] }) => void;
  readonly reject: (e: unknown) => void;
}

/** One job's fate in a committed batch: its tasks, or why it alone was refused (quota, duplicate id). */
export type JobOutcome = { ok: true; tasks: TaskRecord[] } | { ok: false; error: unknown };

/**
 * Answers every call of a batch: each with its outcome once the batch committed, or all with `commit`'s
 * error when it did not (nothing of the batch is then acknowledged, DESIGN invariant 1).
 */
export async function settleBatch(batch: readonly PendingJob[], commit: () => JobOutcome[] | Promise<JobOutcome[]>): Promise<JobOutcome[]> {
  let outcomes: JobOutcome[];
  try {
    outcomes = await commit();
  } catch (error) {
    for (const p of batch) p.reject(error);
    return [];
  }
  batch.forEach((p, i) => {
    const o = outcomes[i]!;
    if (o.ok) p.resolve({ tasks: o.tasks });
    else p.reject(o.error);
  });
  return outcomes;
}
