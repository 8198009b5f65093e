// bin/edgepurge.js on a node older than 24 runs the pinned Node 24 as a child: a SIGTERM to the
// wrapper (kill PID, a service manager) must stop that child too, not leave it running orphaned.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { stringify } from 'yaml';
import { baseConfig } from '../helpers/control-plane.ts';
import { freePort, listening, until } from '../e2e/helpers.ts';

const OLD_NODE = '/usr/bin/node';
const version = spawnSync(OLD_NODE, ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? '';
const major = Number(/^v(\d+)/.exec(version)?.[1] ?? 0);
const skip = major > 0 && major < 24 ? false : `needs a node older than 24 at ${OLD_NODE} (found ${version || 'none'}) to run the wrapper's re-exec path`;
if (skip) console.warn(`\n*** wrapper test SKIPPED: ${skip} ***\n`);

test('SIGTERM to bin/edgepurge.js on an old node stops the Node 24 child it runs (serve), with its exit', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-wrapper-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  writeFileSync(join(dir, 'edgepurge.yaml'), stringify({ ...baseConfig(), server: { listen: `127.0.0.1:${port}` }, store: { driver: 'sqlite', path: join(dir, 'db') } }));
  const wrapper = spawn(OLD_NODE, [join(import.meta.dirname, '../../bin/edgepurge.js'), 'serve', '--config', join(dir, 'edgepurge.yaml')], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => wrapper.kill('SIGKILL'));
  // The banner comes once serve's SIGTERM handler is in place (the port listens a little before: a
  // SIGTERM in between ends it with the default action, 143, on a loaded machine).
  let out = '';
  wrapper.stdout.on('data', (c: Buffer) => (out += c.toString()));
  await until('the control plane is up', async () => out.includes('EdgePurge control plane on') && (await listening(port)), 60_000);
  const exited = new Promise<number | null>((resolve) => wrapper.once('exit', (code) => resolve(code)));
  wrapper.kill('SIGTERM');
  assert.equal(await exited, 0, 'the child shut down cleanly and the wrapper passed its exit code on');
  await until('the child no longer listens', async () => !(await listening(port)), 10_000);
});
