// The invalidation index as pure logic: prefix semantics, seq stamps, method precedence, retirement, cap.
import assert from 'node:assert/strict';
import test from 'node:test';
import { InvalidationIndex } from '../../src/edge/invalidation-index.ts';

const H = 'a.test';

test('prefix ending in / matches everything under the directory and nothing beside it', () => {
  const ix = new InvalidationIndex();
  ix.addPrefix(H, '/dir/', 5, 'delete');
  assert.equal(ix.verdict(H, '/dir/', [], 0), 'delete');
  assert.equal(ix.verdict(H, '/dir/a', [], 0), 'delete');
  assert.equal(ix.verdict(H, '/dir/sub/deep.js?x=1', [], 0), 'delete');
  assert.equal(ix.verdict(H, '/dir', [], 0), 'none');
  assert.equal(ix.verdict(H, '/dirx/a', [], 0), 'none');
  assert.equal(ix.verdict(H, '/other/a', [], 0), 'none');
  assert.equal(ix.verdict('b.test', '/dir/a', [], 0), 'none', 'other hosts are untouched');
});

test('prefix without a trailing slash is a plain string prefix (path and query)', () => {
  const ix = new InvalidationIndex();
  ix.addPrefix(H, '/img/a', 3, 'invalidate');
  for (const p of ['/img/a', '/img/abc', '/img/a/b', '/img/a?x=1']) assert.equal(ix.verdict(H, p, [], 0), 'invalidate', p);
  for (const p of ['/img/', '/img/b', '/im']) assert.equal(ix.verdict(H, p, [], 0), 'none', p);
  ix.addPrefix(H, '/q?lang=', 4, 'delete');
  assert.equal(ix.verdict(H, '/q?lang=en', [], 0), 'delete');
  assert.equal(ix.verdict(H, '/q', [], 0), 'none');
});

test('a rule affects only objects stamped before its seq', () => {
  const ix = new InvalidationIndex();
  ix.addPrefix(H, '/', 10, 'delete');
  assert.equal(ix.verdict(H, '/x', [], 9), 'delete');
  assert.equal(ix.verdict(H, '/x', [], 10), 'none', 'stored after the purge was applied');
  assert.equal(ix.verdict(H, '/x', [], 11), 'none');
});

test('delete wins over invalidate; the newest seq per method counts', () => {
  const ix = new InvalidationIndex();
  ix.addPrefix(H, '/a/', 2, 'delete');
  ix.addPrefix(H, '/a/b/', 7, 'invalidate');
  assert.equal(ix.verdict(H, '/a/b/c', [], 1), 'delete');
  assert.equal(ix.verdict(H, '/a/b/c', [], 3), 'invalidate', 'the delete is older than the object');
  assert.equal(ix.verdict(H, '/a/x', [], 3), 'none');
});

test('overlapping prefixes split radix edges correctly', () => {
  const ix = new InvalidationIndex();
  ix.addPrefix(H, '/static/app.js', 1, 'invalidate');
  ix.addPrefix(H, '/static/app.css', 2, 'invalidate');
  ix.addPrefix(H, '/static/a', 3, 'delete');
  ix.addPrefix(H, '/stat', 4, 'invalidate');
  assert.equal(ix.verdict(H, '/static/app.js', [], 3), 'invalidate');
  assert.equal(ix.verdict(H, '/static/app.js', [], 2), 'delete');
  assert.equal(ix.verdict(H, '/static/b', [], 3), 'invalidate', 'only /stat matches');
  assert.equal(ix.verdict(H, '/static/b', [], 4), 'none');
  assert.equal(ix.verdict(H, '/sta', [], 0), 'none');
});

test('host-wide rules (purge_host / purge_all) and tag rules', () => {
  const ix = new InvalidationIndex();
  ix.addHost(H, 5, 'invalidate');
  ix.addTag('b.test', 'product-1', 6, 'delete');
  assert.equal(ix.verdict(H, '/anything', [], 4), 'invalidate');
  assert.equal(ix.verdict('b.test', '/x', ['product-1', 'other'], 4), 'delete');
  assert.equal(ix.verdict('b.test', '/x', ['product-2'], 4), 'none');
  assert.equal(ix.verdict('c.test', '/x', ['product-1'], 4), 'none', 'tags are per host');
});

test('retireThrough drops rules no stamp can see, prunes the tree, and keeps newer ones', () => {
  const ix = new InvalidationIndex();
  for (let i = 1; i <= 100; i++) ix.addPrefix(H, `/d${i}/`, i, 'delete');
  ix.addTag(H, 't', 101, 'invalidate');
  ix.addHost('b.test', 102, 'delete');
  assert.equal(ix.size, 102);
  assert.equal(ix.retireThrough(50), 50);
  assert.equal(ix.size, 52);
  assert.equal(ix.verdict(H, '/d10/x', [], 0), 'none', 'retired: only objects stamped >= 50 exist');
  assert.equal(ix.verdict(H, '/d60/x', [], 55), 'delete');
  ix.retireThrough(200);
  assert.equal(ix.size, 0);
  assert.equal(ix.verdict(H, '/d60/x', [], 0), 'none');
  assert.equal(ix.verdict('b.test', '/', [], 0), 'none');
  // Re-adding after pruning works (nodes were unlinked, not left dangling).
  ix.addPrefix(H, '/d60/', 300, 'invalidate');
  assert.equal(ix.verdict(H, '/d60/x', [], 299), 'invalidate');
  assert.equal(ix.verdict(H, '/d6/x', [], 299), 'none');
});

