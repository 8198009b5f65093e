// Console benchmark (issue 10): time to first render of the history page with 1,000,000 tasks stored.
// The control plane runs in this process on a store seeded by query-seed.ts; each page is timed on the
// server (request → last byte of the HTML) and in chromium (navigation → first contentful paint).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { chromium } from 'playwright-core';
import { parseConfig } from '../src/config/load.ts';
import { ControlPlane } from '../src/server/control-plane.ts';
import { systemClock } from '../src/shared/clock.ts';
import { silentLogger } from '../src/shared/logger.ts';
import { SqliteTaskStore } from '../src/store/sqlite/sqlite-task-store.ts';
import { BUSIEST_HOST, JOBS_PER_DAY, QUERY_TENANT, seedQueryTenant } from './query-seed.ts';
import { median, quantile } from './stats.ts';

const CHROMIUM = '/usr/bin/chromium';
const CREDENTIAL = { secretId: 'AKIDconsolebenchconsolebench0001', secretKey: 'consoleBenchSecretKeyconsoleBench01' };
/** Tasks one seeded day holds (query-seed.ts DAY_PLAN): 9,990 URLs + 100 + 1,000 + 1,500 + 1,000 + 400. */
const TASKS_PER_DAY = 13_990;

export interface ConsolePageFigure {
  readonly name: string;
  readonly query: string;
  /** Tasks the page's filters match (what the page counts). */
  readonly total: number;
  readonly serverP50Ms: number;
  readonly serverP99Ms: number;
  readonly requests: number;
  /** Median first contentful paint in chromium; NaN when the browser was not available. */
  readonly fcpMedianMs: number;
  readonly fcpSamples: number;
}

export interface ConsoleBenchResult {
  readonly tasks: number;
  readonly jobs: number;
  readonly seedSeconds: number;
  readonly pages: readonly ConsolePageFigure[];
  /** Why there are no browser figures, when there are none. */
  readonly browserSkipped?: string;
}

export async function runConsoleBench(o: { requests?: number; loads?: number; log: (line: string) => void }): Promise<ConsoleBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-console-bench-'));
  const path = join(dir, 'console.db');
  try {
    const days = Math.ceil(1_000_000 / TASKS_PER_DAY);
    const seed = await seedQueryTenant(path, systemClock.now(), days);
    o.log(`seeded ${seed.tasks.toLocaleString('en')} tasks (${seed.jobs.toLocaleString('en')} jobs, ${JOBS_PER_DAY.toLocaleString('en')} a day over ${days} days) in ${seed.seconds.toFixed(1)} s`);
    const config = parseConfig({
      server: { listen: '127.0.0.1:0', retentionDays: days + 1 },
      store: { driver: 'sqlite', path },
      accounts: [
        {
          appId: QUERY_TENANT.appId,
          name: 'console-bench',
          credentials: [CREDENTIAL],
          rateLimit: false,
          zones: QUERY_TENANT.zones.map((z) => ({ zoneId: z.zoneId, name: z.name, domains: z.hosts.map((host) => ({ host, origin: 'http://127.0.0.1:9' })) })),
        },
      ],
    });
    const store = new SqliteTaskStore({ path });
    await store.start();
    const cp = new ControlPlane({ config, store, clock: systemClock, logger: silentLogger });
    const { port } = await cp.start();
    const base = `http://127.0.0.1:${port}`;
    try {
      const signIn = await fetch(`${base}/console/sign-in`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
        body: new URLSearchParams(CREDENTIAL),
      });
      const cookie = (signIn.headers.get('set-cookie') ?? '').split(';', 1)[0]!;
      if (signIn.status !== 303 || !cookie) throw new Error(`console sign-in answered ${signIn.status}`);
      const pages: Array<{ name: string; query: string; path?: string }> = [
        { name: 'history, first page as opened (last 24 h, no filter)', query: '' },
        // What the browser and machine add with no query at all: the same shell, no history read.
        { name: 'for context: the purge form (no store read)', query: '', path: '/console/purge' },
        { name: 'history, last 7 days (the widest range)', query: 'range=7d' },
        { name: `history, 7 days, domain ${BUSIEST_HOST} + status success`, query: `range=7d&domain=${BUSIEST_HOST}&status=success` },
        { name: 'history, 7 days, target contains "banner"', query: 'range=7d&target=banner&fuzzy=on' },
        { name: 'history, 7 days, page 200', query: 'range=7d&page=200' },
      ];
      const browserSkipped = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed`;
      const browser = browserSkipped
        ? undefined
        : await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'] });
      const figures: ConsolePageFigure[] = [];
      try {
        const context = await browser?.newContext();
        await context?.addCookies([{ name: cookie.split('=')[0]!, value: cookie.slice(cookie.indexOf('=') + 1), url: `${base}/console/` }]);
        const tab = await context?.newPage();
        for (const p of pages) {
          const url = `${base}${p.path ?? '/console/history'}${p.query ? `?${p.query}` : ''}`;
          const get = async () => {
            const t0 = performance.now();
            const res = await fetch(url, { headers: { cookie } });
            const html = await res.text();
            if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${html.slice(0, 300)}`);
            return { ms: performance.now() - t0, html };
          };
          for (let i = 0; i < 3; i++) await get();
          const times: number[] = [];
          let total = 0;
          for (let i = 0; i < (o.requests ?? 30); i++) {
            const r = await get();
            times.push(r.ms);
            total = Number(/of ([\d,]+) tasks/.exec(r.html)?.[1]?.replaceAll(',', '') ?? Number.NaN);
          }
          const fcps: number[] = [];
          if (tab) {
            await tab.goto(url);
            for (let i = 0; i < (o.loads ?? 10); i++) {
              await tab.goto(url, { waitUntil: 'load' });
              // The paint entry can be queued after `load`: wait for it (buffered), at most 5 s.
              // The paint entry can be queued after `load`: wait for it (buffered), at most 5 s. A string,
              // because it runs in the page (DOM types), not in Node.
              const fcp = await tab.evaluate<number>(`new Promise((resolve) => {
                new PerformanceObserver((list) => {
                  const e = list.getEntriesByName('first-contentful-paint')[0];
                  if (e) resolve(e.startTime);
                }).observe({ type: 'paint', buffered: true });
                setTimeout(() => resolve(NaN), 5000);
              })`);
              if (Number.isFinite(fcp)) fcps.push(fcp);
            }
          }
          const f = { name: p.name, query: p.query, total, serverP50Ms: median(times), serverP99Ms: quantile(times, 0.99), requests: times.length, fcpMedianMs: fcps.length ? median(fcps) : Number.NaN, fcpSamples: fcps.length };
          figures.push(f);
          o.log(`${p.name}: ${Number.isFinite(total) ? `${total.toLocaleString('en')} tasks match; ` : ''}server p50 ${f.serverP50Ms.toFixed(1)} ms, p99 ${f.serverP99Ms.toFixed(1)} ms; first paint median ${f.fcpMedianMs.toFixed(0)} ms (${fcps.length} loads)`);
        }
      } finally {
        await browser?.close();
      }
      return { tasks: seed.tasks, jobs: seed.jobs, seedSeconds: seed.seconds, pages: figures, ...(browserSkipped ? { browserSkipped } : {}) };
    } finally {
      await cp.close();
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
