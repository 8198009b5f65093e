import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  constantTimeEqual,
  hmacMethodOf,
  hmacParamString,
  hmacSign,
  hmacStringToSign,
  signingName,
  verifyHmacSignature,
} from '../../src/protocols/hmac-signature.ts';

describe('TENCENT-API §1.3 test vectors', () => {
  const cdnKey = 'pxPgRWDbCy86ZYyqBTDk7WmeRZSmPco0';
  const cdnParams = {
    Action: 'DescribeCdnHosts',
    Nonce: '13029',
    SecretId: 'AKIDT8G5AsY1D3MChWooNq1rFSw1fyBVCX9D',
    Timestamp: '1463122059',
    offset: '0',
    limit: '10',
  };
  const cdnString =
    'cdn.api.qcloud.com/v2/index.php?Action=DescribeCdnHosts&Nonce=13029&SecretId=AKIDT8G5AsY1D3MChWooNq1rFSw1fyBVCX9D&Timestamp=1463122059&limit=10&offset=0';

  test('DescribeCdnHosts GET, HmacSHA1', () => {
    const s = hmacStringToSign('GET', 'cdn.api.qcloud.com', '/v2/index.php', cdnParams, 'HmacSHA1');
    assert.equal(s, `GET${cdnString}`);
    assert.equal(hmacSign(cdnKey, s, 'HmacSHA1'), 'bWMMAR1eFGjZ5KWbfxTlBiLiNLc=');
  });

  test('DescribeCdnHosts POST, HmacSHA1', () => {
    const s = hmacStringToSign('post', 'cdn.api.qcloud.com', '/v2/index.php', cdnParams, 'HmacSHA1');
    assert.equal(s, `POST${cdnString}`);
    assert.equal(hmacSign(cdnKey, s, 'HmacSHA1'), 'i/KcLp6VaOtUmVtT0dqtLpKJOkg=');
  });

  test('DescribeCdnHosts GET, HmacSHA256', () => {
    const params = { ...cdnParams, Nonce: '48059', Timestamp: '1502197934', SignatureMethod: 'HmacSHA256' };
    const s = hmacStringToSign('GET', 'cdn.api.qcloud.com', '/v2/index.php', params, 'HmacSHA256');
    assert.equal(
      s,
      'GETcdn.api.qcloud.com/v2/index.php?Action=DescribeCdnHosts&Nonce=48059&SecretId=AKIDT8G5AsY1D3MChWooNq1rFSw1fyBVCX9D&SignatureMethod=HmacSHA256&Timestamp=1502197934&limit=10&offset=0',
    );
    assert.equal(hmacSign(cdnKey, s, 'HmacSHA256'), 'b/HlnO7vWEtR/kf21BvF0fX4vGmIThwWxlaD5GQtlSM=');
  });

  const cvmKey = 'Gu5t9xGARNpq86cd98joQYCN3Cozk1qA';
  const cvmParams = {
    Action: 'DescribeInstances',
    InstanceIds_0: 'ins-09dx96dg', // PHP-style underscore: signed as InstanceIds.0
    Nonce: '11886',
    Region: 'ap-guangzhou',
    SecretId: 'AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA',
    Timestamp: '1465185768',
  };

  test('DescribeInstances, SignatureMethod=HmacSHA1', () => {
    const params = { ...cvmParams, SignatureMethod: 'HmacSHA1' };
    const s = hmacStringToSign('GET', 'cvm.api.qcloud.com', '/v2/index.php', params, 'HmacSHA1');
    assert.equal(
      s,
      'GETcvm.api.qcloud.com/v2/index.php?Action=DescribeInstances&InstanceIds.0=ins-09dx96dg&Nonce=11886&Region=ap-guangzhou&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA&SignatureMethod=HmacSHA1&Timestamp=1465185768',
    );
    assert.equal(hmacSign(cvmKey, s, 'HmacSHA1'), 'nPVnY6njQmwQ8ciqbPl5Qe+Oru4=');
  });

  test('DescribeInstances, SignatureMethod=HmacSHA256', () => {
    const params = { ...cvmParams, SignatureMethod: 'HmacSHA256' };
    const s = hmacStringToSign('GET', 'cvm.api.qcloud.com', '/v2/index.php', params, 'HmacSHA256');
    assert.equal(hmacSign(cvmKey, s, 'HmacSHA256'), '0EEm/HtGRr/VJXTAD9tYMth1Bzm3lLHz5RCDv1GdM8s=');
  });

  test('§1.9 qcloudapi wire example: raw values, empty Region=, host with port', () => {
    const s = hmacStringToSign(
      'POST',
      '127.0.0.1:18080',
      '/v2/index.php',
      {
        Region: '',
        SecretId: 'AKID',
        Timestamp: '1',
        Nonce: '2',
        RequestClient: 'SDK_NODEJS_0.2.1',
        Action: 'RefreshCdnUrl',
        'urls.0': 'https://www.example.com/a b.jpg',
        'urls.1': 'https://www.example.com/中文.jpg',
        Signature: 'ignored',
      },
      'HmacSHA1',
    );
    assert.equal(
      s,
      'POST127.0.0.1:18080/v2/index.php?Action=RefreshCdnUrl&Nonce=2&Region=&RequestClient=SDK_NODEJS_0.2.1&SecretId=AKID&Timestamp=1&urls.0=https://www.example.com/a b.jpg&urls.1=https://www.example.com/中文.jpg',
    );
  });
});

