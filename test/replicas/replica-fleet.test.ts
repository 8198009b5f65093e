// Real processes (issue 9): 3 `edgepurge serve` replicas on one PostgreSQL, 3 built-in edges
// (`edgepurge edge`) that fail over between them, the official EdgeOne SDK. kill -9 of the leading replica
// under load loses no acknowledged JobId, its duties move within seconds, every task still reaches its
// true final status; quotas stay exact under concurrent submissions to every replica.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { stringify } from 'yaml';
import { ACME, baseConfig } from '../helpers/control-plane.ts';
import { freshTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { teoClient, type SdkClient } from '../helpers/sdk.ts';
import { childEnv, edgeGet, freePort, MAIN, Origin, until } from '../e2e/helpers.ts';
import { stopChildren } from './process-fleet.ts';

const skip = postgresSkip('the replica fleet tests');
// At the top level: freshTestDatabase's cleanup registered inside a `before` would drop it as the hook ends.
const url = skip ? '' : await freshTestDatabase();
const SCHEMA = 'fleet';
const PREFIX_DAILY = 40;

interface Proc {
  readonly name: string;
  child: ChildProcess | undefined;
}

describe('3 replicas on PostgreSQL, 3 edges, kill -9 of the leader under load', { skip, concurrency: false }, () => {
  let db: pg.Client;
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-replicas-'));
  const origin = new Origin();
  const replicas: Array<Proc & { port: number; sdk: SdkClient }> = [];
  const edges: Array<Proc & { port: number }> = [];
  const log: string[] = [];

  const run = (name: string, args: string[]): Promise<ChildProcess> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [MAIN, ...args], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      for (const s of [child.stdout!, child.stderr!]) s.on('data', (c: Buffer) => log.push(...String(c).trimEnd().split('\n').map((l) => `[${name}] ${l}`)));
      child.once('exit', (code, sig) => reject(new Error(`${name} exited (${code ?? sig}):\n${log.slice(-30).join('\n')}`)));
      child.stdout!.on('data', (c: Buffer) => {
        if (/ on http:\/\/[^\s]+:\d+/.test(String(c))) resolve(child);
      });
    });

  /** The pid of the replica whose session holds the duties' advisory lock (leader.ts names it). */
  const leaderPid = async (): Promise<number | undefined> => {
    const { rows } = await db.query<{ name: string }>(
      `SELECT a.application_name AS name FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
        WHERE a.datname = current_database() AND l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'edgepurge-leader %'`,
    );
    return rows[0] ? Number(rows[0].name.split(' ')[1]) : undefined;
  };

  before(async () => {
    db = new pg.Client({ connectionString: url });
    await db.connect();
    await origin.start();
    for (let i = 1; i <= 3; i++) replicas.push({ name: `cp-${i}`, child: undefined, port: await freePort(), sdk: undefined as unknown as SdkClient });
    for (let i = 1; i <= 3; i++) edges.push({ name: `edge-${i}`, child: undefined, port: await freePort() });
    const base = baseConfig(origin.url);
    const config = {
      ...base,
      accounts: base.accounts!.map((a) => ({ ...a, rateLimit: false as const, quotas: { purge_prefix: { batch: 20, daily: PREFIX_DAILY } } })),
      server: { listen: `127.0.0.1:${replicas[0]!.port}` },
      store: { driver: 'postgres', url, schema: SCHEMA, pool: { max: 4 } },
      fanout: { leaseMs: 2000, taskTimeoutMs: 30_000 },
      nodes: edges.map((e) => ({ id: e.name, listen: `127.0.0.1:${e.port}`, token: `token-${e.name}-0123456789`, controlPlane: replicas.map((r) => `http://127.0.0.1:${r.port}`) })),
    };
    const configPath = join(dir, 'edgepurge.yaml');
    writeFileSync(configPath, stringify(config), { mode: 0o600 });
    // One after the other: the first applies the migrations, the others find them done.
    for (const r of replicas) {
      r.child = await run(r.name, ['serve', '--config', configPath, '--listen', `127.0.0.1:${r.port}`]);
      r.sdk = teoClient(`127.0.0.1:${r.port}`, ACME.secretId, ACME.secretKey);
    }
    for (const e of edges) e.child = await run(e.name, ['edge', '--config', configPath, '--node', e.name]);
    for (const e of edges) await until(`${e.name} serves hits`, async () => (await edgeGet(e.port, ACME.host, `/__ready/${e.name}`).catch(() => undefined))?.xcache === 'HIT', 15_000);
  });

  after(async () => {
    await stopChildren([...edges, ...replicas].map((p) => p.child));
    await db?.end();
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every acknowledged JobId survives, the duties move within seconds, every task ends success on every node', async () => {
    const pids = replicas.map((r) => r.child!.pid!);
    const leader = await until('a leader', leaderPid);
    const victim = replicas[pids.indexOf(leader)]!;
    assert.ok(victim, `the leader ${leader} is one of the replicas ${pids.join(', ')}`);
    const acknowledged: string[] = [];
    let stop = false;
    let n = 0;
    // Four submitters, each round-robin over every replica, as a load balancer would spread them.
    const submitter = async (w: number) => {
      for (let i = w; !stop; i += 4) {
        const r = replicas[i % 3]!;
        try {
          const { JobId } = await r.sdk.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`https://${ACME.host}/load/${w}/${n++}`] });
          acknowledged.push(JobId as string);
        } catch {
          // The killed replica's requests fail: not acknowledged, nothing to find later.
        }
      }
    };
    const load = [0, 1, 2, 3].map(submitter);
    // Under load for real: the kill lands while jobs are being acknowledged (a loaded machine is slow to start).
    await until('20 jobs acknowledged', () => acknowledged.length >= 20, 60_000);
    const before = acknowledged.length;
    victim.child!.removeAllListeners('exit');
    victim.child!.kill('SIGKILL');
    const killedAt = Date.now();
    const next = await until('another replica leads', async () => {
      const p = await leaderPid();
      return p !== undefined && p !== leader ? p : undefined;
    }, 10_000);
    const moved = Date.now() - killedAt;
    console.log(`# duties moved from pid ${leader} to pid ${next} in ${moved} ms after kill -9 (${before} jobs acknowledged before the kill)`);
    assert.ok(moved <= 5000, `duties moved in ${moved} ms`);
    await until('20 more jobs acknowledged by the survivors', () => acknowledged.length >= before + 20, 60_000);
    stop = true;
    await Promise.all(load);
    console.log(`# ${acknowledged.length} jobs acknowledged in all`);
    assert.ok(acknowledged.length > before, "the surviving replicas kept acknowledging");
    const { rows } = await db.query<{ job_id: string }>(`SELECT job_id FROM ${SCHEMA}.jobs WHERE job_id = ANY($1)`, [acknowledged]);
    assert.equal(rows.length, acknowledged.length, 'every acknowledged JobId is in the store');
    // True final status: success because every node applied it (not fenced, not timed out).
    await until('every task settled', async () => (await db.query(`SELECT 1 FROM ${SCHEMA}.tasks WHERE status = 'processing' LIMIT 1`)).rowCount === 0, 20_000);
    const statuses = await db.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM ${SCHEMA}.tasks GROUP BY status`);
    assert.deepEqual(statuses.rows.map((r) => r.status), ['success'], JSON.stringify(statuses.rows));
    const last = (await db.query<{ value: number }>(`SELECT value::int AS value FROM ${SCHEMA}.store_meta WHERE key = 'last_seq'`)).rows[0]!.value;
    const progress = await db.query<{ node_id: string; acked_seq: number }>(`SELECT node_id, acked_seq::int AS acked_seq FROM ${SCHEMA}.node_progress ORDER BY node_id`);
    assert.deepEqual(progress.rows.map((r) => [r.node_id, r.acked_seq]), edges.map((e) => [e.name, last]), 'every edge applied the whole log');
  });

  it('quotas are exact under concurrent submissions to every surviving replica', async () => {
    const alive = replicas.filter((r) => r.child && r.child.exitCode === null && r.child.signalCode === null);
    assert.equal(alive.length, 2);
    const answers = await Promise.allSettled(
      Array.from({ length: 3 * PREFIX_DAILY }, (_, i) => alive[i % alive.length]!.sdk.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_prefix', Targets: [`https://${ACME.host}/q${i}/`] })),
    );
    const ok = answers.filter((a) => a.status === 'fulfilled').length;
    assert.equal(ok, PREFIX_DAILY);
    for (const a of answers) if (a.status === 'rejected') assert.match(String((a.reason as { code?: string }).code), /LimitExceeded/);
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${SCHEMA}.tasks WHERE type = 'purge_prefix'`);
    assert.equal(rows[0]!.n, PREFIX_DAILY);
  });
});
