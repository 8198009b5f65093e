// Property test of the grouped trigram index (schema v9, issue 11) and its backlog (v10): whatever the
// jobs, batches, refusals, prunes and backlog bound, a fuzzy target finds exactly the stored tasks whose
// target holds it (ASCII case folded), each once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { groupDocument } from '../../src/store/sqlite/sqlite-rows.ts';
import { SqliteTaskStore } from '../../src/store/sqlite/sqlite-task-store.ts';
import type { NewJob, QuotaCharge } from '../../src/store/task-store.ts';

const BASE = Date.UTC(2026, 0, 1);
// Three jobs an hour: groups straddle hours, whose task-id ranges bound a time-ranged search.
const STEP = 20 * 60_000;

// Few letters: needles and targets share substrings often, and trigrams repeat across a group's tasks.
const segment = fc.stringMatching(/^[abAB\-.]{1,6}$/);
const target = fc.tuple(fc.constantFrom('h.example', 'i.example'), fc.array(segment, { minLength: 1, maxLength: 3 })).map(([host, parts]) => `https://${host}/${parts.join('/')}`);
const job = fc.record({ targets: fc.array(target, { minLength: 1, maxLength: 20 }), duplicate: fc.boolean() });
const scenario = fc.record({
  batches: fc.array(fc.array(job, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 6 }),
  pruneBefore: fc.nat(30),
  // How far the trigram index may lag (0: every commit indexed): searches span both sides of the mark.
  backlog: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 })),
  range: fc.option(fc.tuple(fc.nat(30), fc.nat(30)).map(([a, b]) => [BASE + Math.min(a, b) * STEP, BASE + Math.max(a, b) * STEP] as const)),
  // Mostly pieces of the stored targets (which target, where, how long), some random text.
  picks: fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 3, max: 12 })), { minLength: 1, maxLength: 6 }),
  random: fc.array(fc.stringMatching(/^[abAB\-./:hi]{3,9}$/), { maxLength: 2 }),
});

describe('SQLite trigram index by groups of consecutive tasks (property)', () => {
  it('a fuzzy target finds exactly the tasks holding it, through batches, refused jobs, prunes and a lagging index', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ batches, pruneBefore, backlog, range, picks, random }) => {
        const store = new SqliteTaskStore({ path: ':memory:', trigramBacklog: backlog });
        await store.start();
        try {
          const stored: Array<{ target: string; createdAt: number }> = [];
          let n = 0;
          for (const batch of batches) {
            // One turn of the event loop: the batch's jobs share a transaction (group commit).
            await Promise.all(
              batch.map((j) => {
                const i = n++;
                const createdAt = BASE + i * STEP;
                const newJob: NewJob = {
                  // A duplicate id is refused before it writes anything.
                  jobId: j.duplicate && i > 0 ? 'j0' : `j${i}`, appId: 1, zoneId: 'z', type: 'purge_url', method: 'invalidate', createdAt,
                  secretId: 's', clientIp: '::1', source: 'teo',
                  tasks: j.targets.map((t) => ({ target: t, hosts: [new URL(t).host], status: 'success' as const, fanOut: false })),
                };
                const charge: QuotaCharge = { quotaType: 'purge_url', day: '2026-01-01', amount: j.targets.length, daily: 1e9 };
                return store.createJob(newJob, charge).then(
                  () => stored.push(...j.targets.map((t) => ({ target: t, createdAt }))),
                  () => undefined,
                );
              }),
            );
          }
          const cut = BASE + pruneBefore * STEP;
          await store.prune(cut);
          const kept = stored.filter((s) => s.createdAt >= cut);
          const all = batches.flat().flatMap((j) => j.targets);
          const needles = [...random, ...picks.map(([which, at, len]) => {
            const t = all[which % all.length]!;
            const from = at % Math.max(1, t.length - 2);
            return t.slice(from, from + len);
          })];
          for (const needle of needles) {
            const inRange = (at: number) => range === null || (at >= range[0] && at <= range[1]);
            const want = kept.filter((s) => inRange(s.createdAt) && s.target.toLowerCase().includes(needle.toLowerCase())).map((s) => s.target).sort();
            const got = await store.listTasks({ appId: 1, offset: 0, limit: 10_000, targetContains: needle, ...(range && { from: range[0], to: range[1] }) });
            assert.deepEqual(got.tasks.map((t) => t.target).sort(), want, needle);
            assert.equal(got.total, want.length, needle);
          }
        } finally {
          await store.close();
        }
      }),
      { numRuns: 60 },
    );
  });

  // The document drops each target's prefix shared with the one before it: it must still hold every
  // trigram (of code points, as the tokenizer cuts them) of every target, surrogate pairs included.
  it("a group's document holds every trigram of each of its targets, and is shorter when they share a prefix", () => {
    const codePoints = fc.constantFrom('a', 'b', '/', '\u00e9', '\u{1F600}', '\u{1F601}', '\u{20000}');
    const text = fc.array(codePoints, { maxLength: 12 }).map((cs) => cs.join(''));
    const targets = fc.tuple(text, fc.array(fc.tuple(fc.nat(12), text), { maxLength: 8 })).map(([first, rest]) => {
      // Each next target keeps some of the one before it, as a deploy's URLs keep host and path.
      const out = [first];
      for (const [keep, tail] of rest) out.push([...out.at(-1)!].slice(0, keep).join('') + tail);
      return out;
    });
    fc.assert(
      fc.property(targets, (ts) => {
        const doc = groupDocument(ts);
        for (const t of ts) {
          const cps = [...t];
          for (let i = 0; i + 3 <= cps.length; i++) assert.ok(doc.includes(cps.slice(i, i + 3).join('')), `${JSON.stringify(cps.slice(i, i + 3).join(''))} of ${JSON.stringify(t)}`);
          assert.ok(!doc.includes('\ufffd') && doc.isWellFormed(), 'no surrogate pair is cut');
        }
      }),
      { numRuns: 500 },
    );
    const deploy = Array.from({ length: 8 }, (_, i) => `https://static.example.com/assets/2026/12/app-${i}.js`);
    assert.equal(groupDocument(deploy), [deploy[0], ...deploy.slice(1).map((u) => u.slice(u.length - 6))].join('\n'));
  });
});
