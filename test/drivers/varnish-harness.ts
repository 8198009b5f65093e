// A real varnishd running the shipped edgepurge.vcl, included into an operator-style VCL that has its
// own vcl_recv / vcl_backend_response / vcl_deliver, in front of the conformance origin, with a started
// VarnishDriver: the conformance harness for the Varnish driver.
import http from 'node:http';
import { EDGEPURGE_VCL_PATH } from '../../src/drivers/varnish/edgepurge-vcl.ts';
import { VarnishDriver } from '../../src/drivers/varnish/varnish-driver.ts';
import type { DriverHarness, GetResult } from './driver-conformance.ts';
import { startConformanceOrigin, type ConformanceOrigin } from './driver-conformance.ts';
import { startVarnishd, type Varnishd } from './varnishd.ts';

/** The operator's VCL: the include first, then their own subroutines (which ours must compose with). */
export function operatorVcl(originPort: number): string {
  return `vcl 4.1;
include "${EDGEPURGE_VCL_PATH}";

backend origin { .host = "127.0.0.1"; .port = "${originPort}"; .first_byte_timeout = 10s; }

sub vcl_recv {
    if (req.url ~ "^/private/") {
        return (pass);
    }
}

sub vcl_backend_response {
    set beresp.http.X-Operator = "was here";
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
`;
}

/** Small and fast: a quick ban lurker, one thread pool. */
export const TEST_VARNISHD_ARGS = [
  '-t', '3600', '-p', 'ban_lurker_age=0.2', '-p', 'ban_lurker_sleep=0.01', '-p', 'thread_pools=1', '-p', 'thread_pool_min=10',
  '-p', 'thread_pool_max=200', '-p', 'vcl_cooldown=1',
] as const;

export interface VarnishHarness extends DriverHarness {
  readonly driver: VarnishDriver;
  readonly varnishd: Varnishd;
  /** A raw request to Varnish (not through the driver). */
  request(method: string, path: string, headers: Readonly<Record<string, string>>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>;
}

export const FAR_LEASE_MS = 3_600_000;

export async function startVarnishHarness(o: { lease?: boolean } = {}): Promise<VarnishHarness> {
  const origin: ConformanceOrigin = await startConformanceOrigin();
  let varnishd: Varnishd | undefined;
  let driver: VarnishDriver | undefined;
  const cleanup = async () => {
    await driver?.close();
    await varnishd?.close();
    await origin.close();
  };
  try {
    varnishd = await startVarnishd({ vcl: operatorVcl(origin.port), args: TEST_VARNISHD_ARGS });
    driver = new VarnishDriver({ url: varnishd.url, admin: varnishd.admin, adminSecretFile: varnishd.secretFile, timeoutMs: 5000 });
    await driver.start();
    if (o.lease !== false) await driver.renewLease(Date.now() + FAR_LEASE_MS);
  } catch (e) {
    await cleanup();
    throw e;
  }
  const v = varnishd;
  const d = driver;
  const request = (method: string, path: string, headers: Readonly<Record<string, string>>) =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: v.port, method, path, headers, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      });
      req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
      req.on('error', reject);
      req.end();
    });
  let closed: Promise<void> | undefined;
  return {
    driver: d,
    origin,
    varnishd: v,
    request,
    async get(host, path, headers = {}): Promise<GetResult> {
      const before = origin.requests.length;
      const r = await request('GET', path, { ...headers, host });
      const xcache = r.headers['x-cache'];
      return { status: r.status, body: r.body, originHits: origin.requests.length - before, ...(typeof xcache === 'string' ? { xcache } : {}) };
    },
    async restartCache() {
      await v.start();
      // What the agent's lease timer does on its own; the driver pushes its token again on the way.
      if (o.lease !== false) await d.renewLease(Date.now() + FAR_LEASE_MS);
    },
    stopCache: () => v.stop(),
    close: () => (closed ??= cleanup()),
  };
}
