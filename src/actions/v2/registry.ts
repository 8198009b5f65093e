// Legacy CDN API v2 actions by name (TENCENT-API §1): refresh, refresh history, and preheat.
import type { ActionHandler } from '../context.ts';
import { cdnUrlPusher } from './cdn-url-pusher.ts';
import { getCdnRefreshLog } from './get-cdn-refresh-log.ts';
import { getPushLogs } from './get-push-logs.ts';
import { refreshCdnDir } from './refresh-cdn-dir.ts';
import { refreshCdnUrl } from './refresh-cdn-url.ts';

export const V2_ACTIONS: ReadonlyMap<string, ActionHandler> = new Map<string, ActionHandler>([
  ['RefreshCdnUrl', refreshCdnUrl],
  ['RefreshCdnDir', refreshCdnDir],
  ['GetCdnRefreshLog', getCdnRefreshLog],
  ['CdnUrlPusher', cdnUrlPusher],
  ['GetPushLogs', getPushLogs],
]);
