// Entry point of one SQLite read worker thread: a read-only connection to the store's WAL database,
// answering the pool's history queries one at a time (see sqlite-read-pool.ts).
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import { pageCacheKiB } from './sqlite-rows.ts';
import { SqliteTaskReader } from './sqlite-task-reader.ts';

/** The reads a worker serves: the history queries whose cost grows with a tenant's history (and a diagnostic). */
export type ReadOp = 'jobTasks' | 'jobNodeReports' | 'listTasks' | 'listRefreshRecords' | 'pageCacheKiB';

export interface ReadWorkerData {
  readonly path: string;
  readonly busyTimeoutMs: number;
  /** Page cache of this connection, KiB. */
  readonly cacheKiB: number;
  /** Added to the thread's nice value (Linux): a long read yields the CPU to the event loop. */
  readonly niceness: number;
}

export interface ReadCall {
  readonly id: number;
  readonly op: ReadOp;
  readonly args: readonly unknown[];
}

export type ReadReply =
  | { readonly ready: true }
  /** The read's result as JSON text (see SqliteReadPool: cheaper for the event loop to take in). */
  | { readonly id: number; readonly json: string }
  | { readonly id: number; readonly error: { readonly name: string; readonly message: string } };

/**
 * Lowers this thread's CPU priority. Linux nice values are per thread, and setpriority() takes a
 * thread id; /proc/thread-self names it. Elsewhere (or without permission) the thread keeps the
 * process's priority, which is only less kind to the event loop, never wrong.
 */
function lowerPriority(niceness: number): void {
  if (niceness <= 0) return;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isSafeInteger(tid)) setPriority(tid, Math.min(19, niceness));
  } catch {
    // not Linux, or not allowed: keep the default priority
  }
}

function serve(port: NonNullable<typeof parentPort>, data: ReadWorkerData): void {
  lowerPriority(data.niceness);
  // Read-only: this connection can never write, whatever a bug asks of it. WAL lets it read while
  // the writer (the main thread) commits; each read transaction sees every commit made before it.
  const db = new DatabaseSync(data.path, { readOnly: true, timeout: data.busyTimeoutMs });
  db.exec(`PRAGMA busy_timeout = ${Math.trunc(data.busyTimeoutMs)}`);
  db.exec(`PRAGMA cache_size = ${-Math.trunc(data.cacheKiB)}`);
  db.exec('PRAGMA temp_store = MEMORY');
  const reader = new SqliteTaskReader(() => db);
  const ops: { readonly [K in ReadOp]: (args: readonly unknown[]) => unknown } = {
    jobTasks: (a) => reader.jobTasks(a[0] as number, a[1] as string),
    jobNodeReports: (a) => reader.jobNodeReports(a[0] as number, a[1] as string),
    listTasks: (a) => reader.listTasks(a[0] as Parameters<SqliteTaskReader['listTasks']>[0]),
    listRefreshRecords: (a) => reader.listRefreshRecords(a[0] as Parameters<SqliteTaskReader['listRefreshRecords']>[0]),
    pageCacheKiB: () => pageCacheKiB(db),
  };
  port.on('message', (call: ReadCall) => {
    let reply: ReadReply;
    try {
      reply = { id: call.id, json: JSON.stringify(ops[call.op](call.args)) };
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      reply = { id: call.id, error: { name: err.name, message: err.message } };
    }
    port.postMessage(reply);
  });
  port.postMessage({ ready: true } satisfies ReadReply);
}

if (parentPort) serve(parentPort, workerData as ReadWorkerData);
