// The hit bench's alternating load generator: one server at a time, turns in A B / B A order, and a
// slower server measured slower.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { generateAlternatingLoad } from '../../bench/load.ts';

interface Server {
  readonly port: number;
  /** Requests this server answered, with when they arrived. */
  readonly arrivals: number[];
  close(): Promise<void>;
}

/** Answers every request after `delayMs`. */
async function server(delayMs: number): Promise<Server> {
  const arrivals: number[] = [];
  const s = http.createServer((_req, res) => {
    arrivals.push(performance.now());
    if (delayMs === 0) res.end('ok');
    else setTimeout(() => res.end('ok'), delayMs);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return {
    port: (s.address() as AddressInfo).port,
    arrivals,
    close: () =>
      new Promise<void>((r) => {
        s.closeAllConnections();
        s.close(() => r());
      }),
  };
}

describe('generateAlternatingLoad', () => {
  let fast: Server;
  let slow: Server;
  before(async () => {
    fast = await server(0);
    slow = await server(20);
  });
  after(async () => {
    await fast?.close();
    await slow?.close();
  });

  it('loads one target at a time, in A B / B A turns, and measures the slower one slower', async () => {
    const r = await generateAlternatingLoad({
      targets: [{ host: '127.0.0.1', port: fast.port, cpuPid: process.pid }, { host: '127.0.0.1', port: slow.port }],
      requests: [{ method: 'GET', path: '/', headers: { Host: 'x' } }],
      connections: 2,
      turns: 2,
      settleMs: 50,
      turnMs: 200,
    });
    assert.equal(r.turns.length, 2);
    const [a, b] = r.turns as [(typeof r.turns)[0], (typeof r.turns)[0]];
    assert.equal(a.length, 2);
    assert.equal(b.length, 2);
    for (const t of [...a, ...b]) assert.equal(t.errors, 0);
    // 2 connections, 20 ms per answer: at most 100/s; the fast one far more.
    for (const t of b) assert.ok(t.rps <= 110, `slow target at ${t.rps} req/s`);
    for (const [k, t] of a.entries()) assert.ok(t.rps > 2 * b[k]!.rps, `fast ${t.rps} vs slow ${b[k]!.rps} req/s`);
    // CPU read for the target that names a process, NaN for the other.
    for (const t of a) assert.ok(t.serverCpuSeconds >= 0, `cpu ${t.serverCpuSeconds}`);
    for (const t of b) assert.ok(Number.isNaN(t.serverCpuSeconds));
    // Turn order fast, slow | slow, fast: arrivals in time order make three runs (F, S S, F) — no
    // request reaches a target outside its turns.
    const arrivals = [...fast.arrivals.map((t) => [t, 'F'] as const), ...slow.arrivals.map((t) => [t, 'S'] as const)].sort((x, y) => x[0] - y[0]);
    const runs = arrivals.map((x) => x[1]).filter((l, i, ls) => i === 0 || l !== ls[i - 1]);
    assert.deepEqual(runs, ['F', 'S', 'F']);
  });
});
