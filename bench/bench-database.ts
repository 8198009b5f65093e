// A PostgreSQL database of a benchmark's own (EDGEPURGE_TEST_PG's server, or the local one), dropped after.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface BenchDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

export async function createBenchDatabase(prefix: string, admin = process.env.EDGEPURGE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres'): Promise<BenchDatabase> {
  const name = `edgepurge_bench_${prefix}_${randomBytes(4).toString('hex')}`;
  const root = new pg.Client({ connectionString: admin });
  await root.connect();
  await root.query(`CREATE DATABASE ${name}`);
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      try {
        await root.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await root.end();
      }
    },
  };
}
