// A lost connection on a lent-out client must fail its next query, never crash the process (pg-pool takes
// its own error listener off a client while it is lent out).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { newPool } from '../../src/store/postgres/pool.ts';
import { freshTestDatabase, postgresSkip } from '../helpers/postgres.ts';

const skip = postgresSkip('the PostgreSQL pool tests');
const url = skip ? '' : await freshTestDatabase({ trgm: false });

describe('newPool', { skip }, () => {
  it('a checked-out client whose backend is terminated between queries fails its next query; the process lives and the pool recovers', async (t) => {
    const pool = newPool({ connectionString: url, max: 2 });
    t.after(() => pool.end());
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    t.after(() => admin.end());

    const client = await pool.connect();
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const ended = new Promise((resolve) => client.once('end', resolve)); // (events.once would listen to 'error' too)
    await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
    await ended; // the 'error' before it had no listener but the pool's: an uncaught one fails this test file
    await assert.rejects(client.query('SELECT 1'), /not queryable|terminat/i);
    client.release();
    assert.equal((await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one, 1, 'the pool makes a new connection');
    assert.equal(pool.totalCount, 1, 'the dead client was dropped');
  });
});
