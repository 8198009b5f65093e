// Reads many cache-file heads in worker threads (the index build, a big rescan): the open/read/close
// of each head and its parsing are most of the build's cost, and threads spread them over the CPUs
// while the event loop only indexes what they return.
import { Worker } from 'node:worker_threads';
import type { HeadSummary } from './cache-scanner.ts';

/** Paths per message: large enough that messaging costs little, small enough to keep threads busy evenly. */
const BATCH = 256;

/** A reader thread's answer to one batch. */
export type ReaderAnswer = { ok: true; out: HeadSummary[] } | { ok: false; message: string; code?: string };

/**
 * Reads the heads of `paths` in `threads` worker threads and hands each summary to `take` on this
 * thread, batch by batch, in no particular order. Rejects with the first unexpected error (EACCES, EIO,
 * a thread that died); the threads are gone when it settles.
 */
export async function readHeads(paths: readonly string[], threads: number, take: (path: string, summary: HeadSummary) => void): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(threads, Math.ceil(paths.length / BATCH))) }, () => new Worker(new URL('./head-reader-worker.ts', import.meta.url)));
  const run = (w: Worker) =>
    new Promise<void>((resolve, reject) => {
      const inFlight: string[][] = [];
      const send = () => {
        if (next >= paths.length) return;
        const batch = paths.slice(next, (next += BATCH));
        inFlight.push(batch);
        w.postMessage(batch);
      };
      w.on('error', reject);
      w.on('exit', (code) => {
        if (inFlight.length > 0) reject(new Error(`a cache head reader thread exited (${code})`));
      });
      w.on('message', (answer: ReaderAnswer) => {
        const batch = inFlight.shift()!;
        if (!answer.ok) {
          reject(Object.assign(new Error(answer.message), answer.code === undefined ? {} : { code: answer.code }));
          return;
        }
        for (let i = 0; i < batch.length; i++) take(batch[i]!, answer.out[i]!);
        send();
        if (inFlight.length === 0) resolve();
      });
      // Two batches in flight, so that a thread never waits while this one indexes its last answer.
      send();
      send();
      if (inFlight.length === 0) resolve();
    });
  try {
    await Promise.all(workers.map(run));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
