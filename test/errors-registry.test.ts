// Keeps docs/errors.md and the error registry (src/shared/errors.ts) in step (STYLE 7).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ApiError, ERRORS, type ErrorCode, type LegacyCode } from '../src/shared/errors.ts';

interface DocRow {
  readonly code: string;
  readonly legacyCode: number;
  readonly module: number | undefined;
  readonly meaning: string;
}

function docRows(): DocRow[] {
  const text = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const rows: DocRow[] = [];
  for (const line of text.split('\n')) {
    const m = /^\| `([^`]+)` \| (\d+) \| (\d+|—) \| (.*) \|$/.exec(line);
    if (m) rows.push({ code: m[1]!, legacyCode: Number(m[2]), module: m[3] === '—' ? undefined : Number(m[3]), meaning: m[4]!.trim() });
  }
  return rows;
}

test('docs/errors.md lists every registered code exactly once, and nothing else', () => {
  const documented = docRows().map((r) => r.code);
  assert.equal(new Set(documented).size, documented.length, 'a code is listed twice');
  const registered = Object.keys(ERRORS);
  assert.deepEqual(
    documented.filter((c) => !registered.includes(c)),
    [],
    'listed in docs/errors.md but not in ERRORS',
  );
  assert.deepEqual(
    registered.filter((c) => !documented.includes(c)),
    [],
    'in ERRORS but missing from docs/errors.md',
  );
});

test('each documented legacy code and module matches the registry, with a meaning', () => {
  for (const row of docRows()) {
    const legacy: LegacyCode = ERRORS[row.code as ErrorCode].legacy;
    assert.equal(row.legacyCode, legacy.code, `${row.code}: legacy code`);
    assert.equal(row.module, legacy.module, `${row.code}: legacy module`);
    assert.ok(row.meaning.length > 10, `${row.code}: meaning`);
  }
});

test('the registry is well-formed: Tencent-style codes, a default message, legacy codes from §1.4', () => {
  const legacyCodes = new Set([4000, 4100, 4200, 4300, 4400, 4500, 4600, 5000, 6000, 6100, 6200]);
  for (const [code, spec] of Object.entries(ERRORS)) {
    const legacy: LegacyCode = spec.legacy;
    assert.match(code, /^[A-Z][A-Za-z]+(\.[A-Z][A-Za-z0-9]+)?$/, code);
    assert.ok(spec.message.length > 0, code);
    assert.ok(legacyCodes.has(legacy.code), `${code}: legacy code ${legacy.code}`);
    if (legacy.module !== undefined) assert.ok(Number.isInteger(legacy.module) && legacy.module > 0, code);
    const e = new ApiError(code as ErrorCode);
    assert.equal(e.message, spec.message);
    assert.deepEqual(e.legacy, spec.legacy);
  }
});
