import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApiError } from '../../src/shared/errors.ts';
import { renderApi3Error, renderApi3Success } from '../../src/protocols/tc3/api3-envelope.ts';
import { renderV2Error, renderV2Success } from '../../src/protocols/v2/v2-envelope.ts';

const recorder = () => {
  const calls: [string, unknown][] = [];
  return { calls, log: (message: string, error: unknown) => void calls.push([message, error]) };
};
const noLog = (): never => assert.fail('nothing should be logged for an ApiError');
const JSON_ONLY = { 'Content-Type': 'application/json' };

describe('API 3.0 envelope (TENCENT-API §2.6)', () => {
  test('success wraps the fields and RequestId in Response; 200; Content-Type exactly application/json', () => {
    const reply = renderApi3Success({ JobId: 'j1', FailedList: [] }, 'rid-1');
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.headers, JSON_ONLY);
    assert.equal(reply.body, '{"Response":{"JobId":"j1","FailedList":[],"RequestId":"rid-1"}}');
  });

  test('an ApiError becomes Response.Error{Code,Message} next to RequestId, still 200', () => {
    const reply = renderApi3Error(new ApiError('AuthFailure.SignatureFailure'), 'rid-2', noLog);
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.headers, JSON_ONLY);
    assert.deepEqual(JSON.parse(reply.body), {
      Response: {
        Error: {
          Code: 'AuthFailure.SignatureFailure',
          Message: 'The provided credentials could not be validated. Please check your signature is correct.',
        },
        RequestId: 'rid-2',
      },
    });
  });

  test('an unknown error is logged with its cause and leaves as a generic InternalError (no stack leak)', () => {
    const { calls, log } = recorder();
    const boom = new Error('db password is hunter2', { cause: new Error('ECONNREFUSED') });
    const reply = renderApi3Error(boom, 'rid-3', log);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]![1], boom);
    assert.match(calls[0]![0], /rid-3/);
    assert.deepEqual(JSON.parse(reply.body), {
      Response: { Error: { Code: 'InternalError', Message: 'An internal error occurred.' }, RequestId: 'rid-3' },
    });
    assert.doesNotMatch(reply.body, /hunter2|ECONNREFUSED|at /);
  });

  test('a thrown non-Error is handled too', () => {
    const { calls, log } = recorder();
    assert.match(renderApi3Error('string thrown', 'r', log).body, /InternalError/);
    assert.equal(calls.length, 1);
  });
});

describe('legacy v2 envelope (TENCENT-API §1.4)', () => {
  test('success with and without data', () => {
    assert.equal(renderV2Success().body, '{"retcode":0,"errmsg":"ok","code":0,"message":"","codeDesc":"Success"}');
    const reply = renderV2Success({ count: 1, task_id: '1480069888795584532' });
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.headers, JSON_ONLY);
    assert.equal(reply.body, '{"retcode":0,"errmsg":"ok","code":0,"message":"","codeDesc":"Success","data":{"count":1,"task_id":"1480069888795584532"}}');
  });

  test('an error with a module code: "(NNNN)text" and codeDesc = the module code', () => {
    const reply = renderV2Error(new ApiError('ResourceNotFound.CdnHostNotExists'), noLog);
    assert.deepEqual(JSON.parse(reply.body), { code: 4000, message: '(9110)cdn no such host', codeDesc: '9110' });
    const custom = renderV2Error(new ApiError('MissingParameter', 'Missing required parameter(s): Nonce.'), noLog);
    assert.deepEqual(JSON.parse(custom.body), { code: 4000, message: '(9003)Missing required parameter(s): Nonce.', codeDesc: '9003' });
  });

  test('an error without a module code: plain text and the dotted API 3.0 code', () => {
    for (const [code, legacy] of [
      ['AuthFailure.SignatureFailure', 4100],
      ['AuthFailure.SignatureExpire', 4200],
      ['AuthFailure.ReplayAttack', 4500],
      ['UnsupportedProtocol', 4600],
    ] as const) {
      const err = new ApiError(code);
      assert.deepEqual(JSON.parse(renderV2Error(err, noLog).body), { code: legacy, message: err.message, codeDesc: code });
    }
  });

  test('an unknown error is logged and answered as 6000', () => {
    const { calls, log } = recorder();
    const reply = renderV2Error(new TypeError('x is undefined'), log);
    assert.equal(calls.length, 1);
    assert.equal(reply.status, 200);
    assert.deepEqual(JSON.parse(reply.body), { code: 6000, message: 'An internal error occurred.', codeDesc: 'InternalError' });
  });
});
