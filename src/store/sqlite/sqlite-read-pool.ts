// Worker threads that run the SQLite store's history queries, so that no read statement ever runs on
// the event loop (node:sqlite is synchronous: a long statement there stalls every request and lease).
import { Worker } from 'node:worker_threads';
import type { TaskRecord } from '../../purge/types.ts';
import type { NodeReport, RefreshRecordQuery, RefreshRecord, TaskQuery } from '../task-store.ts';
import { PAGE_CACHE_KIB } from './sqlite-rows.ts';
import type { ReadCall, ReadOp, ReadReply, ReadWorkerData } from './sqlite-read-worker.ts';

export interface SqliteReadPoolOptions {
  /** The database file (WAL); the writer has created and migrated it. */
  readonly path: string;
  /** At most this many worker threads, each with its own read-only connection. */
  readonly size: number;
  readonly busyTimeoutMs: number;
  /** Page cache per connection, KiB (default PAGE_CACHE_KIB, 16 MiB). */
  readonly cacheKiB?: number;
  /** Nice value added to the workers' threads (Linux); 0 keeps the process's. */
  readonly niceness?: number;
}

/** What each read returns (the values cross the thread boundary as JSON text). */
interface ReadResults {
  jobTasks: TaskRecord[];
  jobNodeReports: NodeReport[];
  listTasks: { total: number; tasks: TaskRecord[] };
  listRefreshRecords: { total: number; records: RefreshRecord[] };
  pageCacheKiB: number;
}
interface ReadArgs {
  jobTasks: [appId: number, jobId: string];
  jobNodeReports: [appId: number, jobId: string];
  listTasks: [q: TaskQuery];
  listRefreshRecords: [q: RefreshRecordQuery];
  pageCacheKiB: [];
}

