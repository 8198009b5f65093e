// Day partitions of `tasks` and `task_hosts`: created ahead of the rows that need them, dropped whole by
// retention (dropping a day costs the same whatever it holds).
import type { Pool, PoolClient } from 'pg';

export const DAY_MS = 86_400_000;

/** The partitioned tables, each with one partition per UTC day of created_at. */
export const PARTITIONED_TABLES = ['tasks', 'task_hosts'] as const;

/** UTC day number (days since the epoch) of a createdAt in ms. */
export const dayOf = (ms: number): number => Math.floor(ms / DAY_MS);

/** `tasks_d20260101`: the partition of `table` for `day`. Names sort by day. */
export function partitionName(table: string, day: number): string {
  return `${table}_d${new Date(day * DAY_MS).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

/** The day of a partition name made by partitionName, or null for any other table. */
export function partitionDay(table: string, name: string): number | null {
  const m = new RegExp(`^${table}_d(\\d{4})(\\d{2})(\\d{2})$`).exec(name);
  if (!m) return null;
  return dayOf(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
}

/**
 * Creates the partitions of the given days that do not exist yet. Replicas may race for the same day:
 * they queue on a transaction advisory lock and the later ones find it there (IF NOT EXISTS). The
 * caller caches the days it knows exist, so this runs about once a day per process.
 */
export async function ensurePartitions(pool: Pool, schema: string, days: Iterable<number>): Promise<void> {
  const wanted = [...new Set(days)].sort((a, b) => a - b);
  if (wanted.length === 0) return;
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`edgepurge.partitions.${schema}`]);
      const existing = await partitionDays(client);
      for (const day of wanted) {
        if (existing.has(day)) continue;
        for (const table of PARTITIONED_TABLES) {
          await client.query(
            `CREATE TABLE IF NOT EXISTS ${partitionName(table, day)} PARTITION OF ${table} FOR VALUES FROM (${day * DAY_MS}) TO (${(day + 1) * DAY_MS})`,
          );
        }
      }
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => (broken = true));
      throw e;
    }
  } finally {
    client.release(broken);
  }
}

/** Days that have a partition of every partitioned table (in the connection's schema). */
export async function partitionDays(client: Pool | PoolClient): Promise<Set<number>> {
  const { rows } = await client.query<{ parent: string; name: string }>(
    `SELECT p.relname AS parent, c.relname AS name FROM pg_inherits i
       JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
      WHERE i.inhparent IN (${PARTITIONED_TABLES.map((t) => `'${t}'::regclass`).join(', ')})`,
  );
  const byTable = new Map<string, Set<number>>(PARTITIONED_TABLES.map((t) => [t, new Set<number>()]));
  for (const r of rows) {
    const day = partitionDay(r.parent, r.name);
    if (day !== null) byTable.get(r.parent)?.add(day);
  }
  const [first, ...rest] = PARTITIONED_TABLES.map((t) => byTable.get(t) ?? new Set<number>());
  return new Set([...(first ?? [])].filter((d) => rest.every((s) => s.has(d))));
}
