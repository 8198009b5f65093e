// `edgepurge store migrate`: operations on the task store itself (no control plane involved).
import { resolve } from 'node:path';
import { UsageError, type CommandSpec, type Values } from './args.ts';

const str = (v: Values, k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);

async function migrate(v: Values): Promise<number> {
  const from = str(v, 'from');
  const to = str(v, 'to');
  if (!from || !to) throw new UsageError('store migrate needs --from sqlite:PATH --to postgres://USER@HOST:PORT/DATABASE');
  if (!from.startsWith('sqlite:') || from.length === 'sqlite:'.length) throw new UsageError(`--from takes sqlite:PATH, e.g. sqlite:./data/edgepurge.db (got "${from}")`);
  const url = URL.parse(to);
  if (!url || (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')) throw new UsageError(`--to takes a postgres:// URL, e.g. postgres://edgepurge@127.0.0.1:5432/edgepurge (got "${to}")`);
  const schema = str(v, 'schema') ?? 'public';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new UsageError(`--schema takes a lower-case SQL name (letters, digits, _) (got "${schema}")`);
  const batchText = str(v, 'batch') ?? '5000';
  const batch = Number(batchText);
  if (!/^\d+$/.test(batchText) || batch < 1 || batch > 100_000) throw new UsageError(`--batch takes a number from 1 to 100000 (got "${batchText}")`);
  const path = resolve(from.slice('sqlite:'.length));
  const { migrateSqliteToPostgres, MigrateRefusedError } = await import('../store/migrate.ts');
  const started = performance.now();
  let last = 0;
  try {
    const r = await migrateSqliteToPostgres({
      from: path,
      to,
      schema,
      replace: v.replace === true,
      batch,
      onProgress: (table, rows) => {
        // A line every few seconds on big stores, so the operator sees it moves.
        if (performance.now() - last > 3000) {
          last = performance.now();
          process.stderr.write(`  ${table}: ${rows} rows…\n`);
        }
      },
    });
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    const lines = Object.entries(r.counts).map(([t, n]) => `  ${t.padEnd(16)} ${n}`);
    process.stdout.write(
      `migrated ${path} into schema "${schema}" in ${secs} s (one transaction, counts checked):\n${lines.join('\n')}\n  last seq         ${r.lastSeq}\n` +
        `next: set \`store: { driver: postgres, url: "${to.replace(/\/\/[^@/]*@/, '//…@')}", schema: ${schema} }\` in edgepurge.yaml and start the control plane(s)\n`,
    );
    return 0;
  } catch (e) {
    if (e instanceof MigrateRefusedError) {
      process.stderr.write(`refused: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

export const STORE_COMMANDS: readonly CommandSpec[] = [
  {
    name: 'store migrate',
    args: '',
    summary: 'Move a SQLite store (history, purge log, quotas, node progress) into PostgreSQL.',
    details:
      'Stop the control plane first. Everything moves in one PostgreSQL transaction and the row counts are checked before it commits: ' +
      'the target holds all of it or nothing. A target schema that holds data is refused unless --replace. ' +
      'Nodes then resume on PostgreSQL from the seq they applied. Exit codes: 0 moved, 1 refused (target not empty), 2 usage error, 3 failure (nothing written).',
    options: {
      from: { type: 'string', arg: 'sqlite:PATH', help: 'the SQLite store, e.g. sqlite:./data/edgepurge.db (upgraded to this build\'s schema first)' },
      to: { type: 'string', arg: 'URL', help: 'the PostgreSQL database, postgres://USER[:PASSWORD]@HOST:PORT/DATABASE' },
      schema: { type: 'string', arg: 'NAME', help: 'schema of the tables in the target (default public; created if missing)' },
      replace: { type: 'boolean', help: 'empty a target schema that holds data first (its data is lost)' },
      batch: { type: 'string', arg: 'N', help: 'rows per INSERT (default 5000)' },
    },
    run: (v) => migrate(v),
  },
];
