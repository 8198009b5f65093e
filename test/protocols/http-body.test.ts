import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { ApiError } from '../../src/shared/errors.ts';
import { readBody } from '../../src/protocols/http-body.ts';

const LIMIT = 1 << 20;

/** A server that reads each body with readBody and reports the outcome; answers errors with Connection: close. */
async function startServer(t: TestContext): Promise<{ port: number; outcomes: Promise<Buffer | unknown>[] }> {
  const outcomes: Promise<Buffer | unknown>[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const outcome = readBody(req, LIMIT);
    outcomes.push(outcome.catch((e: unknown) => e));
    outcome.then(
      (body) => res.end(`ok ${body.length}`),
      (err: unknown) => {
        if (res.writableEnded || req.socket.destroyed) return;
        res.writeHead(200, { 'Content-Type': 'application/json', Connection: 'close' });
        res.end(err instanceof ApiError ? err.code : 'other');
      },
    );
  });
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, outcomes };
}

function post(port: number, chunks: Buffer[], headers: Record<string, string | number>): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }));
      res.on('error', (e) => resolve({ error: e.message }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    for (const c of chunks) req.write(c);
    req.end();
  });
}

/** The server answers and closes; a client still sending may see a reset instead of the answer. */
function assertRefused(answer: { status: number; body: string } | { error: string }): void {
  if ('status' in answer) assert.deepEqual(answer, { status: 200, body: 'RequestSizeLimitExceeded' });
  else assert.match(answer.error, /ECONNRESET|EPIPE/);
}

describe('readBody', () => {
  test('returns the exact bytes, up to and including the limit', async (t) => {
    const { port, outcomes } = await startServer(t);
    const body = Buffer.alloc(LIMIT, 0x61);
    assert.deepEqual(await post(port, [body], { 'Content-Length': body.length }), { status: 200, body: `ok ${LIMIT}` });
    assert.deepEqual(await outcomes[0], body);
    assert.deepEqual(await post(port, [], {}), { status: 200, body: 'ok 0' });
  });

  test('a Content-Length over the limit is refused before reading (12 MB body does not hang)', async (t) => {
    const { port, outcomes } = await startServer(t);
    const big = Buffer.alloc(12 * 1024 * 1024, 0x62);
    const answer = await post(port, [big], { 'Content-Length': big.length });
    assertRefused(answer);
    const e = await outcomes[0];
    assert.ok(e instanceof ApiError && e.code === 'RequestSizeLimitExceeded');
    assert.match(e.message, /Content-Length 12582912/);
  });

  test('a chunked body is cut off once it passes the limit (12 MB)', async (t) => {
    const { port, outcomes } = await startServer(t);
    const chunk = Buffer.alloc(256 * 1024, 0x63);
    const answer = await post(port, Array.from({ length: 48 }, () => chunk), { 'Transfer-Encoding': 'chunked' });
    assertRefused(answer);
    const e = await outcomes[0];
    assert.ok(e instanceof ApiError && e.code === 'RequestSizeLimitExceeded');
    assert.match(e.message, /at least \d+ bytes/);
  });

  test('a client that aborts mid-body makes readBody reject with InvalidRequest', async (t) => {
    const { port, outcomes } = await startServer(t);
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc');
    while (outcomes.length === 0) await new Promise((r) => setTimeout(r, 5));
    socket.destroy();
    const e = await outcomes[0];
    assert.ok(e instanceof ApiError && e.code === 'InvalidRequest', String(e));
  });

  test('a body that came with its headers is taken in one read (the stream never flows); pipelined requests each get theirs; a late body is streamed', async (t) => {
    const seen: Array<{ body: string; flowed: boolean | null }> = [];
    const server = createServer((req, res) => {
      void readBody(req, LIMIT).then((body) => {
        seen.push({ body: body.toString(), flowed: req.readableFlowing });
        res.end(`ok ${body.length}`);
      });
    });
    t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    let answers = '';
    socket.on('data', (d: Buffer) => (answers += d.toString()));
    const until = async (n: number) => {
      for (let i = 0; i < 400 && (answers.match(/ok \d+/g) ?? []).length < n; i++) await new Promise((r) => setTimeout(r, 5));
    };
    const post = (body: string) => `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    socket.write(post('{"a":1}') + post('') + post('{"b":"é"}'));
    await until(3);
    // Headers now, the body 30 ms later: read the streaming way.
    socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab');
    await new Promise((r) => setTimeout(r, 30));
    socket.write('cde');
    await until(4);
    socket.destroy();
    assert.deepEqual(seen.map((s) => s.body), ['{"a":1}', '', '{"b":"é"}', 'abcde']);
    assert.deepEqual(seen.slice(0, 3).map((s) => s.flowed), [null, null, null], 'taken by read()');
    assert.equal(seen[3]!.flowed, true);
    assert.match(answers, /ok 7[^]*ok 0[^]*ok 10[^]*ok 5/);
  });
});
