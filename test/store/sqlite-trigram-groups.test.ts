// Property test of the grouped trigram index (schema v9, issue 11): whatever the jobs, batches, refusals
// and prunes, a fuzzy target finds exactly the stored tasks whose target holds it (ASCII case folded),
// and every task stays in exactly one group.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
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
  range: fc.option(fc.tuple(fc.nat(30), fc.nat(30)).map(([a, b]) => [BASE + Math.min(a, b) * STEP, BASE + Math.max(a, b) * STEP] as const)),
  // Mostly pieces of the stored targets (which target, where, how long), some random text.
  picks: fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 3, max: 12 })), { minLength: 1, maxLength: 6 }),
  random: fc.array(fc.stringMatching(/^[abAB\-./:hi]{3,9}$/), { maxLength: 2 }),
});

describe('SQLite trigram index by groups of consecutive tasks (property)', () => {
  it('a fuzzy target finds exactly the tasks holding it, through batches, refused jobs and prunes', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ batches, pruneBefore, range, picks, random }) => {
        const store = new SqliteTaskStore({ path: ':memory:' });
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
});
