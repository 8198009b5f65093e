// A refused oversized body must reach the client as RequestSizeLimitExceeded, not as EPIPE or a reset
// (issue 7): the control plane answers, then lingers reading what is still in flight before it closes.
import assert from 'node:assert/strict';
import net from 'node:net';
import test from 'node:test';
import { ACME, startControlPlane } from '../helpers/control-plane.ts';
import { sdkError, teoClient } from '../helpers/sdk.ts';
import { assertError, config, parseAnswer, rawCall, TEO } from './fixtures.ts';

const LIMIT = 1024 * 1024;
const RUNS = 20;

/** CreatePurgeTask params whose JSON is exactly `bytes` long. */
function paramsOfSize(bytes: number): Record<string, unknown> {
  const base = { ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [''] };
  const pad = bytes - JSON.stringify(base).length;
  const params = { ...base, Targets: [`http://${ACME.host}/${'a'.repeat(pad - `http://${ACME.host}/`.length)}`] };
  assert.equal(JSON.stringify(params).length, bytes);
  return params;
}

for (const size of [LIMIT + 1, 12 * 1024 * 1024]) {
  const label = size === LIMIT + 1 ? '1 MiB + 1 byte' : '12 MB';

  test(`regression: a ${label} body gets RequestSizeLimitExceeded ${RUNS} times of ${RUNS} with fetch and with the SDK, never a reset`, async (t) => {
    const s = await startControlPlane(t, config());
    const params = paramsOfSize(size);
    const codes: string[] = [];
    for (let i = 0; i < RUNS; i++) {
      // fetch (undici), a fresh signed request each time.
      try {
        const a = await rawCall(s, ACME, { action: 'CreatePurgeTask', version: TEO, body: params });
        assertError(a, 'RequestSizeLimitExceeded');
        codes.push('fetch:ok');
      } catch (e) {
        codes.push(`fetch:${(e as Error).message}`);
      }
      // The official SDK (node-fetch over http.Agent).
      const e = await sdkError(teoClient(s.endpoint, ACME.secretId, ACME.secretKey).CreatePurgeTask(params));
      codes.push(e.code === 'RequestSizeLimitExceeded' ? 'sdk:ok' : `sdk:${e.code} ${e.message}`);
    }
    assert.deepEqual(codes.filter((c) => !c.endsWith(':ok')), []);
    // Nothing was written, and the server still serves.
    assert.equal((await s.store.listTasks({ appId: ACME.appId, offset: 0, limit: 10 })).total, 0);
    const ok = await fetch(`${s.url}/`, { method: 'POST', body: '{}' });
    assert.equal((await parseAnswer(ok)).status, 200);
  });
}

test('regression: a client that sends its whole oversized body before reading still reads RequestSizeLimitExceeded (lingering close)', async (t) => {
  const s = await startControlPlane(t, config());
  const body = Buffer.alloc(12 * 1024 * 1024, 0x20);
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(s.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('error', reject);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString()));
    // Not reading until everything is written: a reset from the server would discard its answer.
    socket.pause();
    socket.write(`POST / HTTP/1.1\r\nHost: ${s.endpoint}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    socket.write(body, () => socket.resume());
  });
  assert.match(answer, /^HTTP\/1\.1 200 /);
  assert.match(answer, /"Code":"RequestSizeLimitExceeded"/);
});
