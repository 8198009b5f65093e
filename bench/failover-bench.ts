// Failover benchmark (issue 9): real processes — 3 `edgepurge serve` replicas on one PostgreSQL and
// built-in edges (`edgepurge edge`) listing all of them, every edge streaming from cp-1 — then kill -9 of
// cp-1 under a light purge load: the time until every edge streams again (its /metrics: connected, one
// failover more). Each round is a fresh fleet on a fresh schema; a fresh database, dropped after.
import pg from 'pg';
import { createBenchDatabase } from './bench-database.ts';
import { ACME } from '../test/helpers/control-plane.ts';
import { Origin, sleep } from '../test/e2e/helpers.ts';
import { ProcessFleet } from '../test/replicas/process-fleet.ts';

export interface FailoverBenchResult {
  readonly edges: number;
  /** kill -9 → every edge streaming from another replica, ms, one per round. */
  readonly movedMs: readonly number[];
}

export async function runFailoverBench(o: { rounds?: number; edges?: number; log: (line: string) => void; admin?: string }): Promise<FailoverBenchResult> {
  const edges = o.edges ?? 5;
  const database = await createBenchDatabase('failover', o.admin);
  const url = database.url;
  const origin = await new Origin().start();
  const movedMs: number[] = [];
  try {
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query('CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public');
    await db.end();
    for (let round = 0; round < (o.rounds ?? 3); round++) {
      const fleet = await ProcessFleet.start({ url, schema: `round${round}`, origin, replicas: 3, edges, leaseMs: 2000 });
      try {
        let stop = false;
        // A light load through the surviving replicas, so the streams carry entries while they move.
        const load = (async () => {
          for (let i = 0; !stop; i++) {
            const r = fleet.replicas[1 + (i % 2)]!;
            await r.sdk.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/bench/${i}`] }).catch(() => undefined);
            await sleep(20);
          }
        })();
        await sleep(500);
        await fleet.kill(0);
        const killedAt = performance.now();
        for (;;) {
          const s = await Promise.all(fleet.edges.map((e) => fleet.stream(e)));
          if (s.every((x) => x?.connected && x.failovers >= 1)) break;
          if (performance.now() - killedAt > 30_000) throw new Error(`edges still not streaming 30 s after kill -9:\n${fleet.log.slice(-20).join('\n')}`);
          await sleep(10);
        }
        movedMs.push(performance.now() - killedAt);
        o.log(`round ${round + 1}: ${edges} edges streaming again ${movedMs.at(-1)!.toFixed(0)} ms after kill -9 of the replica they all streamed from`);
        stop = true;
        await load;
      } finally {
        await fleet.close();
      }
    }
  } finally {
    await origin.close();
    await database.drop();
  }
  return { edges, movedMs };
}
