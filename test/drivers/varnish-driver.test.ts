// The Varnish driver against a real varnishd: the EdgeDriver conformance suite, plus what only Varnish
// promises (only the agent purges, the lease fences Varnish by itself, fail closed on start).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DriverError, type DriverCommand } from '../../src/drivers/edge-driver.ts';
import { EDGEPURGE_VCL_PATH, edgepurgeVcl } from '../../src/drivers/varnish/edgepurge-vcl.ts';
import { pipeline } from '../../src/drivers/varnish/pipelined-http.ts';
import { cliQuote, VarnishAdmin } from '../../src/drivers/varnish/varnish-admin.ts';
import { VarnishDriver } from '../../src/drivers/varnish/varnish-driver.ts';
import { driverConformance } from './driver-conformance.ts';
import { startVarnishHarness, type VarnishHarness } from './varnish-harness.ts';
import { freePort } from '../e2e/helpers.ts';
import { varnishdMissing } from './varnishd.ts';

const missing = varnishdMissing();
// Only src/config and src/cli read process.env in the product; a test may ask whether it runs in CI.
const inCi = process.env.CI === 'true';

let seq = 1_000_000;
const cmd = (c: Omit<DriverCommand, 'seq'>): DriverCommand => ({ ...c, seq: ++seq });

const isDriverError = (retryable: boolean, message?: RegExp) => (e: unknown) =>
  e instanceof DriverError && e.retryable === retryable && (message === undefined || message.test(e.message));