describe('key rules', () => {
  test('`_` becomes `.`, but a key starting with `_` keeps its underscores (qcloudapi-sdk)', () => {
    assert.equal(signingName('urls_0'), 'urls.0');
    assert.equal(signingName('Filters_0_Values_1'), 'Filters.0.Values.1');
    assert.equal(signingName('_internal_flag'), '_internal_flag');
  });

  test('ASCII order: InstanceIds.12 sorts before InstanceIds.2, uppercase before lowercase', () => {
    assert.equal(
      hmacParamString({ 'InstanceIds.2': 'b', 'InstanceIds.12': 'a', limit: '1', Action: 'X' }),
      'Action=X&InstanceIds.12=a&InstanceIds.2=b&limit=1',
    );
  });

  test('key styles differ only when keys carry `_`', () => {
    const params = { a_b: '1', 'a.c': '2' };
    assert.equal(hmacParamString(params, 'dotted'), 'a.b=1&a.c=2');
    assert.equal(hmacParamString(params, 'qcloudapi'), 'a.c=2&a.b=1');
    assert.equal(hmacParamString(params, 'raw'), 'a.c=2&a_b=1');
  });

  test('SignatureMethod: absent/empty → HmacSHA1, unknown → undefined', () => {
    assert.equal(hmacMethodOf(undefined), 'HmacSHA1');
    assert.equal(hmacMethodOf(''), 'HmacSHA1');
    assert.equal(hmacMethodOf('HmacSHA256'), 'HmacSHA256');
    assert.equal(hmacMethodOf('TC2-HmacSHA256'), 'TC2-HmacSHA256');
    assert.equal(hmacMethodOf('hmacsha256'), undefined);
  });
});

describe('verifyHmacSignature', () => {
  const base = { secretKey: 'k', httpMethod: 'GET', host: 'h:1', path: '/', method: 'HmacSHA256' as const };
  const params = { Action: 'A', Nonce: '1', 'urls.0': 'x' };
  const good = hmacSign('k', hmacStringToSign('GET', 'h:1', '/', params, 'HmacSHA256'), 'HmacSHA256');

  test('accepts the right signature and ignores the Signature param itself', () => {
    assert.equal(verifyHmacSignature({ ...base, params: { ...params, Signature: good }, signature: good }).ok, true);
  });

  test('forged: a changed value, host, method or key fails', () => {
    assert.equal(verifyHmacSignature({ ...base, params: { ...params, 'urls.0': 'y' }, signature: good }).ok, false);
    assert.equal(verifyHmacSignature({ ...base, host: 'h', params, signature: good }).ok, false);
    assert.equal(verifyHmacSignature({ ...base, httpMethod: 'POST', params, signature: good }).ok, false);
    assert.equal(verifyHmacSignature({ ...base, secretKey: 'k2', params, signature: good }).ok, false);
    assert.equal(verifyHmacSignature({ ...base, params, signature: '' }).ok, false);
  });

  test('the Node SDK v1 signer (raw keys) and the documented rule both verify', () => {
    const p = { Action: 'A', Some_Key: 'v' };
    const raw = hmacSign('k', hmacStringToSign('GET', 'h:1', '/', p, 'HmacSHA256', 'raw'), 'HmacSHA256');
    const dotted = hmacSign('k', hmacStringToSign('GET', 'h:1', '/', p, 'HmacSHA256', 'dotted'), 'HmacSHA256');
    assert.notEqual(raw, dotted);
    assert.equal(verifyHmacSignature({ ...base, params: p, signature: raw }).ok, true);
    assert.equal(verifyHmacSignature({ ...base, params: p, signature: dotted }).ok, true);
    assert.equal(verifyHmacSignature({ ...base, params: p, signature: raw, styles: ['dotted'] }).ok, false);
  });

  test('constantTimeEqual', () => {
    assert.equal(constantTimeEqual('abc', 'abc'), true);
    assert.equal(constantTimeEqual('abc', 'abd'), false);
    assert.equal(constantTimeEqual('abc', 'abcd'), false);
  });
});
