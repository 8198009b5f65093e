// Retention in bounded steps, what every backend shares: how many whole jobs one prune transaction takes.

/** Prune works in transactions of about this many tasks so that writers are never held up long. */
export const PRUNE_BATCH_TASKS = 2_000;
/** Jobs read as candidates for one prune transaction (oldest first). */
export const PRUNE_BATCH_JOBS = 500;

/**
 * The ids of the candidates (oldest first) that one prune transaction deletes: whole jobs while their
 * tasks fit PRUNE_BATCH_TASKS, and always the first one (a job larger than the budget goes alone).
 */
export function pruneBatchJobs(candidates: ReadonlyArray<{ job_id: string; task_count: number }>): string[] {
  const ids: string[] = [];
  let tasks = 0;
  for (const c of candidates) {
    if (ids.length > 0 && tasks + c.task_count > PRUNE_BATCH_TASKS) break;
    ids.push(c.job_id);
    tasks += c.task_count;
  }
  return ids;
}