/** A stand-in for Varnish that answers every request with `answer` (or never, when undefined). */
async function fakeVarnish(answer: ((res: http.ServerResponse) => void) | undefined): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => answer?.(res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('Varnish driver without varnishd', () => {
  it('5xx answers and timeouts are retryable, a missing edgepurge.vcl is not', async (t) => {
    const down = await fakeVarnish((res) => {
      res.writeHead(503);
      res.end();
    });
    const silent = await fakeVarnish(undefined);
    const plain = await fakeVarnish((res) => {
      res.writeHead(405);
      res.end();
    });
    t.after(() => Promise.all([down.close(), silent.close(), plain.close()]));
    const purge = cmd({ type: 'purge_url', method: 'delete', hosts: ['a.test'], target: 'http://a.test/x' });
    // (Only the silent server needs a short bound; the others answer, however loaded the machine is.)
    for (const [url, retryable, message, timeoutMs] of [
      [down.url, true, /503/, 10_000],
      [silent.url, true, /within 300 ms/, 300],
      [plain.url, false, /edgepurge\.vcl is not active.*include/, 10_000],
    ] as const) {
      const d = new VarnishDriver({ url, admin: '127.0.0.1:1', adminSecretFile: '/nonexistent', timeoutMs });
      t.after(() => d.close());
      await assert.rejects(d.apply(purge), isDriverError(retryable, message), url);
    }
    const nobody = new VarnishDriver({ url: `http://127.0.0.1:${await freePort()}`, admin: '127.0.0.1:1', adminSecretFile: '/nonexistent', timeoutMs: 300 });
    t.after(() => nobody.close());
    await assert.rejects(nobody.start(), isDriverError(true, /cannot reach Varnish/));
  });

  it('pipelining: answers come back in request order over several sockets, even split into single bytes', async (t) => {
    // Answers each request line with its path in a header, written one byte at a time.
    const server = createServer((socket) => {
      let buf = '';
      socket.on('data', (c: Buffer) => {
        buf += c.toString('latin1');
        let end: number;
        while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
          const path = buf.slice(0, end).split(' ')[1] ?? '';
          buf = buf.slice(end + 4);
          const answer = Buffer.from(`HTTP/1.1 200 OK\r\nX-Path: ${path}\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
          for (const byte of answer) socket.write(Buffer.from([byte]));
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as AddressInfo).port;
    const requests = Array.from({ length: 100 }, (_, i) => ({ method: 'PURGE', path: `/p/${i}`, headers: { host: 'x.test' } }));
    const answers = await pipeline(requests, { host: '127.0.0.1', port, connections: 3, window: 7, timeoutMs: 5000 });
    assert.deepEqual(answers.map((a) => a.headers['x-path']), requests.map((r) => r.path));
    await assert.rejects(pipeline([{ method: 'PURGE', path: '/a b', headers: {} }], { host: '127.0.0.1', port, timeoutMs: 1000 }), /unsafe request line/);
    await assert.rejects(pipeline([{ method: 'PURGE', path: '/', headers: { k: 'v\r\nX: y' } }], { host: '127.0.0.1', port, timeoutMs: 1000 }), /unsafe header/);
  });

  it('edgepurgeVcl() returns the shipped edgepurge.vcl', () => {
    assert.equal(edgepurgeVcl(), readFileSync(EDGEPURGE_VCL_PATH, 'utf8'));
    assert.match(edgepurgeVcl(), /^vcl 4\.1;$/m);
  });
});

if (missing !== undefined && inCi) {
  it('varnishd is installed (CI installs varnish and varnish-modules in .ci/run)', () => {
    assert.fail(`the Varnish driver tests need varnishd: ${missing}`);
  });
} else if (missing !== undefined) {
  describe('Varnish driver', { skip: `SKIPPED — varnishd is not available: ${missing}` }, () => {});
} else {
  driverConformance('varnish', () => startVarnishHarness());

  describe('Varnish driver specifics', () => {
    let h: VarnishHarness;
    before(async () => {
      h = await startVarnishHarness();
    });
    after(async () => {
      await h?.close();
    });

    it('only the agent may purge: PURGE, BAN and the like from anyone else get 403/405 and purge nothing', async () => {
      h.origin.respond('only.test', '/x', { 'cache-tag': 'red' });
      await h.get('only.test', '/x');
      const attempts: Array<[string, Record<string, string>]> = [
        ['PURGE', {}],
        ['purge', {}],
        ['BAN', { 'x-ban-url': '.*' }],
        ['REFRESH', {}],
        ['XKEY', { xkey: 'ep:only.test#red' }],
        ['PURGE', { 'x-edgepurge-token': 'guess', 'x-edgepurge-do': 'url' }],
        ['PURGE', { 'x-edgepurge-token': '', 'x-edgepurge-do': 'tag', 'x-edgepurge-keys': 'ep:only.test#red' }],
        ['PURGE', { 'x-edgepurge-do': 'lease', 'x-edgepurge-lease': '1' }],
        ['GET', { 'x-edgepurge-token': 'guess', 'x-edgepurge-do': 'url' }],
      ];
      for (const [method, headers] of attempts) {
        const r = await h.request(method, '/x', { host: 'only.test', ...headers });
        assert.ok(r.status === 403 || r.status === 405, `${method} ${JSON.stringify(headers)} answered ${r.status}`);
      }
      // A client cannot steer its own GET into the purge path either.
      await h.request('GET', '/x', { host: 'only.test', 'x-edgepurge-op': 'url-hard' });
      const r = await h.get('only.test', '/x');
      assert.equal(r.originHits, 0, 'still cached: nothing was purged');
      assert.equal(r.xcache, 'HIT');
      // Nor pass its GET to the origin with our internal headers (vcl_recv strips them).
      const internals: Array<Record<string, string>> = [{ 'x-edgepurge-fenced': '1' }, { 'x-edgepurge-revalidate': '1' }, { 'x-edgepurge-fenced': '1', 'x-edgepurge-revalidate': '1' }];
      for (const internal of internals) {
        const g = await h.get('only.test', '/x', internal);
        assert.deepEqual([g.xcache, g.originHits], ['HIT', 0], `a GET with ${JSON.stringify(internal)} is a hit like any other`);
      }
    });

    it('composes with the operator VCL: their subroutines still run, our bookkeeping headers stay inside', async () => {
      h.origin.respond('ops.test', '/tagged', { 'cache-tag': 'a, b', 'surrogate-key': 'c' });
      const first = await h.request('GET', '/tagged', { host: 'Ops.Test' });
      assert.equal(first.headers['x-operator'], 'was here');
      for (const name of ['x-edgepurge-key', 'xkey']) assert.equal(first.headers[name], undefined, `${name} is not delivered`);
      assert.equal(first.headers['cache-tag'], 'a, b');
      // Their `return (pass)` for /private/ still applies.
      await h.get('ops.test', '/private/1');
      assert.equal((await h.get('ops.test', '/private/1')).originHits, 1);
      // The object is stored under the canonical host: a host ban by the canonical name reaches it.
      const report = await h.driver.apply(cmd({ type: 'purge_host', method: 'delete', hosts: ['ops.test'], target: 'ops.test' }));
      assert.equal(report.executedAs, 'delete');
      assert.equal((await h.get('ops.test', '/tagged')).originHits, 1);
    });

    it('soft types report invalidate with vmod_purge / xkey counts; bans report delete with a note', async () => {
      await h.get('kinds.test', '/a');
      const url = await h.driver.apply(cmd({ type: 'purge_url', method: 'invalidate', hosts: ['kinds.test'], target: 'http://kinds.test/a' }));
      assert.deepEqual(url, { executedAs: 'invalidate', matched: 1 });
      const prefix = await h.driver.apply(cmd({ type: 'purge_prefix', method: 'invalidate', hosts: ['kinds.test'], target: 'http://kinds.test/a' }));
      assert.equal(prefix.executedAs, 'delete');
      assert.match(prefix.note ?? '', /bans are hard/);
      assert.equal(prefix.matched, undefined, 'a ban matches lazily: no count');
      const spaced = await h.driver.apply(cmd({ type: 'purge_cache_tag', method: 'delete', hosts: ['kinds.test'], target: 'two words' }));
      assert.equal(spaced.matched, 0);
      assert.ok(spaced.note);
    });

    it('upgrade from VCL 2: objects stored with X-EdgePurge-Host / -Url are banned when the driver starts (no prefix purge could reach them)', async () => {
      // An object as VCL 2 stored it (the header came from the origin here; VCL 3 never sets it), and one of VCL 3.
      h.origin.respond('v2.test', '/old', { 'x-edgepurge-host': 'v2.test' });
      for (const path of ['/old', '/new']) {
        await h.get('v2.test', path);
        assert.equal((await h.get('v2.test', path)).xcache, 'HIT');
      }
      await h.driver.start();
      assert.equal((await h.get('v2.test', '/old')).originHits, 1, 'banned: a lookup tests it against the ban at once');
      assert.deepEqual(await h.get('v2.test', '/new').then((g) => [g.xcache, g.originHits]), ['HIT', 0], 'a VCL 3 object stays cached');
      // And a prefix purge reaches objects of VCL 3 through their one header.
      await h.driver.apply(cmd({ type: 'purge_prefix', method: 'delete', hosts: ['v2.test'], target: 'http://v2.test/ne' }));
      assert.equal((await h.get('v2.test', '/new')).originHits, 1);
    });

    it('bans are lurker-friendly (obj.* only) and the ban lurker completes them', async () => {
      await h.get('lurk.test', '/dir/1');
      await h.driver.apply(cmd({ type: 'purge_prefix', method: 'delete', hosts: ['lurk.test'], target: 'http://lurk.test/dir/1.(x)' }));
      await h.driver.apply(cmd({ type: 'purge_all', method: 'delete', hosts: ['lurk.test', 'other.test'], target: '' }));
      const admin = new VarnishAdmin({ host: '127.0.0.1', port: Number(h.varnishd.admin.split(':')[1]), secret: readFileSync(h.varnishd.secretFile) });
      try {
        const list = (await admin.command('ban.list')).body;
        assert.match(list, /obj\.http\.X-EdgePurge-Key ~ \^lurk\\\.test\\x20\/dir\/1\\\.\\\(x\\\)/);
        assert.match(list, /obj\.http\.X-EdgePurge-Key ~ \^\(lurk\\\.test\|other\\\.test\)\\x20/);
        assert.doesNotMatch(list, /\breq\./, 'no req.* ban (the lurker cannot test those)');
        // Completed bans show "C" (or are gone): the lurker tested every object against them.
        const deadline = Date.now() + 15_000;
        let pending = 0;
        do {
          await sleep(200);
          pending = (await admin.command('ban.list')).body.split('\n').filter((l) => /X-EdgePurge/.test(l) && !/\sC\s/.test(l)).length;
        } while (pending > 0 && Date.now() < deadline);
        assert.equal(pending, 0, 'the lurker completed the bans');
      } finally {
        await admin.close();
      }
    });

    it('a URL delete leaves nothing to revalidate, even for a request right behind it (purge.hard() before Varnish 7.5 did)', async () => {
      // purge.hard() only expired the objects and left them on the hash for the expiry thread: a miss
      // before that thread ran sent the origin the deleted copy's ETag (and a 304 would have served it).
      // Each PURGE here is followed on the same connection, in the same write, by a GET of its URL: Varnish
      // runs the GET right after the purge, before the expiry thread gets a turn.
      const token = `test-${Date.now()}`;
      const admin = new VarnishAdmin({ host: '127.0.0.1', port: Number(h.varnishd.admin.split(':')[1]), secret: readFileSync(h.varnishd.secretFile) });
      const vcl = `vcl 4.1;\nimport var;\nbackend none none;\nsub vcl_init {\n    var.global_set("edgepurge.token", "${token}");\n}\n`;
      try {
        assert.equal((await admin.command(`vcl.inline hard_purge_${Date.now()} ${cliQuote(vcl)}`, 60_000)).status, 200);
        const paths = Array.from({ length: 300 }, (_, i) => `/hard/${i}`);
        for (const p of paths) {
          await h.get('hard.test', p);
          h.origin.bump('hard.test', p);
        }
        const since = h.origin.requests.length;
        const socket = connect(h.varnishd.port, '127.0.0.1');
        socket.resume();
        socket.on('error', () => {});
        socket.write(paths.map((p) => `PURGE ${p} HTTP/1.1\r\nhost: hard.test\r\nx-edgepurge-token: ${token}\r\nx-edgepurge-do: url\r\n\r\nGET ${p} HTTP/1.1\r\nhost: hard.test\r\n\r\n`).join(''));
        const deadline = Date.now() + 20_000;
        const seen = () => h.origin.requests.slice(since).filter((r) => r.host === 'hard.test');
        while (seen().length < paths.length && Date.now() < deadline) await sleep(20);
        socket.destroy();
        assert.equal(seen().length, paths.length, 'every GET after its purge reached the origin');
        const conditional = seen().filter((r) => r.conditional).map((r) => r.path);
        assert.deepEqual(conditional, [], 'no GET right after a delete revalidated the deleted copy');
      } finally {
        await admin.close();
        await h.driver.start(); // the driver's token back
      }
    });

    it('a second driver taking the Varnish over makes the first one fail non-retryable, saying why', async () => {
      const second = new VarnishDriver({ url: h.varnishd.url, admin: h.varnishd.admin, adminSecretFile: h.varnishd.secretFile });
      try {
        await second.start();
        await assert.rejects(
          h.driver.apply(cmd({ type: 'purge_url', method: 'delete', hosts: ['x.test'], target: 'http://x.test/' })),
          isDriverError(false, /another EdgePurge token.*one agent per Varnish/),
        );
      } finally {
        await second.close();
        await h.driver.start(); // takes it back
      }
    });

    it('start() says what is wrong: a wrong or missing admin secret, a VCL without edgepurge.vcl', async (t) => {
      const wrong = join(h.varnishd.dir, 'wrong-secret');
      writeFileSync(wrong, 'not the secret\n');
      for (const [file, message] of [
        [wrong, /rejected the secret.*-S/],
        [join(h.varnishd.dir, 'missing'), /cannot read the Varnish admin secret/],
      ] as const) {
        const d = new VarnishDriver({ url: h.varnishd.url, admin: h.varnishd.admin, adminSecretFile: file });
        t.after(() => d.close());
        await assert.rejects(d.start(), isDriverError(false, message));
      }
      const admin = new VarnishAdmin({ host: '127.0.0.1', port: Number(h.varnishd.admin.split(':')[1]), secret: readFileSync(h.varnishd.secretFile) });
      t.after(() => admin.close());
      const vcls = (await admin.command('vcl.list')).body;
      assert.doesNotMatch(vcls, /edgepurge_token_/, 'the throw-away token VCLs are discarded');
      const active = /^active\s+\S+\s+\S+\s+\S+\s+(\S+)/m.exec(vcls)?.[1];
      assert.ok(active);
      const plain = `vcl 4.1;\nbackend origin { .host = "127.0.0.1"; .port = "${h.origin.port}"; }\n`;
      assert.equal((await admin.command(`vcl.inline plain_${Date.now()} "${plain.replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`, 60_000)).status, 200);
      const plainName = /^available\s+\S+\s+\S+\s+\S+\s+(plain_\d+)/m.exec((await admin.command('vcl.list')).body)?.[1];
      assert.equal((await admin.command(`vcl.use ${plainName}`)).status, 200);
      try {
        const d = new VarnishDriver({ url: h.varnishd.url, admin: h.varnishd.admin, adminSecretFile: h.varnishd.secretFile });
        t.after(() => d.close());
        await assert.rejects(d.start(), isDriverError(false, /edgepurge\.vcl is not active.*include "edgepurge\.vcl"/));
      } finally {
        assert.equal((await admin.command(`vcl.use ${active}`)).status, 200);
      }
    });
  });

  describe('Varnish fences itself (DESIGN invariant 4)', () => {
    let h: VarnishHarness;
    before(async () => {
      h = await startVarnishHarness({ lease: false });
    });
    after(async () => {
      await h?.close();
    });

    it('a fresh Varnish with no lease serves no hits (fail closed)', async () => {
      for (let i = 0; i < 3; i++) {
        const r = await h.get('fresh.test', '/x');
        assert.equal(r.originHits, 1, `request ${i + 1} went to the origin`);
        assert.equal(r.xcache, 'MISS');
      }
    });

    it('after a restart Varnish has lost lease and token: no hits until the agent renews, the driver re-pushes its token by itself', async () => {
      await h.driver.renewLease(Date.now() + 60_000);
      await h.get('restart.test', '/x');
      assert.equal((await h.get('restart.test', '/x')).originHits, 0);
      await h.varnishd.stop();
      await h.varnishd.start();
      await h.get('restart.test', '/x');
      assert.equal((await h.get('restart.test', '/x')).originHits, 1, 'no lease after the restart: a miss');
      await h.driver.renewLease(Date.now() + 60_000); // "token not set" → pushed again → lease set
      assert.equal((await h.get('restart.test', '/x')).originHits, 0, 'hits again once the lease is renewed');
    });

    it('applyBatch after a restart pushes the token again and sends the pipelined batch once more', async () => {
      await h.varnishd.stop();
      await h.varnishd.start();
      const reports = await h.driver.applyBatch(
        ['/b/1', '/b/2', '/b/3'].map((p) => cmd({ type: 'purge_url', method: 'invalidate', hosts: ['batch.test'], target: `http://batch.test${p}` })),
      );
      assert.deepEqual(reports, Array(3).fill({ executedAs: 'invalidate', matched: 0 }));
    });

    it('once the lease lapses — the driver gone — no hits, and no copy the agent could not purge is served', async () => {
      await h.driver.renewLease(Date.now() + 60_000); // the token is in place: the next renewal is quick
      const until = Date.now() + 3000;
      await h.driver.renewLease(until);
      await h.get('lapse.test', '/x');
      assert.equal((await h.get('lapse.test', '/x')).originHits, 0, 'a hit while the lease holds');
      await h.driver.close();
      // A purge the dead agent never applied: the origin changed.
      h.origin.bump('lapse.test', '/x');
      await sleep(until - Date.now() + 300);
      for (let i = 0; i < 3; i++) {
        const r = await h.get('lapse.test', '/x');
        assert.equal(r.originHits, 1, `request ${i + 1} after the lapse went to the origin`);
        assert.equal(r.body, 'lapse.test/x v2');
      }
    });
  });
}
