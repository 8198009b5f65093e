// Preloaded (`node --import`) into the processes the soak measures: every 5 s it appends the live V8 heap
// as it stood after the latest major GC — what a leak in JS objects raises and garbage does not — and the
// RSS to the JSON-lines file named by EDGEPURGE_SOAK_PROBE. It forces no GC: the process runs as it would.
// Node runs a preload in every worker thread too, and each thread is an isolate with a heap of its own
// (the control plane's SQLite read and checkpoint workers): each line names its thread, so that the
// bench adds up every isolate's heap rather than reading whichever thread wrote last.
import { appendFileSync } from 'node:fs';
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { threadId, threadName } from 'node:worker_threads';

const file = process.env.EDGEPURGE_SOAK_PROBE;
if (file) {
  let afterMajorGc = Number.NaN;
  let majorGcs = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const detail = (e as PerformanceEntry & { detail?: { kind?: number } }).detail;
      if (detail?.kind !== constants.NODE_PERFORMANCE_GC_MAJOR) continue;
      afterMajorGc = process.memoryUsage().heapUsed;
      majorGcs++;
    }
  }).observe({ entryTypes: ['gc'] });
  const started = performance.now();
  setInterval(() => {
    const m = process.memoryUsage();
    // `at` (wall clock) tells the bench which threads are still alive: a thread that ended writes no more.
    const line = { thread: threadId, name: threadName, at: Date.now(), t: (performance.now() - started) / 1000, rss: m.rss, heapAfterMajorGc: afterMajorGc, majorGcs, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external };
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  }, 5000).unref();
}
