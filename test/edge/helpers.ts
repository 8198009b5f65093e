// Test scaffolding for the edge: a scripted origin, an edge proxy on port 0, and a tiny HTTP client.

import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { ManualClock } from '../../src/shared/clock.ts';
import type { EdgeCommand } from '../../src/edge/edge-command.ts';
import { EdgeProxy, type EdgeProxyOptions } from '../../src/edge/edge-proxy.ts';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

export type Route = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface TestOrigin {
  readonly port: number;
  readonly url: string;
  /** Every request the origin received, in order. */
  readonly seen: SeenRequest[];
  /** Routes by path (query included); unknown paths answer 404. */
  readonly routes: Map<string, Route>;
  /** Requests seen for one path. */
  hits(path: string): SeenRequest[];
  close(): Promise<void>;
}

export async function startOrigin(t: TestContext): Promise<TestOrigin> {
  const seen: SeenRequest[] = [];
  const routes = new Map<string, Route>();
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const route = routes.get(req.url ?? '');
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('no such route');
      return;
    }
    void Promise.resolve(route(req, res)).catch((err: unknown) => res.destroy(err instanceof Error ? err : undefined));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closed;
  };
  t.after(close);
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    routes,
    hits: (path) => seen.filter((r) => r.url === path),
    close,
  };
}

/**
 * A route serving `body` with an ETag; answers 304 to a matching If-None-Match, like a real origin.
 * `headers` are added to both answers.
 */
export function etagged(body: string, etag: string, headers: Record<string, string> = {}): Route {
  return (req, res) => {
    if (req.headers['if-none-match']?.split(',').some((t) => t.trim() === etag)) {
      res.writeHead(304, { etag, ...headers });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', etag, ...headers });
    res.end(body);
  };
}

export interface TestEdge {
  readonly proxy: EdgeProxy;
  readonly port: number;
  readonly clock: ManualClock;
}

export async function startEdge(
  t: TestContext,
  domains: EdgeProxyOptions['domains'],
  options: Partial<EdgeProxyOptions> = {},
): Promise<TestEdge> {
  const clock = new ManualClock();
  const proxy = new EdgeProxy({
    listen: { host: '127.0.0.1', port: 0 },
    domains,
    maxBytes: 64 * 1024 * 1024,
    clock,
    leaseMs: 60_000,
    maintenanceIntervalMs: 0,
    ...options,
  });
  t.after(() => proxy.close());
  const { port } = await proxy.start();
  proxy.renewLease();
  return { proxy, port, clock };
}

export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** One request through the edge (a fresh connection each time, so tests never share sockets). */
export function request(
  port: number,
  host: string,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method, headers: { host, ...headers }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

let nextSeq = 1;

/** A purge command with a fresh, increasing seq. */
export function cmd(
  type: EdgeCommand['type'],
  method: EdgeCommand['method'],
  target: string,
  hosts: readonly string[] = [],
  headers?: Record<string, string>,
): EdgeCommand {
  return { seq: nextSeq++, type, method, target, hosts, ...(headers === undefined ? {} : { headers }) };
}

/** A promise and the function that resolves it (gates for origin handlers). */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A route that reports each arrival and answers only once released (a slow origin, under control). */
export function heldRoute(headers: Record<string, string>, body: string): { route: Route; arrived: Promise<void>; release: () => void } {
  const arrival = deferred();
  const gate = deferred();
  const route: Route = async (_req, res) => {
    arrival.resolve();
    await gate.promise;
    res.writeHead(200, headers);
    res.end(body);
  };
  return { route, arrived: arrival.promise, release: gate.resolve };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
