// A webhook receiver on a free port: records every request as received, answers as the test says.
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';

export interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly raw: Buffer;
  readonly at: number;
  readonly json: { id: string; event: string; appId: number; job: { JobId: string }; tasks: Array<{ Status: string; Nodes: unknown[] }>; summary: { tasks: Record<string, number>; nodes: Array<{ NodeId: string; applied: number }> } };
}

export interface Receiver {
  readonly url: string;
  readonly received: Received[];
  /** How to answer the next request (default 204); `hang` never answers. */
  answer: (r: Received, res: ServerResponse) => void;
  close(): Promise<void>;
}

export async function startReceiver(t: Pick<TestContext, 'after'>): Promise<Receiver> {
  const received: Received[] = [];
  const hanging = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => {
      const raw = Buffer.concat(chunks);
      const r: Received = { path: req.url ?? '/', headers: req.headers, raw, at: Date.now(), json: JSON.parse(raw.toString('utf8')) as Received['json'] };
      received.push(r);
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      receiver.answer(r, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  const receiver: Receiver = {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    answer: (_r, res) => res.writeHead(204).end(),
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
  t.after(() => receiver.close());
  return receiver;
}

/** Never answers (a receiver that accepted the connection and hangs). */
export const hang = (): void => {};
