// Identifiers: job ids (EdgeOne JobId / CDN TaskId / legacy task_id) and request ids.
import { randomBytes, randomInt, randomUUID } from 'node:crypto';

const B36 = '0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * A job id: the EdgeOne JobId, CDN TaskId and legacy task_id alike, so it must satisfy all three
 * shapes: digits only (the legacy docs type `taskId` as Int and old SDKs drop non-numeric ones;
 * CDN shows ids like `98547009889354471`; EdgeOne's are lowercase alphanumerics). 13 digits of
 * milliseconds then 3 random digits: 16 digits, below 2^53 so a client parsing it as a JSON number
 * keeps it exact. Uniqueness is enforced by the store's key (the caller retries on a clash).
 */
export function newJobId(nowMs: number): string {
  return `${Math.trunc(nowMs)}${String(randomInt(1000)).padStart(3, '0')}`;
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

/** A webhook event id (EdgePurge-Event-Id): random, so it tells nothing about other tenants' volume. */
export const newEventId = (): string => `evt_${randomBytes(12).toString('hex')}`;
