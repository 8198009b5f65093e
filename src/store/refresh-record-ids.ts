// What every backend shares about the legacy refresh log's records: which jobs have them and their public ids.
import type { TaskType } from '../purge/types.ts';
import { REFRESH_TYPES, type RefreshType } from './task-store.ts';

export const isRefreshType = (t: TaskType): t is RefreshType => (REFRESH_TYPES as readonly TaskType[]).includes(t);

/** Record ids other than job ids are drawn below this: 2^48 < 10^15, and every job id has 16 digits. */
export const RANDOM_RECORD_ID_LIMIT = 2 ** 48;

/**
 * The public id of a job's first record: the job id itself when it is a 16-digit number that a JSON
 * client reads exactly (newJobId's shape), else null (a random one is drawn below RANDOM_RECORD_ID_LIMIT).
 */
export function jobRecordId(jobId: string): number | null {
  // SAFE_JOB_RECORD_ID_GLOB and the safe-integer bound say the same in SQL (writeHostRows).
  if (!/^[1-9]\d{15}$/.test(jobId)) return null;
  const n = Number(jobId);
  return Number.isSafeInteger(n) ? n : null;
}

/** jobRecordId's pattern as an SQLite GLOB: a nonzero digit, then 15 digits. */
export const SAFE_JOB_RECORD_ID_GLOB = `[1-9]${'[0-9]'.repeat(15)}`;

/** ASCII-only lower case: how targetContains folds case (TaskQuery), the same as SQLite's lower(). */
export const asciiLower = (s: string): string => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
