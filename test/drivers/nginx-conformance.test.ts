// The nginx driver against a real nginx + ngx_cache_purge: the EdgeDriver conformance suite, the same
// one the Varnish driver passes (nginx-driver.test.ts has what only nginx promises).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { driverConformance } from './driver-conformance.ts';
import { nginxMissing, startNginxConformanceHarness } from './nginx-harness.ts';

const missing = nginxMissing();

if (missing !== undefined && process.env.CI === 'true') {
  it('nginx is installed (CI installs nginx and libnginx-mod-http-cache-purge in .ci/run)', () => {
    assert.fail(`the nginx conformance tests need nginx: ${missing}`);
  });
} else if (missing !== undefined) {
  console.warn(`\n*** nginx conformance tests SKIPPED: ${missing} ***\n`);
  describe('nginx driver conformance', { skip: `SKIPPED — nginx is not available: ${missing}` }, () => {});
} else {
  driverConformance('nginx', () => startNginxConformanceHarness());
}
