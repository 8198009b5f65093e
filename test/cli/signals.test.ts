// `serve` ends cleanly on a SIGTERM that arrives as soon as its port listens (a service manager, a test
// harness): before its handler was installed first, such a signal ended it by the default action (143)
// in the middle of starting, its store open.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { NODE_FLAGS } from '../../src/cli/node-flags.ts';
import { baseConfig } from '../helpers/control-plane.ts';
import { freePort, listening } from '../e2e/helpers.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

test('regression: serve exits 0 on a SIGTERM sent the moment its port listens, before its banner', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-signals-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  writeFileSync(join(dir, 'edgepurge.yaml'), stringify({ ...baseConfig(), server: { listen: `127.0.0.1:${port}` }, store: { driver: 'sqlite', path: join(dir, 'db') } }));
  const child = spawn(process.execPath, [...NODE_FLAGS, MAIN, 'serve', '--config', join(dir, 'edgepurge.yaml')], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  const deadline = Date.now() + 60_000;
  while (!(await listening(port))) {
    assert.ok(Date.now() < deadline, 'serve listens within 60 s');
    await new Promise((r) => setTimeout(r, 2));
  }
  child.kill('SIGTERM');
  assert.equal(await exited, 0, 'a clean exit, not the default action of SIGTERM');
});
