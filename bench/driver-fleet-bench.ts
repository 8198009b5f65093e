// Driver fleet figure (issue 8): accept → visible on all nodes with 3 Varnish and 3 nginx nodes, each
// with `edgepurge agent` as its own process, a control plane process (`edgepurge serve`) and a real
// origin. For each purge_url delete (sent one at a time through the official EdgeOne SDK), from the
// moment CreatePurgeTask's answer arrives, one of (in turn, so that one figure's polling does not slow
// the purge another figure times: on 2 CPUs eight pollers cost the fleet a quarter of its speed):
//   visible    DescribePurgeTasks says `success` (what a user sees), polled back to back;
//   acked      the admin endpoint's live per-node view shows every node applied (its ack arrived);
//   effective  every cache answers the new version of the URL (polled on each cache, 1 ms apart).
// The agents connect to the control plane directly (no test relay in the bench's event loop).
// Part `drivers` of `npm run bench`; alone: npx node bench/driver-fleet-bench.ts [--samples N]
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { printTable } from '../src/cli/table.ts';
import { cacheMissing, startCacheNode, type CacheKind, type CacheNode } from '../test/drivers/cache-nodes.ts';
import { ACME, Fleet, Origin, until } from '../test/e2e/helpers.ts';
import { median, quantile } from './stats.ts';

const { values } = parseArgs({ options: { samples: { type: 'string', default: '100' }, warmup: { type: 'string', default: '10' }, per: { type: 'string', default: '3' } } });
const SAMPLES = Number(values.samples);
const WARMUP = Number(values.warmup);
const PER_KIND = Number(values.per);
const KINDS: readonly CacheKind[] = ['varnish', 'nginx'];

const missing = KINDS.map(cacheMissing).filter((m) => m !== undefined);
if (missing.length) {
  console.log(`\n  !!! DRIVER FLEET BENCH SKIPPED: ${missing.join('; ')}\n`);
  process.exit(process.env.CI === 'true' ? 1 : 0);
}

const cleanups: Array<() => unknown> = [];
const fmt = (n: number) => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : 'n/a');

