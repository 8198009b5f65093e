// The byte-bounded LRU storage as pure logic.
import assert from 'node:assert/strict';
import test from 'node:test';
import { MemoryStorage } from '../../src/edge/memory-storage.ts';

interface E {
  readonly key: string;
  readonly name: string;
}
const e = (key: string, name = key): E => ({ key, name });

test('evicts least recently used entries until the byte budget fits', () => {
  const s = new MemoryStorage<E>(100);
  const a = e('a');
  const b = e('b');
  const c = e('c');
  s.add(a, 40);
  s.add(b, 40);
  s.touch(a); // b is now the least recently used
  const { stored, evicted } = s.add(c, 40);
  assert.equal(stored, true);
  assert.deepEqual(evicted, [b]);
  assert.equal(s.bytes, 80);
  assert.equal(s.count, 2);
  assert.equal(s.variants('b'), undefined);
  assert.ok(s.has(a) && s.has(c));
});

test('one big entry may evict several', () => {
  const s = new MemoryStorage<E>(100);
  const small = [e('1'), e('2'), e('3'), e('4')];
  for (const x of small) s.add(x, 25);
  const { evicted } = s.add(e('big'), 70);
  assert.deepEqual(evicted, small.slice(0, 3));
  assert.equal(s.bytes, 95);
});

test('an entry larger than the whole budget is refused without evicting anything', () => {
  const s = new MemoryStorage<E>(100);
  s.add(e('a'), 50);
  assert.deepEqual(s.add(e('huge'), 101), { stored: false, evicted: [] });
  assert.equal(s.count, 1);
  assert.equal(s.bytes, 50);
});

test('variants share a key; removeKey drops them all', () => {
  const s = new MemoryStorage<E>(1000);
  const gz = e('k', 'gzip');
  const br = e('k', 'br');
  s.add(gz, 10);
  s.add(br, 20);
  assert.deepEqual(s.variants('k'), [gz, br]);
  s.remove(gz);
  assert.deepEqual(s.variants('k'), [br]);
  s.add(gz, 10);
  assert.deepEqual(s.removeKey('k').map((x) => x.name).sort(), ['br', 'gzip']);
  assert.equal(s.variants('k'), undefined);
  assert.equal(s.bytes, 0);
});

test('re-adding an entry does not double count', () => {
  const s = new MemoryStorage<E>(100);
  const a = e('a');
  s.add(a, 30);
  s.add(a, 30);
  assert.equal(s.bytes, 30);
  assert.deepEqual(s.variants('a'), [a]);
});
