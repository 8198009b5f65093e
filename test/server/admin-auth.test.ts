// HTTP Basic on the admin endpoint (GET /admin/v1/jobs/JOBID): RFC 7617 parsing and the account wall.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseBasicAuth } from '../../src/server/admin-routes.ts';
import { secretsEqual } from '../../src/protocols/hmac-signature.ts';
import { ACME, GLOBEX, startControlPlane } from '../helpers/control-plane.ts';
import { assertOk, config, rawCall, TEO } from '../api3/fixtures.ts';

const basic = (credentials: string, scheme = 'Basic') => `${scheme} ${Buffer.from(credentials, 'utf8').toString('base64')}`;

describe('admin Basic auth', () => {
  test('splits at the first colon only (RFC 7617): SecretId:SecretKey:anything is refused', async (t) => {
    const s = await startControlPlane(t, config());
    const { JobId } = assertOk(await rawCall(s, ACME, { action: 'CreatePurgeTask', version: TEO, body: { ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/a`] } }));
    const get = (authorization?: string) =>
      fetch(`${s.url}/admin/v1/jobs/${String(JobId)}`, authorization === undefined ? {} : { headers: { Authorization: authorization } });

    const ok = await get(basic(`${ACME.secretId}:${ACME.secretKey}`));
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { JobId: string }).JobId, JobId);
    assert.equal((await get(basic(`${ACME.secretId}:${ACME.secretKey}`, 'basic'))).status, 200, 'the scheme name is case-insensitive');

    for (const refused of [
      basic(`${ACME.secretId}:${ACME.secretKey}:anything`),
      basic(`${ACME.secretId}:${ACME.secretKey}:`),
      basic(`${ACME.secretId}:${ACME.secretKey.slice(0, -1)}`),
      basic(`${ACME.secretId}:`),
      basic(ACME.secretId),
      basic(`AKIDnobody000000:${ACME.secretKey}`),
      'Basic !!!not-base64!!!',
      `Bearer ${ACME.secretKey}`,
      undefined,
    ]) {
      const res = await get(refused);
      assert.equal(res.status, 401, `${refused} was accepted`);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Basic /);
    }
    // Another account's valid key sees no such job (DESIGN invariant 7).
    assert.equal((await get(basic(`${GLOBEX.secretId}:${GLOBEX.secretKey}`))).status, 404);
  });

  test('parseBasicAuth keeps colons in the password', () => {
    assert.deepEqual(parseBasicAuth(basic('id:a:b:c')), { userId: 'id', password: 'a:b:c' });
    assert.deepEqual(parseBasicAuth(basic('id:')), { userId: 'id', password: '' });
    assert.equal(parseBasicAuth(basic('no-colon')), undefined);
    assert.equal(parseBasicAuth('Basic'), undefined);
    assert.equal(parseBasicAuth(undefined), undefined);
  });

  test('secretsEqual compares secrets of any lengths', () => {
    assert.equal(secretsEqual('abc', 'abc'), true);
    assert.equal(secretsEqual('abc', 'abd'), false);
    assert.equal(secretsEqual('abc', 'abc:'), false);
    assert.equal(secretsEqual('', ''), true);
  });
});
