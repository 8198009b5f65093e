// The real CLI `serve` as a child process (kill -9 tests), and a signed EdgeOne call to it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../src/cli/node-flags.ts';
import { signTc3Request } from '../../src/protocols/tc3/tc3-signature.ts';
import { ACME } from './control-plane.ts';

const TEO = '2022-09-01';
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/**
 * The `accounts:` section of an edgepurge.yaml with ACME alone (rate limit off, one zone and domain);
 * `extra` are further YAML lines of the account (e.g. `quotas: …`, `webhooks: […]`).
 */
export function acmeAccountsYaml(...extra: string[]): string {
  return `accounts:
  - appId: ${ACME.appId}
    name: acme
    credentials: [{ secretId: ${ACME.secretId}, secretKey: ${ACME.secretKey} }]
    rateLimit: false
${extra.map((line) => `    ${line}\n`).join('')}    zones:
      - zoneId: ${ACME.zoneId}
        name: acme.com
        domains: [{ host: ${ACME.host}, origin: "http://127.0.0.1:9" }]
`;
}

export interface Server {
  readonly child: ChildProcess;
  readonly base: string;
  readonly exited: Promise<NodeJS.Signals | number | null>;
}

/** Starts `edgepurge serve --config configPath`; resolves once it printed where it listens. */
export async function serve(configPath: string): Promise<Server> {
  const child = spawn(process.execPath, [...NODE_FLAGS, MAIN, 'serve', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, EDGEPURGE_LOG_LEVEL: 'error' },
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start in time: ${out}${err}`)), 10_000);
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const m = /control plane on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${String(how)}) before listening: ${out}${err}`));
    });
  });
  return { child, base, exited };
}

/** A signed EdgeOne call as ACME; throws with the error code. */
export async function api(base: string, action: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
  const body = JSON.stringify(params);
  const host = new URL(base).host;
  const headers = signTc3Request({
    secretId: ACME.secretId, secretKey: ACME.secretKey, host, service: 'teo', action, version: TEO,
    timestamp: Math.floor(Date.now() / 1000), body, method: 'POST', contentType: 'application/json',
  });
  delete headers.Host;
  const res = await fetch(`${base}/`, { method: 'POST', headers, body });
  const json = (await res.json()) as { Response: Record<string, unknown> & { Error?: { Code: string } } };
  if (json.Response.Error) throw new Error(`${action}: ${json.Response.Error.Code}`);
  return json.Response;
}

/** A temp dir and a list of started children, both cleaned up (children SIGKILLed) after the test. */
export function serveSandbox(t: Pick<TestContext, 'after'>, prefix: string): { dir: string; running: ChildProcess[] } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const running: ChildProcess[] = [];
  t.after(() => {
    for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, running };
}
