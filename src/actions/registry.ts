// API 3.0 actions by (version, action). Both products have DescribePurgeTasks; the version decides.
import type { ActionHandler } from './context.ts';
import { describePurgeQuota } from './cdn/describe-purge-quota.ts';
import { describePurgeTasks as cdnDescribePurgeTasks } from './cdn/describe-purge-tasks.ts';
import { describePushQuota } from './cdn/describe-push-quota.ts';
import { describePushTasks } from './cdn/describe-push-tasks.ts';
import { purgePathCache } from './cdn/purge-path-cache.ts';
import { purgeUrlsCache } from './cdn/purge-urls-cache.ts';
import { pushUrlsCache } from './cdn/push-urls-cache.ts';
import { createPrefetchTask } from './teo/create-prefetch-task.ts';
import { createPurgeTask } from './teo/create-purge-task.ts';
import { describeContentQuota } from './teo/describe-content-quota.ts';
import { describePrefetchTasks } from './teo/describe-prefetch-tasks.ts';
import { describePurgeTasks as teoDescribePurgeTasks } from './teo/describe-purge-tasks.ts';

export const TEO_VERSION = '2022-09-01';
export const CDN_VERSION = '2018-06-06';

export const API3_ACTIONS: ReadonlyMap<string, ReadonlyMap<string, ActionHandler>> = new Map([
  [
    TEO_VERSION,
    new Map<string, ActionHandler>([
      ['CreatePurgeTask', createPurgeTask],
      ['DescribePurgeTasks', teoDescribePurgeTasks],
      ['CreatePrefetchTask', createPrefetchTask],
      ['DescribePrefetchTasks', describePrefetchTasks],
      ['DescribeContentQuota', describeContentQuota],
    ]),
  ],
  [
    CDN_VERSION,
    new Map<string, ActionHandler>([
      ['PurgeUrlsCache', purgeUrlsCache],
      ['PurgePathCache', purgePathCache],
      ['DescribePurgeTasks', cdnDescribePurgeTasks],
      ['DescribePurgeQuota', describePurgeQuota],
      ['PushUrlsCache', pushUrlsCache],
      ['DescribePushTasks', describePushTasks],
      ['DescribePushQuota', describePushQuota],
    ]),
  ],
]);
