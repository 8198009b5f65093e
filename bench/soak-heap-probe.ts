// Preloaded (`node --import`) into the processes the soak measures: every 5 s it appends the live V8 heap
// as it stood after the latest major GC — what a leak in JS objects raises and garbage does not — and the
// RSS to the JSON-lines file named by EDGEPURGE_SOAK_PROBE. It forces no GC: the process runs as it would.
import { appendFileSync } from 'node:fs';
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

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
    const line = { t: (performance.now() - started) / 1000, rss: m.rss, heapAfterMajorGc: afterMajorGc, majorGcs, heapTotal: m.heapTotal, external: m.external };
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  }, 5000).unref();
}
