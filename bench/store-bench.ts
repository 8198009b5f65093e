// Store benchmark: seeds N tasks into a SQLite store and measures listTasks latency (p50/p99).
// Run: npx node bench/store-bench.ts [N]   (default 1,000,000)
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { TaskStatus, TaskType } from '../src/purge/types.ts';
import { SqliteTaskStore } from '../src/store/sqlite/sqlite-task-store.ts';
import type { NewJob, NewTask, TaskQuery } from '../src/store/task-store.ts';
import { prng } from './stats.ts';

export interface StoreBenchOptions {
  /** Tasks to seed (default 1,000,000). */
  readonly tasks?: number;
  /** Queries per scenario (default 300). */
  readonly iterations?: number;
  /** Database directory (default: a fresh temp dir, removed afterwards). */
  readonly dir?: string;
  readonly seed?: number;
  readonly log?: (line: string) => void;
}

export interface ScenarioResult {
  readonly name: string;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Mean `total` the queries returned (how much each one had to count). */
  readonly meanTotal: number;
}

export interface StoreBenchResult {
  readonly tasks: number;
  readonly seedSeconds: number;
  readonly dbBytes: number;
  readonly scenarios: readonly ScenarioResult[];
}

const APP = 1250000001;
const DAY = 86_400_000;
const END = Date.UTC(2026, 1, 1);
const SPAN_DAYS = 30;
export const ZONES = ['zone-2o0i0mz3jd0j', 'zone-39quuimqg8r6'] as const;
export const DOMAINS = [
  'www.shop-example.com', 'img.shop-example.com', 'static.shop-example.com', 'm.shop-example.com',
  'api.shop-example.com', 'cdn.newsdaily.cn', 'img.newsdaily.cn', 'video.newsdaily.cn',
  'dl.gamehub.net', 'patch.gamehub.net', 'assets.gamehub.net', 'www.gamehub.net',
  'static.travelnow.com.cn', 'pic.travelnow.com.cn', 'www.travelnow.com.cn', 'docs.devtools.io',
  'cdn.devtools.io', 'media.streamly.tv', 'thumbs.streamly.tv', 'www.streamly.tv',
] as const;
/** First 12 domains in the first zone, the rest in the second. */
export const zoneOf = (domainIndex: number): string => (domainIndex < 12 ? ZONES[0] : ZONES[1]);
export const SECTIONS = ['static', 'img', 'assets', 'video', 'news', 'product', 'js', 'css', 'download', 'api/v1', 'uploads', 'm'];
export const WORDS = [
  'banner', 'logo', 'hero', 'thumb', 'avatar', 'cover', 'detail', 'list', 'index', 'main', 'vendor', 'chunk',
  'article', 'gallery', 'promo', 'sale', 'summer', 'winter', 'spring', 'autumn', 'season', 'patch', 'client',
  'setup', 'manifest', 'playlist', 'segment', 'poster', 'icon', 'sprite', 'font', 'theme', 'app', 'runtime',
];
export const EXTS = ['jpg', 'png', 'webp', 'js', 'css', 'html', 'mp4', 'm3u8', 'ts', 'json', 'zip', 'svg'];


function pick<T>(r: () => number, list: readonly T[]): T {
  const v = list[Math.floor(r() * list.length)];
  if (v === undefined) throw new Error('empty list');
  return v;
}

function weighted<T>(r: () => number, table: ReadonlyArray<readonly [T, number]>): T {
  let x = r();
  for (const [v, w] of table) {
    if (x < w) return v;
    x -= w;
  }
  const last = table[table.length - 1];
  if (!last) throw new Error('empty table');
  return last[0];
}

const TYPE_MIX: ReadonlyArray<readonly [TaskType, number]> = [
  ['purge_url', 0.7], ['purge_prefix', 0.12], ['prefetch_url', 0.12], ['purge_host', 0.03],
  ['purge_all', 0.015], ['purge_cache_tag', 0.015],
];
const STATUS_MIX: ReadonlyArray<readonly [TaskStatus, number]> = [
  ['success', 0.86], ['failed', 0.04], ['timeout', 0.03], ['processing', 0.02], ['canceled', 0.02], ['invalid', 0.03],
];

function urlPath(r: () => number, createdAt: number): string {
  const d = new Date(createdAt);
  const y = d.getUTCFullYear();
  const m = String(d.getUTCMonth() + 1).padStart(2, '0');
  return `${pick(r, SECTIONS)}/${y}/${m}/${pick(r, WORDS)}-${pick(r, WORDS)}-${Math.floor(r() * 9_000_000 + 100_000)}`;
}

