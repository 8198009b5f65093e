// Guards the edge's restated shapes against drift: PurgeLogEntry → EdgeCommand, EdgeProxy → EdgeTarget.
import assert from 'node:assert/strict';
import test from 'node:test';
import type { EdgeCommand } from '../../src/edge/edge-command.ts';
import type { EdgeProxy } from '../../src/edge/edge-proxy.ts';
import type { EdgeTarget } from '../../src/fanout/edge-agent.ts';
import type { PurgeLogEntry } from '../../src/purge/types.ts';

test('a PurgeLogEntry is structurally an EdgeCommand (checked by tsc)', () => {
  const entry: PurgeLogEntry = {
    seq: 7,
    taskId: 1,
    jobId: '0000000aabcd',
    appId: 1250000000,
    type: 'prefetch_url',
    method: 'invalidate',
    hosts: ['www.example.com'],
    target: 'http://www.example.com/a.js',
    headers: { 'X-Token': 't' },
    createdAt: 0,
  };
  const command: EdgeCommand = entry;
  assert.equal(command.seq, 7);
});

test('EdgeProxy is what the fan-out agent drives (EdgeTarget, checked by tsc)', () => {
  const asTarget = (proxy: EdgeProxy): EdgeTarget => proxy;
  assert.equal(typeof asTarget, 'function');
});
