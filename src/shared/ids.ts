// Identifiers: job ids (EdgeOne JobId / CDN TaskId / legacy task_id) and request ids.
import { randomBytes, randomUUID } from 'node:crypto';

const B36 = '0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * A job id: 12 lowercase alphanumerics like Tencent's (`20ga521cpwch`): 8 chars of base36
 * milliseconds (sortable until 2059) then 4 random chars. Uniqueness is enforced by the store's key.
 */
export function newJobId(nowMs: number): string {
  const t = nowMs.toString(36).padStart(8, '0').slice(-8);
  const r = randomBytes(4);
  let s = '';
  for (const b of r) s += B36[b % 36];
  return t + s;
}

export const newRequestId = (): string => randomUUID();

/** A random secret of `n` alphanumerics (credentials written by `npm start`). */
export function randomAlnum(n: number): string {
  const A = B36 + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const bytes = randomBytes(n);
  let s = '';
  for (const b of bytes) s += A[b % A.length];
  return s;
}
