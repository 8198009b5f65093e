// The fuzzy index's trigram choice (src/store/postgres/target-sample.ts): a few rare trigrams of the needle
// instead of all of them, and a pattern every target holding the needle matches (the index only narrows).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { foldTarget } from '../../src/store/postgres/postgres-task-reader.ts';
import { TargetSample } from '../../src/store/postgres/target-sample.ts';

const WORDS = ['banner', 'logo', 'hero', 'thumb', 'poster', 'winter', 'summer', 'list', 'index', 'main', 'vendor', 'chunk'];
const EXTS = ['jpg', 'png', 'js', 'css'];

/** A deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function targets(n: number, seed = 1): string[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  return Array.from({ length: n }, () =>
    foldTarget(`https://img.example.com/static/2026/01/${pick(WORDS)}-${pick(WORDS)}-${1_000_000 + Math.floor(r() * 9_000_000)}.${pick(EXTS)}`),
  );
}

/** Whether `s` matches a LIKE pattern of literal pieces between `%` wildcards (backslash escapes; no `_`). */
function likeMatches(pattern: string, s: string): boolean {
  const parts: string[] = [''];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') parts[parts.length - 1] += pattern[++i]!;
    else if (c === '%') parts.push('');
    else if (c === '_') throw new Error(`unescaped _ in ${pattern}`);
    else parts[parts.length - 1] += c;
  }
  assert.ok(parts[0] === '' && parts.at(-1) === '', `${pattern} starts and ends with %`);
  let at = 0;
  for (const part of parts) {
    const i = s.indexOf(part, at);
    if (i < 0) return false;
    at = i + part.length;
  }
  return true;
}

/** The pattern's pieces between wildcards. */
const pieces = (pattern: string): string[] => pattern.split('%').filter((x) => x !== '');

describe('fuzzy index trigram choice (target sample)', () => {
  it('asks the index for a few trigrams of a file-name needle, not every one (issue 9: 33 ms a day for 9 common ones)', async () => {
    const sample = await TargetSample.build(targets(10_000));
    const needle = foldTarget('banner-logo');
    const p = sample.indexPattern(needle);
    const got = pieces(p);
    const trigrams = got.reduce((n, x) => n + x.length - 2, 0);
    assert.ok(got.length >= 1 && trigrams < needle.length - 2, `${p}: fewer trigrams than the needle's ${needle.length - 2}`);
    let at = 0;
    for (const piece of got) {
      assert.ok(piece.length >= 3, p);
      const i = needle.indexOf(piece, at);
      assert.ok(i >= 0, `${p}: pieces of the needle, disjoint and in its order`);
      at = i + piece.length;
    }
    // A digit run (rare) is chosen over the words' trigrams (each in a sixth of the rows).
    const rare = pieces(sample.indexPattern(foldTarget('logo-4821')));
    assert.ok(rare.some((x) => /\d/.test(x)), rare.join(','));
  });

  it('never loses a match: every sampled target holding the needle matches its pattern', async () => {
    const all = targets(3_000, 7);
    const sample = await TargetSample.build(all);
    const r = rng(3);
    for (let k = 0; k < 300; k++) {
      const t = all[Math.floor(r() * all.length)]!;
      const len = 3 + Math.floor(r() * 18);
      const from = Math.floor(r() * (t.length - len + 1));
      const needle = t.slice(from, from + len);
      const p = sample.indexPattern(needle);
      for (const x of all) if (x.includes(needle)) assert.ok(likeMatches(p, x), `${needle} → ${p} misses ${x}`);
    }
  });

  it("tells the needle's share of the sampled targets (the first window of a fuzzy query is sized from it)", async () => {
    const all = targets(4_000, 11);
    const sample = await TargetSample.build(all);
    for (const needle of ['bannerqlogo', 'logoq', 'qjpg', 'erqlogoq', '4821', 'nowhereq']) {
      const holding = all.filter((x) => x.includes(needle)).length;
      assert.equal(sample.choose(needle).share, holding / all.length, needle);
    }
    assert.equal(sample.choose('a!b').share, null, 'no trigram to find them by');
    assert.equal((await TargetSample.build(targets(500))).choose('logoq').share, null, 'too small a sample');
  });

  it('falls back to the whole needle: a young store (small sample), no ASCII trigram; escapes LIKE wildcards', async () => {
    const young = await TargetSample.build(targets(500));
    assert.equal(young.indexPattern('bannerqlogo'), '%bannerqlogo%');
    const sample = await TargetSample.build(targets(2_000));
    assert.equal(sample.indexPattern('éàü'), '%éàü%');
    assert.equal(sample.indexPattern('a\\b'), '%a\\\\b%');
    assert.equal(likeMatches(sample.indexPattern('x\\yzw'), 'ax\\yzwb'), true);
  });
});
