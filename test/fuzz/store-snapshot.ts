// What a refused request must leave alone, for every tenant at once: each task (id, target, status),
// today's quota counters, the purge log's end and the edge nodes' recorded progress (DESIGN invariant 8).
import type { TestServer } from '../helpers/control-plane.ts';
import { quotaDay } from '../../src/purge/quotas.ts';

export interface StoreSnapshot {
  readonly accounts: Record<string, { tasks: string[]; jobs: number; usage: [string, number][] }>;
  readonly lastSeq: number;
  readonly nodes: string[];
}

export async function storeSnapshot(s: TestServer, nowMs: number): Promise<StoreSnapshot> {
  const config = s.controlPlane.directory.config;
  const day = quotaDay(nowMs, config.server.timezone);
  const accounts: StoreSnapshot['accounts'] = {};
  for (const { appId } of config.accounts) {
    const { tasks } = await s.store.listTasks({ appId, offset: 0, limit: 1_000_000 });
    // Every job has at least one task: distinct job ids count the jobs.
    const jobs = new Set(tasks.map((t) => t.jobId)).size;
    const usage = [...(await s.store.quotaUsage(appId, day))].sort(([a], [b]) => (a < b ? -1 : 1));
    accounts[appId] = { tasks: tasks.map((t) => `${t.jobId} ${t.status} ${t.target}`).sort(), jobs, usage };
  }
  const nodes = (await s.store.nodeProgress()).map((p) => `${p.nodeId} ${p.ackedSeq} ${p.seenAt}`).sort();
  return { accounts, lastSeq: await s.store.lastSeq(), nodes };
}
