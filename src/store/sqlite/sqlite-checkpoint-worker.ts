// Entry point of the SQLite checkpoint thread: copies the WAL back into the database file (and fsyncs
// it) on its own connection, so that the writer's COMMITs on the event loop never do (issue 11).
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';

export interface CheckpointWorkerData {
  readonly path: string;
  readonly busyTimeoutMs: number;
}

/** Posted after each checkpoint: the WAL's frames, and how many of them are in the database now. */
export type CheckpointReply = { readonly ready: true } | { readonly log: number; readonly checkpointed: number } | { readonly error: string };

const data = workerData as CheckpointWorkerData;
const db = new DatabaseSync(data.path, { timeout: data.busyTimeoutMs });
// This connection's own checkpoints run only when asked; NORMAL is what the writer uses (the
// checkpoint itself always fsyncs the database before the WAL may be reused).
db.exec('PRAGMA wal_autocheckpoint = 0');
db.exec('PRAGMA synchronous = NORMAL');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
parentPort?.on('message', (m: 'checkpoint' | 'close') => {
  if (m === 'close') {
    db.close();
    parentPort?.close();
    return;
  }
  try {
    const r = checkpoint.get() as { busy: number; log: number; checkpointed: number };
    parentPort?.postMessage({ log: r.log, checkpointed: r.checkpointed } satisfies CheckpointReply);
  } catch (e) {
    parentPort?.postMessage({ error: String(e) } satisfies CheckpointReply);
  }
});
parentPort?.postMessage({ ready: true } satisfies CheckpointReply);
