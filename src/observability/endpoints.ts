// The operator endpoints every process serves: GET /metrics (Prometheus text), /healthz (alive) and
// /readyz (able to do its job), either on the process's own server or on a listener of their own.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { splitHostPort } from '../shared/host-port.ts';

/** One readiness check: its name, and why it fails (undefined when it passes). */
export interface ReadyCheck {
  readonly name: string;
  readonly problem: string | undefined;
}

export interface EndpointOptions {
  /** Absent: /metrics answers 404 (metrics turned off). */
  readonly registry?: Registry;
  /** Read per request (a reloaded config applies at once): the bearer token /metrics asks for, if any. */
  readonly token: () => string | undefined;
  /** The checks /readyz runs; ready when none reports a problem. Must not take long (no query that grows with history). */
  readonly ready: () => Promise<readonly ReadyCheck[]>;
}

export const OPERATOR_PATHS = ['/metrics', '/healthz', '/readyz'] as const;

/** Tokens are compared as SHA-256 digests: equal lengths, so the comparison leaks neither content nor length. */
const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** True when `header` is `Bearer <token>`; constant time in the token. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer ([\x21-\x7e]{1,1024})$/i.exec(header ?? '')?.[1] ?? '';
  return timingSafeEqual(digest(given), digest(token)) && given !== '';
}

function text(res: ServerResponse, status: number, body: string, headers: Readonly<Record<string, string>> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': String(Buffer.byteLength(body)), ...headers }).end(body);
}

/**
 * The handler of the operator paths: false when the request is for another path. Only GET and HEAD;
 * nothing here reads a request body or the store beyond the readiness checks.
 */
export function operatorRoutes(o: EndpointOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      text(res, 405, `${path} takes GET\n`, { Allow: 'GET, HEAD' });
      return true;
    }
    if (path === '/healthz') {
      text(res, 200, 'ok\n');
      return true;
    }
    if (path === '/readyz') {
      o.ready().then(
        (checks) => {
          const failing = checks.filter((c) => c.problem !== undefined);
          const lines = checks.map((c) => `${c.problem === undefined ? 'ok' : 'FAIL'} ${c.name}${c.problem === undefined ? '' : `: ${c.problem}`}`);
          text(res, failing.length ? 503 : 200, `${failing.length ? 'not ready' : 'ready'}\n${lines.join('\n')}\n`);
        },
        (e: unknown) => text(res, 503, `not ready\nFAIL checks: ${e instanceof Error ? e.message : String(e)}\n`),
      );
      return true;
    }
    const { registry } = o;
    if (!registry) {
      text(res, 404, 'metrics are turned off (metrics.enabled: false)\n');
      return true;
    }
    const token = o.token();
    if (token !== undefined && !bearerMatches(req.headers.authorization, token)) {
      text(res, 401, 'send Authorization: Bearer <metrics.token>\n', { 'WWW-Authenticate': 'Bearer' });
      return true;
    }
    registry.metrics().then(
      (body) => text(res, 200, body, { 'Content-Type': registry.contentType }),
      (e: unknown) => text(res, 500, `metrics collection failed: ${e instanceof Error ? e.message : String(e)}\n`),
    );
    return true;
  };
}

/** A listener serving only the operator paths (edges and agents: their own port, see `nodes[].metrics.listen`). */
export interface OperatorServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startOperatorServer(listen: string, routes: (req: IncomingMessage, res: ServerResponse) => boolean): Promise<OperatorServer> {
  const server: Server = createServer({ headersTimeout: 10_000, requestTimeout: 10_000 }, (req, res) => {
    if (!routes(req, res)) text(res, 404, `not found: this listener serves ${OPERATOR_PATHS.join(', ')}\n`);
  });
  const { host, port } = splitHostPort(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let closed: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
