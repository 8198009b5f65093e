// The query-load benchmark's data: one tenant holding 300,000 jobs over the last 30 days, every day
// within the default quotas (src/purge/quotas.ts), loaded straight into a SQLite store in batches.
import type { Method, TaskStatus, TaskType } from '../src/purge/types.ts';
import { SqliteTaskStore } from '../src/store/sqlite/sqlite-task-store.ts';
import type { NewJob, NewTask } from '../src/store/task-store.ts';
import { prng } from './stats.ts';

const DAY = 86_400_000;

/** The seeded tenant and its domains (the bench's config declares the same). */
export const QUERY_TENANT = {
  appId: 1250000101,
  zones: [
    { zoneId: 'zone-qshop00001', name: 'shop.example', hosts: ['www.shop.example', 'img.shop.example', 'static.shop.example', 'm.shop.example', 'api.shop.example'] },
    { zoneId: 'zone-qnews00002', name: 'news.example', hosts: ['www.news.example', 'img.news.example', 'video.news.example', 'cdn.news.example', 'm.news.example'] },
  ],
} as const;

/** The host most jobs touch (about 40 % of them): the heaviest `host` / `domains` filter. */
export const BUSIEST_HOST: string = QUERY_TENANT.zones[0].hosts[0];
const HOSTS: readonly string[] = QUERY_TENANT.zones.flatMap((z) => z.hosts);

/**
 * One day's jobs, 10,000 of them, and what each costs against the default daily quotas:
 * purge_url 9,990 of 10,000 URLs (5,000 one-URL jobs, 995 two-host jobs of 2 URLs, 5 jobs of 600 URLs);
 * purge_prefix 100 of 100; prefetch_url 1,000 of 1,000; purge_host 1,500, purge_cache_tag 1,000 and
 * purge_all 400 of 10,000 each.
 */
const DAY_PLAN: ReadonlyArray<{ type: TaskType; jobs: number; urls: number; hostsPerJob: number }> = [
  { type: 'purge_url', jobs: 5000, urls: 1, hostsPerJob: 1 },
  { type: 'purge_url', jobs: 995, urls: 2, hostsPerJob: 2 },
  { type: 'purge_url', jobs: 5, urls: 600, hostsPerJob: 3 },
  { type: 'purge_prefix', jobs: 100, urls: 1, hostsPerJob: 1 },
  { type: 'prefetch_url', jobs: 1000, urls: 1, hostsPerJob: 1 },
  { type: 'purge_host', jobs: 1500, urls: 1, hostsPerJob: 1 },
  { type: 'purge_cache_tag', jobs: 1000, urls: 1, hostsPerJob: 5 },
  { type: 'purge_all', jobs: 400, urls: 1, hostsPerJob: 5 },
];
export const JOBS_PER_DAY: number = DAY_PLAN.reduce((s, p) => s + p.jobs, 0);

const WORDS = ['banner', 'logo', 'hero', 'thumb', 'cover', 'detail', 'index', 'main', 'vendor', 'promo', 'sale', 'poster', 'icon', 'theme', 'app'];
const EXTS = ['jpg', 'png', 'webp', 'js', 'css', 'html', 'mp4', 'json'];

const STATUSES: ReadonlyArray<readonly [TaskStatus, number]> = [['success', 0.95], ['failed', 0.02], ['timeout', 0.02], ['canceled', 0.01]];

/** A host, skewed: BUSIEST_HOST 40 %, the rest evenly. */
function host(r: () => number): string {
  return r() < 0.4 ? BUSIEST_HOST : HOSTS[1 + Math.floor(r() * (HOSTS.length - 1))]!;
}

function status(r: () => number, type: TaskType): TaskStatus {
  let x = r();
  for (const [s, w] of STATUSES) {
    if (x < w) return type === 'prefetch_url' && s === 'canceled' ? 'invalid' : s;
    x -= w;
  }
  return 'success';
}

