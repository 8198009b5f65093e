// Real processes for failover: `edgepurge serve` replicas on one PostgreSQL schema and built-in edges
// (`edgepurge edge`) that list every replica. The first replica starts alone so every edge streams from
// it; the others start after. Used by test/replicas/failover.test.ts and `npm run bench -- --only failover`.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ACME, baseConfig } from '../helpers/control-plane.ts';
import { teoClient, type SdkClient } from '../helpers/sdk.ts';
import { childEnv, edgeGet, freePort, MAIN, type Origin, until } from '../e2e/helpers.ts';

interface Proc {
  readonly name: string;
  readonly port: number;
  child: ChildProcess | undefined;
}

export interface EdgeProc extends Proc {
  /** Its /metrics listener (nodes[].metrics.listen). */
  readonly metricsPort: number;
}

export interface ReplicaProc extends Proc {
  readonly sdk: SdkClient;
}

/** What an edge's /metrics says about its stream. */
export interface EdgeStream {
  readonly connected: boolean;
  readonly failovers: number;
  readonly appliedSeq: number;
}

export class ProcessFleet {
  readonly replicas: ReplicaProc[] = [];
  readonly edges: EdgeProc[] = [];
  /** Every line the children printed, prefixed with who printed it (shown when a start fails). */
  readonly log: string[] = [];
  readonly #dir = mkdtempSync(join(tmpdir(), 'edgepurge-failover-'));
  #configPath = '';

  /** `replicas` serve processes on `schema` of `url`, `edges` built-in edges; all of the edges on the first replica. */
  static async start(o: { url: string; schema: string; origin: Origin; replicas: number; edges: number; leaseMs?: number }): Promise<ProcessFleet> {
    const f = new ProcessFleet();
    try {
      for (let i = 1; i <= o.replicas; i++) {
        const port = await freePort();
        f.replicas.push({ name: `cp-${i}`, port, child: undefined, sdk: teoClient(`127.0.0.1:${port}`, ACME.secretId, ACME.secretKey) });
      }
      for (let i = 1; i <= o.edges; i++) f.edges.push({ name: `edge-${i}`, port: await freePort(), metricsPort: await freePort(), child: undefined });
      const base = baseConfig(o.origin.url);
      const config = {
        ...base,
        accounts: base.accounts!.map((a) => ({ ...a, rateLimit: false as const })),
        server: { listen: `127.0.0.1:${f.replicas[0]!.port}`, accessLog: false },
        store: { driver: 'postgres', url: o.url, schema: o.schema, pool: { max: 4 } },
        fanout: { leaseMs: o.leaseMs ?? 2000, taskTimeoutMs: 60_000 },
        nodes: f.edges.map((e) => ({
          id: e.name, listen: `127.0.0.1:${e.port}`, token: `token-${e.name}-0123456789`, metrics: { listen: `127.0.0.1:${e.metricsPort}` },
          controlPlane: f.replicas.map((r) => `http://127.0.0.1:${r.port}`),
        })),
      };
      f.#configPath = join(f.#dir, 'edgepurge.yaml');
      writeFileSync(f.#configPath, stringify(config), { mode: 0o600 });
      await f.startReplica(0);
      for (const e of f.edges) e.child = await f.#run(e.name, ['edge', '--config', f.#configPath, '--node', e.name]);
      await until('every edge streaming from cp-1', async () => (await Promise.all(f.edges.map((e) => f.stream(e)))).every((s) => s?.connected), 20_000);
      for (let i = 1; i < f.replicas.length; i++) await f.startReplica(i);
      return f;
    } catch (e) {
      await f.close();
      throw e;
    }
  }

  async startReplica(i: number): Promise<void> {
    const r = this.replicas[i]!;
    r.child = await this.#run(r.name, ['serve', '--config', this.#configPath, '--listen', `127.0.0.1:${r.port}`]);
  }

  /** kill -9 of replica `i`; resolves once the process is gone. */
  async kill(i: number): Promise<void> {
    const c = this.replicas[i]!.child!;
    c.removeAllListeners('exit');
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }

  alive(): ReplicaProc[] {
    return this.replicas.filter((r) => r.child && r.child.exitCode === null && r.child.signalCode === null);
  }

  /** The edge's stream as its /metrics tells; undefined while it does not answer. */
  async stream(e: EdgeProc): Promise<EdgeStream | undefined> {
    const res = await fetch(`http://127.0.0.1:${e.metricsPort}/metrics`).catch(() => undefined);
    if (!res || res.status !== 200) return undefined;
    const text = await res.text();
    const value = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
    return { connected: value('edgepurge_edge_stream_connected') === 1, failovers: value('edgepurge_edge_failovers_total'), appliedSeq: value('edgepurge_edge_applied_seq') };
  }

  /** GET through edge `e` with the test account's host. */
  get(e: EdgeProc, path: string) {
    return edgeGet(e.port, ACME.host, path);
  }

  #run(name: string, args: string[]): Promise<ChildProcess> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [MAIN, ...args], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      for (const s of [child.stdout!, child.stderr!]) s.on('data', (c: Buffer) => this.log.push(...String(c).trimEnd().split('\n').map((l) => `[${name}] ${l}`)));
      child.once('exit', (code, sig) => reject(new Error(`${name} exited (${code ?? sig}):\n${this.log.slice(-30).join('\n')}`)));
      child.stdout!.on('data', (c: Buffer) => {
        if (/ on http:\/\/[^\s]+:\d+/.test(String(c))) resolve(child);
      });
    });
  }

  /** SIGTERM to every child still running (SIGKILL after 3 s), then the temp folder. */
  async close(): Promise<void> {
    await stopChildren([...this.edges, ...this.replicas].map((p) => p.child));
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** SIGTERM to each child still running, one after the other (SIGKILL after 3 s); resolves once all are gone. */
export async function stopChildren(children: ReadonlyArray<ChildProcess | undefined>): Promise<void> {
  for (const c of children) {
    if (!c || c.exitCode !== null || c.signalCode !== null) continue;
    c.removeAllListeners('exit');
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const force = setTimeout(() => c.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(force);
  }
}
