// WAL checkpoints of the SQLite store in a worker thread (the writer runs with wal_autocheckpoint=0).
import { Worker } from 'node:worker_threads';
import type { CheckpointReply, CheckpointWorkerData } from './sqlite-checkpoint-worker.ts';

/** Least time between two checkpoints, ms: often enough that the WAL stays a few MiB under load. */
const CHECKPOINT_INTERVAL_MS = 100;

/**
 * Runs a PASSIVE checkpoint on its own connection after commits, at most one at a time and one per
 * CHECKPOINT_INTERVAL_MS. PASSIVE never waits for the writer or readers; frames it could not copy yet
 * are copied by the next one, and the writer rewinds the WAL once a checkpoint has copied all of it.
 */
export class SqliteCheckpointer {
  readonly #worker: Worker;
  #running = false;
  #due = false;
  #lastStart = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** The last checkpoint's answer (diagnostics and tests). */
  last: { log: number; checkpointed: number } | undefined;
  /** Checkpoints that failed (the next commit asks again). */
  failures = 0;

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.on('message', (m: CheckpointReply) => {
      if ('ready' in m) return;
      this.#running = false;
      if ('error' in m) this.failures++;
      else this.last = m;
      if (this.#due) this.committed();
    });
    worker.unref();
  }

  static async start(data: CheckpointWorkerData): Promise<SqliteCheckpointer> {
    const worker = new Worker(new URL('./sqlite-checkpoint-worker.ts', import.meta.url), { workerData: data, name: 'sqlite-checkpoint' });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    return new SqliteCheckpointer(worker);
  }

  /** Call after each commit: a checkpoint starts now, or when the last one is done and the interval passed. */
  committed(): void {
    if (this.#closed) return;
    this.#due = true;
    if (this.#running || this.#timer) return;
    const wait = this.#lastStart + CHECKPOINT_INTERVAL_MS - performance.now();
    if (wait > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.committed();
      }, wait);
      this.#timer.unref();
      return;
    }
    this.#due = false;
    this.#running = true;
    this.#lastStart = performance.now();
    this.#worker.postMessage('checkpoint');
  }

  /** Waits for a checkpoint in flight, then ends the thread. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
    // Referenced again: close() must keep the process alive until the thread has closed its connection.
    this.#worker.ref();
    this.#worker.postMessage('close');
    await exited;
  }
}