function jobTasks(r: () => number, type: TaskType, urls: number, hostsPerJob: number, day: number): NewTask[] {
  const hosts = Array.from({ length: hostsPerJob }, () => host(r));
  const st = (): TaskStatus => status(r, type);
  // Settled history: nothing for the fan-out to replay (no seq), every status final.
  const base = { fanOut: false } as const;
  switch (type) {
    case 'purge_host':
      return [{ ...base, target: hosts[0]!, hosts: [hosts[0]!], status: st() }];
    case 'purge_all':
    case 'purge_cache_tag': {
      const zone = QUERY_TENANT.zones[r() < 0.6 ? 0 : 1];
      const target = type === 'purge_all' ? zone.name : `tag-${WORDS[Math.floor(r() * WORDS.length)]}-${Math.floor(r() * 300)}`;
      return [{ ...base, target, hosts: [...zone.hosts], status: st() }];
    }
    case 'purge_prefix':
      return [{ ...base, target: `https://${hosts[0]}/${WORDS[Math.floor(r() * WORDS.length)]}/d${day}/`, hosts: [hosts[0]!], status: st() }];
    default:
      return Array.from({ length: urls }, (_, k) => {
        const h = hosts[k % hosts.length]!;
        const w = `${WORDS[Math.floor(r() * WORDS.length)]}-${WORDS[Math.floor(r() * WORDS.length)]}`;
        return { ...base, target: `https://${h}/d${day}/${w}-${Math.floor(r() * 1e9).toString(36)}.${EXTS[Math.floor(r() * EXTS.length)]}`, hosts: [h], status: st() };
      });
  }
}

export interface QuerySeed {
  readonly jobs: number;
  readonly tasks: number;
  readonly seconds: number;
  /** createdAt of the oldest and newest seeded job, ms. */
  readonly from: number;
  readonly to: number;
  /** A URL purged on every one of the 30 days (the heaviest exact-`url` filter), and a prefetched one. */
  readonly everydayUrl: string;
  readonly everydayPrefetch: string;
  /** The id of the biggest job (600 URLs): the heaviest admin job view. */
  readonly bigJobId: string;
}

/**
 * Seeds `days` × 10,000 jobs ending just before `now` (newest first in time, a job every 8.64 s), job
 * ids shaped like newJobId's (13 digits of ms, 3 more). Jobs are written in bulk (bench-only loader).
 */
export async function seedQueryTenant(path: string, now: number, days = 30, seed = 5): Promise<QuerySeed> {
  const t0 = performance.now();
  const r = prng(seed);
  const store = new SqliteTaskStore({ path });
  await store.start();
  // Leave an hour at the old end so that neither retention (30 days) nor the legacy 30-day window
  // cuts the seeded history while the bench runs.
  const start = now - days * DAY + 3_600_000;
  const spacing = (days * DAY - 2 * 3_600_000) / (days * JOBS_PER_DAY);
  const everydayUrl = `https://${BUSIEST_HOST}/always/the-same.js`;
  const everydayPrefetch = `https://${BUSIEST_HOST}/always/prefetched.mp4`;
  let jobs = 0;
  let tasks = 0;
  let bigJobId = '';
  let batch: NewJob[] = [];
  try {
    for (let d = 0; d < days; d++) {
      // The day's plan, shuffled so that every type is spread over the day.
      const plan = DAY_PLAN.flatMap((p) => Array.from({ length: p.jobs }, () => p));
      for (let i = plan.length - 1; i > 0; i--) {
        const j = Math.floor(r() * (i + 1));
        [plan[i], plan[j]] = [plan[j]!, plan[i]!];
      }
      let everyday = 0;
      for (const p of plan) {
        const createdAt = Math.floor(start + jobs * spacing);
        const list = jobTasks(r, p.type, p.urls, p.hostsPerJob, d);
        // Once a day the same URL is purged (and another prefetched), in place of a one-URL job's own.
        if (p.urls === 1 && p.type === 'purge_url' && !(everyday & 1)) (list[0] = { ...list[0]!, target: everydayUrl, hosts: [BUSIEST_HOST] }), (everyday |= 1);
        if (p.type === 'prefetch_url' && !(everyday & 2)) (list[0] = { ...list[0]!, target: everydayPrefetch, hosts: [BUSIEST_HOST] }), (everyday |= 2);
        const jobId = `${createdAt}${String(jobs % 1000).padStart(3, '0')}`;
        if (p.urls === 600) bigJobId = jobId;
        const method: Method = r() < 0.9 ? 'invalidate' : 'delete';
        batch.push({ jobId, appId: QUERY_TENANT.appId, zoneId: '*', type: p.type, method, createdAt, secretId: 'AKIDquerybench', clientIp: '203.0.113.7', source: r() < 0.5 ? 'teo' : 'v2', tasks: list });
        jobs++;
        tasks += list.length;
        if (batch.length >= 5000) {
          store.bulkLoadForBench(batch);
          batch = [];
        }
      }
    }
    if (batch.length) store.bulkLoadForBench(batch);
  } finally {
    await store.close();
  }
  return { jobs, tasks, seconds: (performance.now() - t0) / 1000, from: start, to: Math.floor(start + (jobs - 1) * spacing), everydayUrl, everydayPrefetch, bigJobId };
}
