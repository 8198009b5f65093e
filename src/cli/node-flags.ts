// The V8 flags EdgePurge's long-running processes (start, serve, edge, agent) run with, and the
// re-exec that gives them those flags whichever way they were started.

/**
 * A bounded young generation. V8 grows each semi-space up to 64 MiB under a steady request load, and the
 * resident memory of every process then wobbles by ±6 MB/min over 10–30 minutes (issue 7's soak); at
 * 8 MiB it stays flat. V8 reads the flag only at start (`v8.setFlagsFromString` afterwards leaves the
 * young generation as it was: measured), hence the command line. docs/operator-guide.md "Memory".
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];

const LONG_RUNNING = new Set(['start', 'serve', 'edge', 'agent']);

/**
 * The flags a node process still needs: NODE_FLAGS less those the operator set already on the command
 * line or in NODE_OPTIONS (a flag given either way wins, `--max-semi-space-size=64` undoes this).
 */
export function missingNodeFlags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].map((a) => a.split('=', 1)[0]!.replaceAll('_', '-'));
  return NODE_FLAGS.filter((f) => !given.includes(f.split('=', 1)[0]!));
}

/**
 * For a long-running command, replaces this process (same pid, stdio and signals: process.execve) with
 * node + NODE_FLAGS + the same script and arguments, unless it has them. Returns when nothing is to be
 * done, or where execve does not exist (Windows): the process then runs with V8's defaults.
 */
export function reexecWithNodeFlags(script: string, argv: readonly string[]): void {
  if (!LONG_RUNNING.has(argv[0] ?? '') || typeof process.execve !== 'function') return;
  const missing = missingNodeFlags(process.execArgv, process.env.NODE_OPTIONS);
  if (missing.length === 0) return;
  process.execve(process.execPath, [process.execPath, ...missing, ...process.execArgv, script, ...argv], process.env);
}
