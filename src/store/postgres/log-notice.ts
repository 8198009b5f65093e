// The log entries of one commit, carried in its NOTIFY (issue 9): a replica woken by another's commit
// streams them without reading them back (two round trips on a loaded server: the larger part of accept →
// applied). Payload: `<last seq> <JSON array of entries, oldest first>`, each entry
// `[taskId, jobId, appId, type, method, hosts, target, headers | null, createdAt]`; the seqs are implied
// (the log is gap-free: the last one's is `last seq`). Only a commit whose entries fit sends it; the plain
// seq notification (the channel older replicas listen to) is sent either way.
import type { Method, PurgeLogEntry, TaskType } from '../../purge/types.ts';

/** NOTIFY payloads must stay under 8000 bytes; the seq and a space take up to 17 more. */
const MAX_ENTRIES_BYTES = 7900;

type Encoded = [number, string, number, string, string, readonly string[], string, Readonly<Record<string, string>> | null, number];

/** The payload after `<last seq>` (a space, then the entries), or null when it would not fit. */
export function encodeLogNotice(entries: ReadonlyArray<Omit<PurgeLogEntry, 'seq'>>): string | null {
  if (entries.length === 0) return null;
  const tail = ` ${JSON.stringify(entries.map((e): Encoded => [e.taskId, e.jobId, e.appId, e.type, e.method, e.hosts, e.target, e.headers ?? null, e.createdAt]))}`;
  return Buffer.byteLength(tail) <= MAX_ENTRIES_BYTES ? tail : null;
}

const isInt = (x: unknown): x is number => Number.isSafeInteger(x);
const isStr = (x: unknown): x is string => typeof x === 'string';

/** The entries a payload carries, their seqs filled in; undefined for anything malformed. */
export function decodeLogNotice(payload: string): { lastSeq: number; entries: PurgeLogEntry[] } | undefined {
  const space = payload.indexOf(' ');
  if (space <= 0) return undefined;
  const lastSeq = Number(payload.slice(0, space));
  let raw: unknown;
  try {
    raw = JSON.parse(payload.slice(space + 1));
  } catch {
    return undefined;
  }
  if (!isInt(lastSeq) || !Array.isArray(raw) || raw.length === 0 || raw.length > lastSeq) return undefined;
  const first = lastSeq - raw.length + 1;
  const entries: PurgeLogEntry[] = [];
  for (const [i, e] of (raw as unknown[]).entries()) {
    if (!Array.isArray(e) || e.length !== 9) return undefined;
    const [taskId, jobId, appId, type, method, hosts, target, headers, createdAt] = e as unknown[];
    if (!isInt(taskId) || !isStr(jobId) || !isInt(appId) || !isStr(type) || !isStr(method) || !isStr(target) || !isInt(createdAt)) return undefined;
    if (!Array.isArray(hosts) || !hosts.every(isStr)) return undefined;
    if (headers !== null && (typeof headers !== 'object' || Array.isArray(headers) || !Object.values(headers as object).every(isStr))) return undefined;
    const entry: PurgeLogEntry = { seq: first + i, taskId, jobId, appId, type: type as TaskType, method: method as Method, hosts, target, createdAt };
    entries.push(headers === null ? entry : { ...entry, headers: headers as Record<string, string> });
  }
  return { lastSeq, entries };
}