interface Job {
  readonly call: ReadCall;
  /** Whose read this is (the app id): one app may not hold every worker. */
  readonly key: number;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface Slot {
  readonly worker: Worker;
  ready: boolean;
  /** Why it failed, if it did (its 'error' event). */
  failure?: Error;
  /** The one read this worker is running (a worker runs one statement at a time anyway). */
  busy: Job | undefined;
}

/** Rebuilds an error thrown in a worker: its name and message (the stack stays in the worker). */
function workerError(e: { name: string; message: string }): Error {
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

/**
 * Reads wait in one FIFO queue and go to whichever worker is idle; a worker starts when a read finds
 * none idle (up to `size`), so a store that is never queried starts none. A slow read delays only
 * the reads queued behind it while every worker is busy, never the event loop. Apps (tenants) take
 * turns: a free worker goes to the queued read of the app served least recently, and one app holds
 * at most size - 1 workers at a time, so another app's read finds a worker free (or is next) however
 * hard the first one queries.
 */
export class SqliteReadPool {
  readonly #o: SqliteReadPoolOptions;
  readonly #slots = new Set<Slot>();
  readonly #queue: Job[] = [];
  #nextId = 1;
  /** When each app (key) was last given a worker, in dispatch turns: round robin between apps. */
  readonly #served = new Map<number, number>();
  #turn = 0;
  #closing = false;
  #drained: (() => void) | undefined;

  constructor(options: SqliteReadPoolOptions) {
    this.#o = options;
  }

  /**
   * Starts one worker and resolves once it has opened its connection (rejects if it cannot): the
   * first read then pays no start-up, and a database readers cannot open fails at start. The others
   * start as reads need them.
   */
  async start(): Promise<void> {
    if (this.#slots.size > 0) return;
    const slot = this.#spawn();
    await new Promise<void>((resolve, reject) => {
      slot.worker.once('message', () => resolve());
      slot.worker.once('exit', (code) => reject(new Error(`SQLite read worker failed to start (exit code ${code}): ${slot.failure?.message ?? 'no error reported'}`, { cause: slot.failure })));
    });
  }

  /** Workers now running or starting. */
  get size(): number {
    return this.#slots.size;
  }

  /** Runs one read for app `key` (queued while every worker is busy, or while `key` holds its share). */
  run<K extends ReadOp>(op: K, key: number, ...args: ReadArgs[K]): Promise<ReadResults[K]> {
    if (this.#closing) return Promise.reject(new Error('the SQLite read pool is closed'));
    return new Promise<ReadResults[K]>((resolve, reject) => {
      this.#queue.push({ call: { id: this.#nextId++, op, args }, key, resolve: resolve as (v: unknown) => void, reject });
      this.#dispatch();
    });
  }

  /** Lets queued and running reads finish, then stops the workers. Idempotent. */
  async close(): Promise<void> {
    this.#closing = true;
    const drained = new Promise<void>((resolve) => (this.#drained = resolve));
    // Settles at once when nothing is queued or running (and refuses what no worker will run).
    this.#dispatch();
    await drained;
    await Promise.all([...this.#slots].map((s) => s.worker.terminate()));
    this.#slots.clear();
  }

  #dispatch(): void {
    const share = Math.max(1, this.#o.size - 1);
    const held = new Map<number, number>();
    for (const s of this.#slots) if (s.busy) held.set(s.busy.key, (held.get(s.busy.key) ?? 0) + 1);
    for (;;) {
      const idle = [...this.#slots].find((s) => s.ready && !s.busy);
      if (!idle) break;
      // Round robin over apps: the eligible read of the app served least recently, FIFO within an app.
      let at = -1;
      for (let i = 0; i < this.#queue.length; i++) {
        const key = this.#queue[i]!.key;
        if ((held.get(key) ?? 0) >= share) continue;
        if (at < 0 || (this.#served.get(key) ?? -1) < (this.#served.get(this.#queue[at]!.key) ?? -1)) at = i;
      }
      if (at < 0) break;
      const job = this.#queue.splice(at, 1)[0]!;
      held.set(job.key, (held.get(job.key) ?? 0) + 1);
      this.#served.set(job.key, this.#turn++);
      idle.busy = job;
      // A worker with a read in flight keeps the process alive; an idle one does not.
      idle.worker.ref();
      idle.worker.postMessage(job.call);
    }
    const starting = [...this.#slots].filter((s) => !s.ready).length;
    if (this.#queue.length > starting && this.#slots.size < Math.max(1, this.#o.size) && !this.#closing) this.#spawn();
    if (this.#closing && this.#slots.size === 0) for (const job of this.#queue.splice(0)) job.reject(new Error('the SQLite read pool is closed'));
    if (this.#queue.length === 0 && ![...this.#slots].some((s) => s.busy)) this.#drained?.();
  }

  #spawn(): Slot {
    const data: ReadWorkerData = {
      path: this.#o.path,
      busyTimeoutMs: this.#o.busyTimeoutMs,
      cacheKiB: this.#o.cacheKiB ?? PAGE_CACHE_KIB,
      niceness: this.#o.niceness ?? 0,
    };
    // Named: heap snapshots, the inspector and the soak's per-isolate figures tell the threads apart.
    const worker = new Worker(new URL('./sqlite-read-worker.ts', import.meta.url), { workerData: data, name: 'sqlite-read' });
    const slot: Slot = { worker, ready: false, busy: undefined };
    this.#slots.add(slot);
    worker.on('message', (m: ReadReply) => {
      if ('ready' in m) {
        slot.ready = true;
        worker.unref();
      } else {
        const job = slot.busy;
        slot.busy = undefined;
        worker.unref();
        if (job && job.call.id === m.id) {
          if ('error' in m) job.reject(workerError(m.error));
          else {
            // Answers travel as JSON text: parsing it costs the event loop about half of what
            // rebuilding the same objects from a structured clone does. The caller gets the value in
            // the next turn of the loop: what it does with a big answer (render, serialise, write)
            // then runs as a block of its own rather than one twice as long with this parse.
            const value: unknown = JSON.parse(m.json);
            setImmediate(() => job.resolve(value));
          }
        }
      }
      this.#dispatch();
    });
    worker.on('error', (e) => (slot.failure = e));
    worker.on('exit', (code) => {
      this.#slots.delete(slot);
      const failure = slot.failure;
      const why = `SQLite read worker ${slot.ready ? 'exited' : 'failed to start'}${failure ? `: ${failure.message}` : ` with code ${code}`}`;
      // A worker that dies (out of memory, a native fault) fails only the read it was running.
      slot.busy?.reject(new Error(why, { cause: failure }));
      slot.busy = undefined;
      if (this.#closing) return this.#dispatch();
      if (!slot.ready) {
        // It could not open the database: the queued reads would wait for a worker that never comes.
        if (this.#slots.size === 0) for (const job of this.#queue.splice(0)) job.reject(new Error(why, { cause: failure }));
        return;
      }
      this.#dispatch();
    });
    return slot;
  }
}
