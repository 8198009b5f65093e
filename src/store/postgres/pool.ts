// The one way this store makes a connection pool, so that a lost connection never ends the process.
import pg from 'pg';
import type { PoolClient, PoolConfig } from 'pg';

/**
 * A node-postgres pool whose clients' connection errors are always listened to. pg-pool listens to an
 * idle client (and drops it on error) but takes that listener off while the client is lent out: a
 * connection lost between two queries of a checked-out client (server restart, failover, DROP DATABASE …
 * WITH (FORCE)) then emitted an unhandled 'error' and crashed the process. The loss still fails the
 * client's next query, and release() drops a client that is no longer queryable.
 */
export function newPool(config: PoolConfig): pg.Pool {
  const pool = new pg.Pool(config);
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/** A COMMIT that ended the transaction otherwise: nothing of it was committed. */
export class NotCommittedError extends Error {}

/**
 * COMMITs the client's transaction, or throws NotCommittedError: PostgreSQL answers COMMIT of a
 * transaction that an error aborted with ROLLBACK, not with an error.
 */
export async function commit(client: Pick<PoolClient, 'query'>): Promise<void> {
  const end = await client.query('COMMIT');
  if (end.command !== 'COMMIT') throw new NotCommittedError(`the transaction ended in ${end.command}, not COMMIT`);
}
