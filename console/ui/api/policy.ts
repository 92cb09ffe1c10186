/** Live policy validation: the publish form compiles the policy as it is typed. */
import type { PolicyCheckResult } from '../../api-types.ts';
import { request } from './http.ts';

/** Compiles a policy; an invalid one fails with an ApiError carrying the column. */
export const checkPolicy = (policy: string, newVersion?: string) =>
  request<PolicyCheckResult>('POST', '/api/policy/check', {
    policy,
    ...(newVersion ? { newVersion } : {}),
  });
