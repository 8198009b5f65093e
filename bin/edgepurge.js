#!/usr/bin/env node
// Runs the TypeScript sources on Node 24 (type stripping). On an older node, re-run with the
// pinned Node 24 from this package's devDependencies, or say how to get one.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const main = join(root, 'src', 'cli', 'main.ts');
const major = Number(process.versions.node.split('.')[0]);
if (major >= 24) {
  // serve, edge, agent, start: this process becomes node + the V8 flags they run with (src/cli/node-flags.ts).
  const { reexecWithNodeFlags } = await import(join(root, 'src', 'cli', 'node-flags.ts'));
  reexecWithNodeFlags(main, process.argv.slice(2));
  const { main: run } = await import(main);
  const code = await run(process.argv.slice(2));
  if (code >= 0) process.exitCode = code;
} else {
  const pinned = join(root, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(pinned)) {
    process.stderr.write(`edgepurge needs Node 24 or newer (this is ${process.version}); run "npm ci" in ${root} to get the pinned one\n`);
    process.exit(3);
  }
  // Not spawnSync: a long-running command (serve, edge, agent) must get the SIGTERM / SIGHUP sent to
  // this wrapper (kill PID, a config reload), or it would live on, orphaned, after the wrapper died.
  // Ctrl-C already reaches the child (the terminal signals the whole process group): the wrapper only
  // waits for it, so the child shuts down once, gracefully.
  // main.ts, run directly, gives itself the V8 flags of the long-running commands (node-flags.ts).
  const child = spawn(pinned, [main, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  process.on('SIGINT', () => {});
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : 1)));
}