/** One realistic job: mostly a handful of URLs on one or two domains of one zone. */
function makeJob(r: () => number, seq: number, createdAt: number, maxTasks: number): NewJob {
  const type = weighted(r, TYPE_MIX);
  const zoneFirst = r() < 0.6;
  const domainIdx = () => (zoneFirst ? Math.floor(r() * 12) : 12 + Math.floor(r() * 8));
  const size = Math.min(maxTasks, type === 'purge_all' ? 1 : r() < 0.5 ? 1 + Math.floor(r() * 3) : 1 + Math.floor(r() * r() * 100));
  const zoneId = zoneOf(zoneFirst ? 0 : 12);
  const tasks: NewTask[] = [];
  for (let k = 0; k < size; k++) {
    const di = domainIdx();
    const host = DOMAINS[di] ?? DOMAINS[0];
    const status = weighted(r, STATUS_MIX);
    let target: string;
    let hosts: string[] = [host];
    switch (type) {
      case 'purge_url':
      case 'prefetch_url':
        target = `https://${host}/${urlPath(r, createdAt)}.${pick(r, EXTS)}${r() < 0.15 ? `?v=${Math.floor(r() * 1e6)}` : ''}`;
        break;
      case 'purge_prefix':
        target = `https://${host}/${pick(r, SECTIONS)}/${pick(r, WORDS)}/`;
        break;
      case 'purge_host':
        target = host;
        break;
      case 'purge_all':
        target = zoneFirst ? 'shop-example.com' : 'travelnow.com.cn';
        hosts = DOMAINS.filter((_, i) => zoneOf(i) === zoneId);
        break;
      case 'purge_cache_tag':
        target = `tag-${pick(r, WORDS)}-${Math.floor(r() * 500)}`;
        hosts = [host, DOMAINS[domainIdx()] ?? host];
        break;
    }
    tasks.push({ target, hosts, status, fanOut: true });
  }
  return {
    jobId: `b${seq.toString(36).padStart(11, '0')}`,
    appId: APP,
    zoneId,
    type,
    method: r() < 0.9 ? 'invalidate' : 'delete',
    createdAt,
    secretId: 'AKIDbench',
    clientIp: '203.0.113.9',
    source: r() < 0.5 ? 'teo' : 'cdn',
    tasks,
  };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? 0;
}