try {
  const origin = await new Origin().start();
  cleanups.push(() => origin.close());
  const caches = new Map<string, CacheNode>();
  for (const kind of KINDS) {
    for (let i = 1; i <= PER_KIND; i++) {
      const c = await startCacheNode(kind, origin.port);
      cleanups.push(() => c.close());
      caches.set(`${kind}-${i}`, c);
    }
  }
  const fleet = await Fleet.start(
    { after: (fn) => void cleanups.push(fn) },
    { origin, nodeCount: 0, unlimited: true, direct: true, leaseMs: 10_000, taskTimeoutMs: 60_000, agents: [...caches].map(([id, c]) => ({ id, driver: c.driver })) },
  );
  const ids = [...caches.keys()];
  // Every agent connected, applying, and (Varnish) holding its lease.
  const sync = await fleet.teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/__sync`] });
  await fleet.settled(sync.JobId, 60_000);
  for (const [id, c] of caches) if (c.kind === 'varnish') await fleet.until(`${id} to serve hits`, async () => (await c.get(ACME.host, `/__ready/${id}`)).hit, 60_000);

  const visible: number[] = [];
  const effective: number[] = [];
  const byKind = new Map<CacheKind, number[]>(KINDS.map((k) => [k, []]));
  const ackByKind = new Map<CacheKind, number[]>(KINDS.map((k) => [k, []]));
  const accept: number[] = [];
  const acked: number[] = [];
  let notEffectiveAtSuccess = 0;
  type Watch = 'status' | 'acks' | 'caches';
  const WATCHES: readonly Watch[] = ['status', 'acks', 'caches'];
  for (let i = 0; i < (WARMUP + SAMPLES) * WATCHES.length; i++) {
    const watch = WATCHES[i % WATCHES.length]!;
    const warmup = i < WARMUP * WATCHES.length;
    const path = `/bench/${i}.txt`;
    for (const c of caches.values()) {
      await c.get(ACME.host, path);
      await until(`a hit of ${path}`, async () => (await c.get(ACME.host, path)).hit);
    }
    origin.bump(ACME.host, path);
    const fresh = origin.body(ACME.host, path);
    const t0 = performance.now();
    const r = (await fleet.teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: 'delete', Targets: [`http://${ACME.host}${path}`] })) as { JobId: string };
    const answered = performance.now();
    if (!warmup) accept.push(answered - t0);
    const describe = async () => {
      const d = (await fleet.teo.DescribePurgeTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [r.JobId] }] })) as { Tasks: Array<{ Status: string }> };
      const status = d.Tasks[0]?.Status;
      if (status !== 'success' && status !== 'processing') throw new Error(`${path}: task ${status}`);
      return status === 'success';
    };
    if (watch === 'status') {
      for (;;) {
        const ok = await describe();
        const at = performance.now();
        if (ok) {
          if (!warmup) visible.push(at - answered);
          break;
        }
        if (at - answered > 30_000) throw new Error(`${path}: not success within 30 s`);
      }
      // What success promises: every cache serves the new version now.
      for (const c of caches.values()) if ((await c.peek(ACME.host, path)) !== fresh) notEffectiveAtSuccess++;
      continue;
    }
    if (watch === 'acks') {
      // The hub's live per-node view (admin endpoint): when every agent's ack was in.
      const ackAt = new Map<string, number>();
      for (;;) {
        const job = await fleet.adminJob(r.JobId);
        const at = performance.now();
        for (const n of job.Tasks[0]?.Nodes ?? []) if (n.State === 'applied' && !ackAt.has(n.NodeId)) ackAt.set(n.NodeId, at - answered);
        if (job.Tasks[0]?.Nodes.length === ids.length && job.Tasks[0].Nodes.every((n) => n.State === 'applied')) {
          if (!warmup) acked.push(at - answered);
          break;
        }
        if (at - answered > 30_000) throw new Error(`${path}: not acked by every node within 30 s`);
      }
      if (!warmup) for (const k of KINDS) ackByKind.get(k)!.push(Math.max(...ids.filter((id) => caches.get(id)!.kind === k).map((id) => ackAt.get(id)!)));
    } else {
      const effectiveAt = new Map<string, number>();
      await Promise.all(
        [...caches].map(async ([id, c]) => {
          for (;;) {
            if ((await c.peek(ACME.host, path)) === fresh) return void effectiveAt.set(id, performance.now() - answered);
            if (performance.now() - answered > 30_000) throw new Error(`${id} did not purge ${path} within 30 s`);
            await new Promise((res) => setTimeout(res, 1));
          }
        }),
      );
      if (!warmup) {
        effective.push(Math.max(...effectiveAt.values()));
        for (const k of KINDS) byKind.get(k)!.push(Math.max(...ids.filter((id) => caches.get(id)!.kind === k).map((id) => effectiveAt.get(id)!)));
      }
    }
    // Settled before the next purge starts (polled gently: not part of any figure).
    for (const end = performance.now() + 30_000; !(await describe()); ) {
      if (performance.now() > end) throw new Error(`${path}: not success within 30 s`);
      await new Promise((res) => setTimeout(res, 5));
    }
  }

  const row = (figure: string, xs: number[], bar?: string, ok?: boolean) => ({
    figure,
    measured: `${fmt(median(xs))} / ${fmt(quantile(xs, 0.99))} ms`,
    ...(bar ? { bar, verdict: ok ? 'PASS' : 'FAIL' } : {}),
  });
  console.log(
    `\n  ${PER_KIND} Varnish + ${PER_KIND} nginx nodes, one agent process each; control plane process; ${SAMPLES} purge_url deletes one at a time` +
      ` per figure (after ${WARMUP} warm-up each), each URL cached on every node first; one figure watched per purge, in turn;` +
      ` p50 / p99 from CreatePurgeTask's answer.`,
  );
  printTable(
    [
      row(`accept → DescribePurgeTasks says success (all ${ids.length} nodes applied)`, visible, 'p50 ≤ 20 ms', median(visible) <= 20),
      row('accept → every agent acked (admin per-node view)', acked),
      ...KINDS.map((k) => row(`  … every ${k} agent`, ackByKind.get(k)!)),
      row('accept → the new version served by every cache', effective),
      ...KINDS.map((k) => row(`  … by every ${k} cache`, byKind.get(k)!)),
      row('for context: CreatePurgeTask request → answer (SDK)', accept),
      { figure: 'caches serving the old version right after success was seen', measured: String(notEffectiveAtSuccess), bar: '0', verdict: notEffectiveAtSuccess === 0 ? 'PASS' : 'FAIL' },
    ],
    ['figure', 'measured', 'bar', 'verdict'],
  );
  console.log(`  load average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} CPUs`);
} finally {
  for (const c of cleanups.reverse()) await c();
}
