// The long-running commands run with a bounded V8 young generation whichever way they are started
// (issue 7's soak: RSS wobbled ±6 MB/min with V8's default semi-space), and an operator's own flag wins.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { stringify } from 'yaml';
import { missingNodeFlags, NODE_FLAGS } from '../../src/cli/node-flags.ts';
import { baseConfig } from '../helpers/control-plane.ts';
import { freePort, listening, until } from '../e2e/helpers.ts';

const ROOT = join(import.meta.dirname, '../..');

/** Starts `serve` with `args` (a script and its flags before it), waits until it listens; returns the pid's command line. */
async function serveCmdline(t: TestContext, script: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<{ cmdline: string[]; stop: () => Promise<number | null> }> {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-flags-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  writeFileSync(join(dir, 'edgepurge.yaml'), stringify({ ...baseConfig(), server: { listen: `127.0.0.1:${port}` }, store: { driver: 'sqlite', path: join(dir, 'db') } }));
  const child = spawn(process.execPath, [...script, 'serve', '--config', join(dir, 'edgepurge.yaml')], { stdio: ['ignore', 'pipe', 'inherit'], env });
  t.after(() => child.kill('SIGKILL'));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // The banner comes once its SIGTERM handler is in place (the port listens a little before).
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  await until('the control plane is up', async () => out.includes('EdgePurge control plane on') && (await listening(port)), 60_000);
  // The process we spawned is the one serving: execve kept its pid (a service manager's PID stays true).
  const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  return { cmdline, stop: () => (child.kill('SIGTERM'), exited) };
}

test('bin/edgepurge.js serve runs as node --max-semi-space-size=8, same pid, and still stops cleanly on SIGTERM', async (t) => {
  const { cmdline, stop } = await serveCmdline(t, [join(ROOT, 'bin/edgepurge.js')]);
  assert.deepEqual(cmdline.slice(1, 2), ['--max-semi-space-size=8'], cmdline.join(' '));
  assert.ok(cmdline.includes(join(ROOT, 'src/cli/main.ts')), cmdline.join(' '));
  assert.equal(await stop(), 0);
});

test('node src/cli/main.ts serve (as the tests and benches spawn it) gets the flag too', async (t) => {
  const { cmdline, stop } = await serveCmdline(t, [join(ROOT, 'src/cli/main.ts')]);
  assert.ok(cmdline.includes('--max-semi-space-size=8'), cmdline.join(' '));
  assert.equal(await stop(), 0);
});

test('an operator\'s own --max-semi-space-size in NODE_OPTIONS wins: no re-exec', async (t) => {
  const { cmdline, stop } = await serveCmdline(t, [join(ROOT, 'src/cli/main.ts')], { ...process.env, NODE_OPTIONS: '--max-semi-space-size=32' });
  assert.ok(!cmdline.some((a) => a.startsWith('--max-semi-space-size')), cmdline.join(' '));
  assert.equal(await stop(), 0);
});

test('missingNodeFlags: a flag given on the command line or in NODE_OPTIONS (either spelling) is not added again', () => {
  assert.deepEqual(missingNodeFlags([], undefined), [...NODE_FLAGS]);
  assert.deepEqual(missingNodeFlags(['--import', 'x.ts'], '--enable-source-maps'), [...NODE_FLAGS]);
  assert.deepEqual(missingNodeFlags(['--max-semi-space-size=4'], undefined), []);
  assert.deepEqual(missingNodeFlags([], '--trace-gc --max_semi_space_size=64'), []);
});
