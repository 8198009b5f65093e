// The Varnish driver against a real varnishd: the EdgeDriver conformance suite, plus what only Varnish
// promises (only the agent purges, the lease fences Varnish by itself, fail closed on start).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { driverConformance } from './driver-conformance.ts';
import { startVarnishHarness } from './varnish-harness.ts';
import { varnishdMissing } from './varnishd.ts';

const missing = varnishdMissing();
// Only src/config and src/cli read process.env in the product; a test may ask whether it runs in CI.
const inCi = process.env.CI === 'true';

if (missing !== undefined && inCi) {
  it('varnishd is installed (CI installs varnish and varnish-modules in .ci/run)', () => {
    assert.fail(`the Varnish driver tests need varnishd: ${missing}`);
  });
} else if (missing !== undefined) {
  describe('Varnish driver', { skip: `SKIPPED — varnishd is not available: ${missing}` }, () => {});
} else {
  driverConformance('varnish', () => startVarnishHarness());
}
