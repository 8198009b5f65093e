// The log writer: what one turn of the event loop logs goes out in one write, none of it lost at exit.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { createLogger, linesPerTurn } from '../../src/shared/logger.ts';

test('lines of one turn are one write, in order; the next turn is another; 64 KiB goes at once', async () => {
  const writes: string[] = [];
  const log = createLogger('info', linesPerTurn((c) => writes.push(c)));
  log.info('a');
  log.info('b', { n: 1 });
  assert.equal(writes.length, 0, 'nothing written within the turn');
  await new Promise((r) => setImmediate(r));
  assert.equal(writes.length, 1);
  assert.deepEqual(writes[0]!.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { msg: string }).msg), ['a', 'b']);
  log.info('c');
  await new Promise((r) => setImmediate(r));
  assert.equal(writes.length, 2);
  const big = 'x'.repeat(70_000);
  log.info(big);
  assert.equal(writes.length, 3, 'past 64 KiB it is written at once');
  assert.ok(writes[2]!.includes(big));
});

test('what was logged in the turn the process exits in is written (stderr of `edgepurge start`)', () => {
  const code = `
    import { createLogger } from './src/shared/logger.ts';
    const log = createLogger('info');
    log.info('before');
    setImmediate(() => { log.error('last words', { n: 2 }); process.exit(3); });
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: new URL('../..', import.meta.url).pathname, encoding: 'utf8' });
  assert.equal(r.status, 3);
  assert.deepEqual(r.stderr.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { msg: string }).msg), ['before', 'last words']);
});
