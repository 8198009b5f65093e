// Runs a real varnishd for tests and benches: free ports, a temp dir for its workdir, VCL and -S secret,
// -F so it stays our child, and restartable on the same ports.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { freePort } from '../e2e/helpers.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Why varnishd cannot be run here, or undefined when it can. */
export function varnishdMissing(): string | undefined {
  const r = spawnSync('varnishd', ['-V'], { encoding: 'utf8' });
  if (r.error) return `varnishd not found on PATH (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}); install it with: apt-get install -y varnish varnish-modules`;
  if (r.status !== 0) return `varnishd -V exited with ${r.status}: ${(r.stderr || r.stdout).trim().split('\n')[0]}`;
  return undefined;
}

export interface VarnishdOptions {
  /** The VCL text (-f); it may include files by absolute path. */
  readonly vcl: string;
  /** Extra arguments, e.g. ['-p', 'ban_lurker_age=0.5']. */
  readonly args?: readonly string[];
  /** -s (default malloc,64m). */
  readonly storage?: string;
  /** Pin to this CPU with taskset (benches). */
  readonly cpu?: number;
  /** How long to wait for it to answer (default 60 s: VCL compiles are slow on a loaded machine). */
  readonly readyMs?: number;
}

export interface Varnishd {
  /** HTTP listener, e.g. http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** Admin listener host:port (-T). */
  readonly admin: string;
  readonly secretFile: string;
  readonly dir: string;
  /** The manager process id while running. */
  pid(): number | undefined;
  /** Stops it (SIGTERM, then SIGKILL after 10 s). Idempotent. */
  stop(): Promise<void>;
  /** Starts it again on the same ports (empty cache, no vmod_var globals) and waits until it answers. */
  start(): Promise<void>;
  /** stop() and remove the temp dir. Idempotent. */
  close(): Promise<void>;
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startVarnishd(o: VarnishdOptions): Promise<Varnishd> {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-varnishd-'));
  const [port, adminPort] = [await freePort(), await freePort()];
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, `${randomBytes(16).toString('hex')}\n`, { mode: 0o600 });
  const vclFile = join(dir, 'main.vcl');
  writeFileSync(vclFile, o.vcl);
  const args = [
    '-F', '-j', 'none', '-n', join(dir, 'work'), '-a', `127.0.0.1:${port}`, '-T', `127.0.0.1:${adminPort}`, '-S', secretFile,
    '-f', vclFile, '-s', o.storage ?? 'malloc,64m', ...(o.args ?? []),
  ];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';

  const stop = async (): Promise<void> => {
    const c = child;
    if (c === undefined) return;
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    child = undefined;
  };

  const start = async (): Promise<void> => {
    await stop();
    output = '';
    const cmd = o.cpu === undefined ? 'varnishd' : 'taskset';
    const c = spawn(cmd, o.cpu === undefined ? args : ['-c', String(o.cpu), 'varnishd', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.stdout?.on('data', (b: Buffer) => (output += b.toString()));
    c.stderr?.on('data', (b: Buffer) => (output += b.toString()));
    const deadline = Date.now() + (o.readyMs ?? 60_000);
    for (;;) {
      if (c.exitCode !== null || c.signalCode !== null) throw new Error(`varnishd exited (${c.exitCode ?? c.signalCode}): ${output.trim().slice(-1500)}`);
      if ((await tcpOpen(port)) && (await tcpOpen(adminPort))) return;
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`varnishd did not listen within ${o.readyMs ?? 60_000} ms: ${output.trim().slice(-1500)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  let closed: Promise<void> | undefined;
  const v: Varnishd = {
    url: `http://127.0.0.1:${port}`,
    port,
    admin: `127.0.0.1:${adminPort}`,
    secretFile,
    dir,
    pid: () => child?.pid,
    stop,
    start,
    close: () =>
      (closed ??= (async () => {
        await stop();
        rmSync(dir, { recursive: true, force: true });
      })()),
  };
  try {
    await start();
  } catch (e) {
    await v.close();
    throw e;
  }
  return v;
}
