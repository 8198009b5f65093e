// WAL checkpoints of the SQLite store in a worker thread (the writer runs with wal_autocheckpoint=0).
import { Worker } from 'node:worker_threads';
import type { CheckpointReply, CheckpointRequest, CheckpointWorkerData } from './sqlite-checkpoint-worker.ts';

/** Least time between two checkpoints, ms: often enough that the WAL stays a few MiB under load. */
const CHECKPOINT_INTERVAL_MS = 100;

/**
 * Runs a PASSIVE checkpoint on its own connection after commits, at most one at a time and one per
 * CHECKPOINT_INTERVAL_MS. PASSIVE never waits for the writer or readers; frames it could not copy yet
 * are copied by the next one. The writer restarts the WAL from the beginning only if a transaction
 * of its starts when every frame is copied and no reader uses the WAL, which under continuous writes
 * a PASSIVE checkpoint seldom leaves it: the store asks for reset() (a RESTART checkpoint) while it
 * holds its writes back, once the WAL has grown past its bound.
 */
export class SqliteCheckpointer {
  readonly #worker: Worker;
  /** The request the thread is working on. */
  #inFlight: 'checkpoint' | 'reset' | null = null;
  #due = false;
  #lastStart = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Callers of reset() waiting for the reset in flight, and for the next one. */
  #resetting: Array<(restartable: boolean) => void> = [];
  #resetQueued: Array<(restartable: boolean) => void> = [];
  /** The last checkpoint's answer (diagnostics and tests). */
  last: { log: number; checkpointed: number } | undefined;
  /** Checkpoints that failed (the next commit asks again). */
  failures = 0;
  /** Resets done, and resets that gave up waiting for readers (or failed). */
  resets = 0;
  resetsBusy = 0;

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.on('message', (m: CheckpointReply) => {
      if ('ready' in m) return;
      const kind = this.#inFlight;
      this.#inFlight = null;
      if ('error' in m) this.failures++;
      else this.last = { log: m.log, checkpointed: m.checkpointed };
      if (kind === 'reset') {
        const restartable = !('error' in m) && !m.busy && m.checkpointed === m.log;
        if (restartable) this.resets++;
        else this.resetsBusy++;
        const waiters = this.#resetting;
        this.#resetting = [];
        if (this.#resetQueued.length === 0 && !this.#closed) this.#worker.unref();
        for (const w of waiters) w(restartable);
      }
      if (this.#resetQueued.length > 0) this.#post('reset');
      else if (this.#due) this.committed();
    });
    worker.once('exit', () => {
      for (const w of [...this.#resetting, ...this.#resetQueued]) w(false);
      this.#resetting = [];
      this.#resetQueued = [];
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
    if (this.#inFlight || this.#timer) return;
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
    this.#post('checkpoint');
  }

  /**
   * A RESTART checkpoint after the one in flight: every frame copied into the database (and fsynced),
   * then up to the thread's resetWaitMs for the readers still using the WAL to finish. Resolves true
   * if the writer's next transaction restarts the WAL, false if a reader (or an error) kept it from
   * that. Call it only while no write can start: RESTART holds the write lock throughout, and a
   * COMMIT on the event loop would sleep in its busy handler meanwhile.
   */
  reset(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    // Referenced until answered: writes wait for it, and an unreferenced thread would let a process
    // with nothing else pending exit with them unanswered.
    this.#worker.ref();
    return new Promise((resolve) => {
      this.#resetQueued.push(resolve);
      if (!this.#inFlight) this.#post('reset');
    });
  }

  #post(m: Exclude<CheckpointRequest, 'close'>): void {
    if (m === 'reset') {
      this.#resetting = this.#resetQueued;
      this.#resetQueued = [];
    }
    this.#inFlight = m;
    this.#lastStart = performance.now();
    this.#worker.postMessage(m satisfies CheckpointRequest);
  }

  /** Waits for a checkpoint in flight, then ends the thread. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
    // Referenced again: close() must keep the process alive until the thread has closed its connection.
    this.#worker.ref();
    this.#worker.postMessage('close' satisfies CheckpointRequest);
    await exited;
  }
}