export async function runStoreBench(opts: StoreBenchOptions = {}): Promise<StoreBenchResult> {
  const n = opts.tasks ?? 1_000_000;
  const iterations = opts.iterations ?? 300;
  const log = opts.log ?? ((line: string) => console.log(line));
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'edgepurge-bench-'));
  const path = join(dir, 'bench.db');
  const r = prng(opts.seed ?? 42);
  const store = new SqliteTaskStore({ path });
  await store.start();
  try {
    // --- seed: jobs in time order over SPAN_DAYS, about 20k tasks per transaction ---
    const t0 = performance.now();
    const start = END - SPAN_DAYS * DAY;
    const samples: Array<{ target: string; createdAt: number }> = [];
    let made = 0;
    let seq = 0;
    let batch: NewJob[] = [];
    let batchTasks = 0;
    while (made < n) {
      const createdAt = start + Math.floor((made / n) * SPAN_DAYS * DAY);
      const job = makeJob(r, seq++, createdAt, n - made);
      made += job.tasks.length;
      batch.push(job);
      batchTasks += job.tasks.length;
      const first = job.tasks[0];
      if (first && (job.type === 'purge_url' || job.type === 'prefetch_url') && r() < 0.01) {
        samples.push({ target: first.target, createdAt });
      }
      if (batchTasks >= 20_000 || made >= n) {
        store.bulkLoadForBench(batch);
        batch = [];
        batchTasks = 0;
      }
    }
    const seedSeconds = (performance.now() - t0) / 1000;
    const dbBytes = ['', '-wal'].reduce((s, suf) => {
      try {
        return s + statSync(path + suf).size;
      } catch {
        return s;
      }
    }, 0);
    log(`seeded ${made.toLocaleString('en')} tasks (${seq.toLocaleString('en')} jobs) in ${seedSeconds.toFixed(1)} s; db ${(dbBytes / 2 ** 20).toFixed(0)} MiB`);

    // --- queries ---
    const statusSets: ReadonlyArray<readonly TaskStatus[]> = [['success'], ['failed'], ['processing', 'success'], ['failed', 'timeout'], ['processing']];
    const week = (end: number) => ({ from: end - 7 * DAY, to: end });
    const randomEnd = () => start + 7 * DAY + Math.floor(r() * (SPAN_DAYS - 7) * DAY);
    /** A window of 8-20 characters out of a stored URL: of its file name, or anywhere in its path. */
    const sampleNeedle = (part: 'file' | 'path'): { needle: string; createdAt: number } => {
      const s = pick(r, samples);
      const path = s.target.slice(s.target.indexOf('/', 8) + 1);
      const text = part === 'path' ? path : path.slice(path.lastIndexOf('/') + 1);
      const len = Math.min(text.length, 8 + Math.floor(r() * 13));
      const at = Math.floor(r() * (text.length - len + 1));
      return { needle: text.slice(at, at + len), createdAt: s.createdAt };
    };
    const fuzzyWeek = (part: 'file' | 'path'): TaskQuery => {
      const { needle, createdAt } = sampleNeedle(part);
      const end = Math.min(END, createdAt + Math.floor(r() * 7 * DAY));
      return { appId: APP, zoneId: pick(r, ZONES), ...week(end), targetContains: needle, offset: 0, limit: 20 };
    };
    const scenarios: Array<{ name: string; query: () => TaskQuery }> = [
      {
        name: '(a) zone + 7 days + statuses + domain',
        query: () => {
          const di = Math.floor(r() * DOMAINS.length);
          return { appId: APP, zoneId: zoneOf(di), ...week(randomEnd()), statuses: pick(r, statusSets), hosts: [DOMAINS[di] ?? ''], offset: 0, limit: 20 };
        },
      },
      {
        name: '(a2) 7 days + statuses + domain, no zone, page 5 of 100',
        query: () => ({ appId: APP, ...week(randomEnd()), statuses: pick(r, statusSets), hosts: [pick(r, DOMAINS)], offset: 400, limit: 100 }),
      },
      {
        name: '(b) fuzzy target (8-20 chars of a file name) + 7 days',
        query: () => fuzzyWeek('file'),
      },
      {
        name: '(b2) fuzzy target (8-20 chars of a path) + 7 days',
        query: () => fuzzyWeek('path'),
      },
      {
        name: '(b3) fuzzy target (file name), no time range',
        query: () => ({ appId: APP, targetContains: sampleNeedle('file').needle, offset: 0, limit: 20 }),
      },
      {
        name: '(c) 7 days + statuses, no domain',
        query: () => ({ appId: APP, ...week(randomEnd()), statuses: pick(r, statusSets), offset: 0, limit: 20 }),
      },
      {
        name: '(d) broad fuzzy target ("banner", ".webp", "/2026/01/") + 7 days',
        query: () => ({ appId: APP, ...week(randomEnd()), targetContains: pick(r, ['banner', '.webp', 'summer-', '/2026/01/']), offset: 0, limit: 20 }),
      },
      {
        name: '(e) exact target + 7 days',
        query: () => {
          const s = pick(r, samples);
          return { appId: APP, from: s.createdAt - DAY, to: s.createdAt + 6 * DAY, target: s.target, offset: 0, limit: 20 };
        },
      },
    ];
    const results: ScenarioResult[] = [];
    for (const sc of scenarios) {
      for (let i = 0; i < 20; i++) await store.listTasks(sc.query()); // warm-up
      const times: number[] = [];
      let totals = 0;
      const count = sc.name.startsWith('(d)') ? Math.min(iterations, 60) : iterations;
      for (let i = 0; i < count; i++) {
        const query = sc.query();
        const q0 = performance.now();
        const res = await store.listTasks(query);
        times.push(performance.now() - q0);
        totals += res.total;
      }
      times.sort((a, b) => a - b);
      const res: ScenarioResult = {
        name: sc.name,
        p50: percentile(times, 50),
        p99: percentile(times, 99),
        max: times[times.length - 1] ?? 0,
        meanTotal: totals / count,
      };
      results.push(res);
      log(
        `${res.name.padEnd(68)} p50 ${res.p50.toFixed(2).padStart(7)} ms  p99 ${res.p99.toFixed(2).padStart(7)} ms  ` +
          `max ${res.max.toFixed(2).padStart(7)} ms  mean total ${res.meanTotal.toFixed(0)}`,
      );
    }
    return { tasks: made, seedSeconds, dbBytes, scenarios: results };
  } finally {
    await store.close();
    if (opts.dir === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const arg = process.argv[2];
  const tasks = arg === undefined ? undefined : Number(arg.replaceAll('_', ''));
  if (tasks !== undefined && !(Number.isInteger(tasks) && tasks > 0)) {
    console.error(`usage: node bench/store-bench.ts [tasks]   (got ${arg})`);
    process.exitCode = 2;
  } else {
    await runStoreBench(tasks === undefined ? {} : { tasks });
  }
}
