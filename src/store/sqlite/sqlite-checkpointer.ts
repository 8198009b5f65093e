// WAL checkpoints of the SQLite store in a worker thread (the writer runs with wal_autocheckpoint=0).
import { Worker } from 'node:worker_threads';
import type { CheckpointReply, CheckpointRequest, CheckpointWorkerData } from './sqlite-checkpoint-worker.ts';

/** Frames the WAL gathers between two checkpoints: 4 MiB of 4 KiB pages, SQLite's own wal_autocheckpoint. */
const CHECKPOINT_FRAMES = 1000;
/** WAL file growth since the last checkpoint that calls for the next one at once (a burst after a quiet spell). */
const CHECKPOINT_GROWTH_BYTES = 4 * 2 ** 20;
/** Bounds of the time between two checkpoints, ms. */
const MIN_INTERVAL_MS = 100;
const MAX_INTERVAL_MS = 5000;

/**
 * Runs a PASSIVE checkpoint on its own connection after commits, at most one at a time. PASSIVE never waits for the writer or readers; frames it could not copy yet
 * are copied by the next one. The writer restarts the WAL from the beginning only if a transaction
 * of its starts when every frame is copied and no reader uses the WAL, which under continuous writes
 * a PASSIVE checkpoint seldom leaves it: the store asks for reset() (a RESTART checkpoint) while it
 * holds its writes back, once the WAL has grown past its bound.
 *
 * About every CHECKPOINT_FRAMES frames, not more often: the first COMMIT after the WAL is rewound
 * writes a new WAL header and SQLite fsyncs it right there, on the writer's thread, the event loop
 * (6 ms on a quiet disk, 20–40 ms on a busy one; synchronous=NORMAL syncs nothing else in a COMMIT).
 * With a checkpoint every 100 ms whatever the load, a trickle of purges had the WAL rewound after
 * nearly every commit: 228 such fsyncs in 75 s of the query bench, which set its event-loop p99. The
 * pace follows the frames the last checkpoint found over the time since the one before: 100 ms apart
 * under a heavy write load, up to 5 s apart under a light one, and 100 ms apart again as soon as the
 * WAL file has grown 4 MiB since the last one.
 */
export class SqliteCheckpointer {
  readonly #worker: Worker;
  /** The request the thread is working on. */
  #inFlight: 'checkpoint' | 'reset' | null = null;
  #due = false;
  #lastStart = 0;
  /** Time between the last two checkpoints' starts, ms (the frames the last one found were written in it). */
  #span = Number.POSITIVE_INFINITY;
  /** Time the next checkpoint waits after the last one started, ms. */
  #interval = MIN_INTERVAL_MS;
  /** The WAL file's size after the latest commit, and when the last checkpoint started. */
  #walBytes = 0;
  #walBytesAtStart = 0;
  #timer: NodeJS.Timeout | undefined;
  /** When #timer fires (performance.now() time). */
  #timerAt = 0;
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
      else {
        this.last = { log: m.log, checkpointed: m.checkpointed };
        // Frames per ms over the last span, and the wait that gathers CHECKPOINT_FRAMES at that rate.
        const rate = m.log / Math.max(1, this.#span);
        this.#interval = Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, CHECKPOINT_FRAMES / Math.max(rate, 1e-9)));
      }
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
      else if (this.#due) this.committed(this.#walBytes);
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

  /**
   * Call after each commit with the WAL file's size: a checkpoint starts now, or when the last one is
   * done and the interval passed.
   */
  committed(walBytes: number): void {
    if (this.#closed) return;
    this.#due = true;
    this.#walBytes = walBytes;
    if (this.#inFlight) return;
    const grew = walBytes - this.#walBytesAtStart >= CHECKPOINT_GROWTH_BYTES;
    const at = this.#lastStart + (grew ? MIN_INTERVAL_MS : this.#interval);
    // A checkpoint already set for that time or sooner: nothing to change.
    if (this.#timer && this.#timerAt <= at) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const wait = at - performance.now();
    if (wait > 0) {
      this.#timerAt = at;
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.committed(this.#walBytes);
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
    const now = performance.now();
    this.#span = now - this.#lastStart;
    this.#lastStart = now;
    this.#walBytesAtStart = this.#walBytes;
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
