// Entry point of the SQLite checkpoint thread: copies the WAL back into the database file (and fsyncs
// it) on its own connection, so that the writer's COMMITs on the event loop never do (issue 11).
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';

export interface CheckpointWorkerData {
  readonly path: string;
  readonly busyTimeoutMs: number;
  /** How long a 'reset' waits for readers still using the WAL (ms); writes are held meanwhile. */
  readonly resetWaitMs: number;
}

/**
 * 'checkpoint': PASSIVE, copies what it can and never waits. 'reset': RESTART, sent only while the
 * store holds its writes back: copies every frame, then waits (up to resetWaitMs) until no reader
 * uses the WAL, so the writer's next transaction starts the log again from the beginning.
 */
export type CheckpointRequest = 'checkpoint' | 'reset' | 'close';

/** Posted after each checkpoint: the WAL's frames, how many of them are in the database now, and whether it had to give up waiting. */
export type CheckpointReply =
  | { readonly ready: true }
  | { readonly log: number; readonly checkpointed: number; readonly busy: boolean }
  | { readonly error: string };

const data = workerData as CheckpointWorkerData;
const db = new DatabaseSync(data.path, { timeout: data.busyTimeoutMs });
// This connection's own checkpoints run only when asked; NORMAL is what the writer uses (the
// checkpoint itself always fsyncs the database before the WAL may be reused).
db.exec('PRAGMA wal_autocheckpoint = 0');
db.exec('PRAGMA synchronous = NORMAL');
const passive = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
const restart = db.prepare('PRAGMA wal_checkpoint(RESTART)');
const setBusyTimeout = (ms: number) => db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(ms))}`);
parentPort?.on('message', (m: CheckpointRequest) => {
  if (m === 'close') {
    db.close();
    parentPort?.close();
    return;
  }
  try {
    let r: { busy: number; log: number; checkpointed: number };
    if (m === 'reset') {
      // The busy handler is what waits for readers (and for the write lock, free while writes are held).
      setBusyTimeout(data.resetWaitMs);
      try {
        r = restart.get() as typeof r;
      } finally {
        setBusyTimeout(data.busyTimeoutMs);
      }
    } else {
      r = passive.get() as typeof r;
    }
    parentPort?.postMessage({ log: r.log, checkpointed: r.checkpointed, busy: r.busy !== 0 } satisfies CheckpointReply);
  } catch (e) {
    parentPort?.postMessage({ error: String(e) } satisfies CheckpointReply);
  }
});
parentPort?.postMessage({ ready: true } satisfies CheckpointReply);
