// Slow and half-open clients (issue 7): one address holding thousands of silent or trickling sockets
// must not stop other clients on the control plane or the edge. The attacker binds 127.0.0.2, the
// legitimate client 127.0.0.1 (both loopback on Linux).
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import test from 'node:test';
import { addressKey } from '../../src/shared/connection-limits.ts';
import { request, startEdge, startOrigin, sleep } from '../edge/helpers.ts';
import { ACME, baseConfig, startControlPlane } from '../helpers/control-plane.ts';
import { teoClient } from '../helpers/sdk.ts';

const ATTACKER = '127.0.0.2';
const LIMITS = { perAddress: 100, total: 4000, firstByteTimeoutMs: 500 };

/** Opens `n` sockets from the attacker's address: even ones stay silent, odd ones trickle a header byte a second. */
function attack(port: number, n: number): { sockets: net.Socket[]; settled: Promise<void>; stop: () => void } {
  const sockets: net.Socket[] = [];
  const timers: NodeJS.Timeout[] = [];
  const settling: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: ATTACKER });
    s.on('error', () => {});
    // Settled once connected and then either reset by the server or still open after a moment.
    settling.push(new Promise((resolve) => s.once('connect', () => setTimeout(resolve, 200)).once('close', () => resolve())));
    if (i % 2 === 1) {
      const line = 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ';
      let at = 0;
      const timer = setInterval(() => s.writable && s.write(line[at++ % line.length] ?? 'a'), 1000);
      timers.push(timer);
    }
    sockets.push(s);
  }
  return { sockets, settled: Promise.all(settling).then(() => {}), stop: () => (timers.forEach(clearInterval), sockets.forEach((s) => s.destroy())) };
}

test('addresses are accounted per IPv4 address and per IPv6 /64', () => {
  assert.equal(addressKey('10.1.2.3'), '10.1.2.3');
  assert.equal(addressKey('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(addressKey('2001:db8:0:1:aaaa::1'), '2001:db8:0:1::/64');
  assert.equal(addressKey('2001:db8:0:1:ffff:1:2:3'), '2001:db8:0:1::/64');
  assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(addressKey('::1'), '0:0:0:0::/64');
});

test('regression: 2,000 silent or trickling sockets from one address leave the control plane serving another client (≥ 99 % success)', async (t) => {
  const input = baseConfig();
  const s = await startControlPlane(t, { ...input, server: { listen: '127.0.0.1:0', connections: LIMITS }, accounts: input.accounts?.map((a) => ({ ...a, rateLimit: false as const })) });
  const atk = attack(s.port, 2000);
  t.after(atk.stop);
  await atk.settled;
  assert.ok(s.controlPlane.connections.openFrom(ATTACKER) <= LIMITS.perAddress, `attacker holds ${s.controlPlane.connections.openFrom(ATTACKER)}`);
  const teo = teoClient(s.endpoint, ACME.secretId, ACME.secretKey);
  let ok = 0;
  const n = 200;
  for (let i = 0; i < n; i++) {
    try {
      await teo.DescribeContentQuota({ ZoneId: ACME.zoneId });
      ok++;
    } catch {
      // counted as a failure
    }
  }
  t.diagnostic(`control plane: ${ok} of ${n} calls succeeded during the attack; refused ${JSON.stringify(s.controlPlane.connections.refused)}`);
  assert.ok(ok / n >= 0.99, `only ${ok} of ${n} calls succeeded during the attack`);
  assert.ok(s.controlPlane.connections.refused.perAddress > 0, `refused ${JSON.stringify(s.controlPlane.connections.refused)}`);
  // Silent sockets go after the first-byte deadline (trickling ones after headersTimeout, 10 s).
  assert.ok(s.controlPlane.connections.refused.silent > 0);
  assert.ok(s.controlPlane.connections.openFrom(ATTACKER) <= LIMITS.perAddress);
  atk.stop();
});

test('regression: 2,000 silent or trickling sockets from one address leave the edge serving another client (≥ 99 % success)', async (t) => {
  const origin = await startOrigin(t);
  origin.routes.set('/a', (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.end('a');
  });
  const { port, proxy } = await startEdge(t, [{ host: 'a.test', origin: origin.url }], { connections: LIMITS });
  const atk = attack(port, 2000);
  t.after(atk.stop);
  await atk.settled;
  assert.ok(proxy.stats().connections <= LIMITS.perAddress + 1);
  atk.stop();
  // One keep-alive client and fresh connections, alternating.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  let ok = 0;
  const n = 200;
  for (let i = 0; i < n; i++) {
    try {
      const r = i % 2 === 0 ? await request(port, 'a.test', '/a') : await viaAgent(port, agent);
      if (r === 200 || (typeof r === 'object' && r.status === 200)) ok++;
    } catch {
      // counted as a failure
    }
  }
  t.diagnostic(`edge: ${ok} of ${n} requests succeeded during the attack; refused ${proxy.stats().refusedConnections}`);
  assert.ok(ok / n >= 0.99, `only ${ok} of ${n} requests succeeded during the attack`);
  assert.ok(proxy.stats().refusedConnections > 0);
  assert.ok(proxy.stats().connections <= LIMITS.perAddress + 1);
  atk.stop();
});

function viaAgent(port: number, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/a', headers: { host: 'a.test' }, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}