test('a rule re-added for the same prefix outlives the retirement of the older one', () => {
  const ix = new InvalidationIndex();
  ix.addPrefix(H, '/a/', 1, 'delete');
  ix.addPrefix(H, '/a/', 9, 'delete');
  ix.retireThrough(5);
  assert.equal(ix.size, 1);
  assert.equal(ix.verdict(H, '/a/x', [], 6), 'delete');
});

test('hard cap coalesces the biggest host into a host-wide rule: conservative, never less', () => {
  const ix = new InvalidationIndex({ maxRules: 10 });
  ix.addPrefix('b.test', '/keep/', 1, 'invalidate');
  for (let i = 2; i <= 11; i++) ix.addPrefix(H, `/p${i}/`, i, i === 5 ? 'delete' : 'invalidate');
  assert.equal(ix.coalesced, 1);
  assert.ok(ix.size <= 10, `size ${ix.size}`);
  // Everything matched before is still matched, at least as strongly.
  assert.equal(ix.verdict(H, '/p5/x', [], 0), 'delete');
  assert.notEqual(ix.verdict(H, '/p11/x', [], 10), 'none');
  // The rest of the host is now affected too (the documented price of the fallback)…
  assert.notEqual(ix.verdict(H, '/unrelated', [], 0), 'none');
  // …but not objects stored after the newest coalesced rule, nor other hosts' unrelated paths.
  assert.equal(ix.verdict(H, '/unrelated', [], 11), 'none');
  assert.equal(ix.verdict('b.test', '/keep/x', [], 0), 'invalidate');
  assert.equal(ix.verdict('b.test', '/other', [], 0), 'none');
});

test('hard cap with one rule per host falls back to one global rule', () => {
  const ix = new InvalidationIndex({ maxRules: 3 });
  for (let i = 1; i <= 4; i++) ix.addTag(`h${i}.test`, 'x', i, 'invalidate');
  assert.equal(ix.coalesced, 1);
  assert.equal(ix.verdict('zzz.test', '/', [], 3), 'invalidate');
  assert.equal(ix.verdict('zzz.test', '/', [], 4), 'none');
  ix.retireThrough(4);
  assert.equal(ix.verdict('zzz.test', '/', [], 0), 'none', 'the global rule retires too');
});

test('agrees with a brute-force rule list on random prefixes, tags, stamps and retirements', () => {
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const alphabet = ['/', 'a', 'b', 'ab', '/a', 'a/', '?', '=', 'x'];
  const word = (max: number): string => {
    let s = '/';
    const n = rnd(max);
    for (let i = 0; i < n; i++) s += alphabet[rnd(alphabet.length)];
    return s;
  };
  interface Rule {
    host: string;
    kind: 'prefix' | 'host' | 'tag';
    what: string;
    seq: number;
    method: 'delete' | 'invalidate';
  }
  const hosts = ['h1', 'h2'];
  const tags = ['t1', 't2', 't3'];
  const ix = new InvalidationIndex();
  let rules: Rule[] = [];
  let floor = 0;
  let seq = 0;
  for (let round = 0; round < 3000; round++) {
    const op = rnd(20);
    if (op < 14) {
      seq++;
      const host = hosts[rnd(2)] ?? 'h1';
      const method = rnd(2) === 0 ? 'delete' : 'invalidate';
      const k = rnd(10);
      if (k < 8) {
        const what = word(6);
        ix.addPrefix(host, what, seq, method);
        rules.push({ host, kind: 'prefix', what, seq, method });
      } else if (k < 9) {
        ix.addHost(host, seq, method);
        rules.push({ host, kind: 'host', what: '', seq, method });
      } else {
        const what = tags[rnd(3)] ?? 't1';
        ix.addTag(host, what, seq, method);
        rules.push({ host, kind: 'tag', what, seq, method });
      }
    } else if (op < 15) {
      floor = Math.max(floor, seq - rnd(30));
      ix.retireThrough(floor);
      rules = rules.filter((r) => r.seq > floor);
      assert.equal(ix.size, rules.length);
    } else {
      for (let q = 0; q < 20; q++) {
        const host = hosts[rnd(2)] ?? 'h1';
        const path = word(8);
        const objTags = tags.filter(() => rnd(2) === 0);
        const stamp = floor + rnd(seq - floor + 1);
        let del = false;
        let inv = false;
        for (const r of rules) {
          if (r.seq <= stamp || r.host !== host) continue;
          const hit = r.kind === 'host' || (r.kind === 'prefix' ? path.startsWith(r.what) : objTags.includes(r.what));
          if (!hit) continue;
          if (r.method === 'delete') del = true;
          else inv = true;
        }
        const want = del ? 'delete' : inv ? 'invalidate' : 'none';
        assert.equal(ix.verdict(host, path, objTags, stamp), want, `${host} ${path} [${objTags.join()}] @${stamp}`);
      }
    }
  }
});
