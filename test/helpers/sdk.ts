// The official Tencent SDK clients pointed at a local server (TENCENT-API §5.1).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// The SDK packages are CommonJS without usable ESM types for our strict settings; type the few calls we make.
const teoPkg = require('tencentcloud-sdk-nodejs-teo') as { teo: { v20220901: { Client: new (cfg: unknown) => SdkClient } } };
const cdnPkg = require('tencentcloud-sdk-nodejs-cdn') as { cdn: { v20180606: { Client: new (cfg: unknown) => SdkClient } } };

/** The actions we call; replies are untyped JSON that the tests assert on field by field. */
export type SdkAction =
  | 'CreatePurgeTask' | 'DescribePurgeTasks' | 'CreatePrefetchTask' | 'DescribePrefetchTasks' | 'DescribeContentQuota'
  | 'PurgeUrlsCache' | 'PurgePathCache' | 'DescribePurgeQuota' | 'PushUrlsCache' | 'DescribePushTasks' | 'DescribePushQuota';
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- SDK replies are JSON read field by field in assertions
export type SdkReply = Record<string, any>;
export type SdkClient = Record<SdkAction, (params: Record<string, unknown>) => Promise<SdkReply>>;

export type SignMethod = 'TC3-HMAC-SHA256' | 'HmacSHA1' | 'HmacSHA256';

function clientConfig(endpoint: string, secretId: string, secretKey: string, signMethod: SignMethod, reqMethod: 'POST' | 'GET') {
  return {
    credential: { secretId, secretKey },
    region: '',
    profile: { signMethod, httpProfile: { endpoint, protocol: 'http://', reqMethod, reqTimeout: 30 } },
  };
}

export const teoClient = (endpoint: string, secretId: string, secretKey: string, signMethod: SignMethod = 'TC3-HMAC-SHA256', reqMethod: 'POST' | 'GET' = 'POST'): SdkClient =>
  new teoPkg.teo.v20220901.Client(clientConfig(endpoint, secretId, secretKey, signMethod, reqMethod));

export const cdnClient = (endpoint: string, secretId: string, secretKey: string, signMethod: SignMethod = 'TC3-HMAC-SHA256', reqMethod: 'POST' | 'GET' = 'POST'): SdkClient =>
  new cdnPkg.cdn.v20180606.Client(clientConfig(endpoint, secretId, secretKey, signMethod, reqMethod));

/** The SDK's rejection as { code, message } (TencentCloudSDKHttpException). */
export async function sdkError(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    return { code: String(err.code), message: String(err.message) };
  }
  throw new Error('expected the call to fail');
}
