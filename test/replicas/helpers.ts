// Test harness for replicas: control planes in this process on one PostgreSQL schema (the real-process
// scenarios start `edgepurge serve` instead), and a legacy request sent to any of them.
import { request } from 'node:http';
import type { TestContext } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import type { Clock } from '../../src/shared/clock.ts';
import { PostgresTaskStore } from '../../src/store/postgres/postgres-task-store.ts';
import { startOnStore, type RunningControlPlane } from '../helpers/control-plane.ts';
import type { SignedRequest, V2Body } from '../v2/helpers.ts';

export type Replica = RunningControlPlane<PostgresTaskStore>;

/** A control plane on `schema` of `url`; closed after the test. */
export function startReplica(t: Pick<TestContext, 'after'>, url: string, schema: string, input: ConfigInput, opts: { clock?: Clock; heartbeatMs?: number } = {}): Promise<Replica> {
  const config = parseConfig({ ...input, store: { driver: 'postgres', url, schema } });
  return startOnStore(t, config, new PostgresTaskStore({ url, schema, pool: { max: 4 } }), opts);
}

/**
 * Sends a legacy request signed for the load balancer's address `host` to the replica on `port`, as a
 * load balancer would (the Host header, which the signature covers, stays the client's).
 */
export function sendVia(port: number, host: string, r: SignedRequest): Promise<V2Body> {
  const body = new URLSearchParams(r.params).toString();
  return new Promise((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/v2/index.php', headers: { Host: host, 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as V2Body));
    });
    req.on('error', reject);
    req.end(body);
  });
}
