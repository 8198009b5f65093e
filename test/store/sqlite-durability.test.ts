// DESIGN invariant 1 for SQLite: kill -9 at any moment loses no acknowledged job and leaves no half-written one.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SqliteTaskStore } from '../../src/store/sqlite/sqlite-task-store.ts';

const WRITER = fileURLToPath(new URL('./fixtures/durability-writer.ts', import.meta.url));

/** Runs the writer until it has acknowledged `count` jobs, then SIGKILLs it. Returns what it printed. */
function writeThenKill(path: string, tag: string, count: number): Promise<Array<{ jobId: string; n: number }>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, path, tag], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: Array<{ jobId: string; n: number }> = [];
    let buf = '';
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const [jobId, n] = buf.slice(0, nl).split(' ');
        buf = buf.slice(nl + 1);
        if (jobId !== undefined && n !== undefined) acked.push({ jobId, n: Number(n) });
      }
      if (!killed && acked.length >= count) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`writer exited early (code ${code}): ${stderr}`));
    });
  });
}

it('regression: SIGKILL mid-write loses no acknowledged job and leaves no partial job (DESIGN invariant 1)', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-durable-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'tasks.db');
  const acked: Array<{ jobId: string; n: number }> = [];
  for (const [tag, count] of [['a', 250], ['b', 300], ['c', 200]] as const) {
    acked.push(...(await writeThenKill(path, tag, count)));

    const store = new SqliteTaskStore({ path });
    await store.start();
    try {
      for (const { jobId, n } of acked) {
        const job = await store.getJob(7, jobId);
        assert.ok(job, `acknowledged job ${jobId} survived`);
        assert.equal(job.taskCount, n);
        assert.equal((await store.jobTasks(7, jobId)).length, n, `all tasks of ${jobId}`);
      }
      // The log is gap-free and every entry belongs to a whole job.
      const last = await store.lastSeq();
      const log = await store.readLog(0, last + 10);
      assert.deepEqual(log.map((e) => e.seq), Array.from({ length: last }, (_, i) => i + 1));
    } finally {
      await store.close();
    }

    const db = new DatabaseSync(path, { readOnly: true });
    try {
      const partial = db
        .prepare(
          `SELECT j.job_id FROM jobs j LEFT JOIN tasks t ON t.job_id = j.job_id
           GROUP BY j.job_id HAVING count(t.id) <> max(j.task_count)`,
        )
        .all();
      assert.deepEqual(partial, [], 'no job without all its tasks');
      const orphans = db.prepare('SELECT count(*) AS n FROM tasks WHERE job_id NOT IN (SELECT job_id FROM jobs)').get();
      assert.equal(orphans?.n, 0, 'no task without its job');
      // Host rows lag by a backlog (schema v11): one per task up to the mark, none above it.
      const hosts = db
        .prepare(
          `SELECT (SELECT count(*) FROM task_hosts) - (SELECT count(*) FROM tasks WHERE id <= m.value) AS d,
                  (SELECT count(*) FROM task_hosts WHERE task_id > m.value) AS above FROM store_meta m WHERE m.key = 'hosts_through'`,
        )
        .get();
      assert.deepEqual({ ...hosts }, { d: 0, above: 0 }, 'one host row per task up to hosts_through, none above');
      const quota = db
        .prepare("SELECT (SELECT used FROM quota_usage WHERE app_id = 7) - (SELECT count(*) FROM tasks) AS d")
        .get();
      assert.equal(quota?.d, 0, 'quota charged exactly for the jobs written');
    } finally {
      db.close();
    }
  }
});
