// The PostgreSQL server the tests run against: EDGEPURGE_TEST_PG (an admin URL such as
// postgres://postgres@127.0.0.1:5432/postgres). Each test run gets its own fresh database, dropped after.
import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import pg from 'pg';

export const TEST_PG_ENV = 'EDGEPURGE_TEST_PG';

/**
 * Why the PostgreSQL tests cannot run here, or undefined when they can. Unset under CI=true is not a
 * reason to skip: the caller fails instead (`.ci/run` points the variable at the local server).
 */
export function postgresMissing(): string | undefined {
  return process.env[TEST_PG_ENV] ? undefined : `${TEST_PG_ENV} is not set (e.g. postgres://postgres@127.0.0.1:5432/postgres)`;
}

/** `skip` option for describe()/it(): the loud reason outside CI, false under CI (the tests then fail). */
export function postgresSkip(what: string): string | false {
  const missing = postgresMissing();
  if (missing === undefined || process.env.CI === 'true') return false;
  const reason = `SKIPPED: ${what} need PostgreSQL: ${missing}`;
  console.warn(`\n*** ${reason} ***\n`);
  return reason;
}

/** A URL of `admin` with another database name. */
function withDatabase(admin: string, database: string): string {
  const u = new URL(admin);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * Creates `edgepurge_test_<random>` on the server (pg_trgm installed in its public schema unless
 * `trgm: false`) and drops it when the test file ends. Throws when the server is not configured or not reachable.
 */
export async function freshTestDatabase(opts: { trgm?: boolean } = {}): Promise<string> {
  const admin = process.env[TEST_PG_ENV];
  if (!admin) throw new Error(`the PostgreSQL tests need ${TEST_PG_ENV}: ${postgresMissing()}`);
  const name = `edgepurge_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  after(async () => {
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    try {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await c.end();
    }
  });
  const url = withDatabase(admin, name);
  if (opts.trgm === false) return url;
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await db.query('CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public');
  } finally {
    await db.end();
  }
  return url;
}
