import type { HTTPException } from "hono/http-exception";
import { gatewayError } from "../errors.ts";
import { rateLimit, rateLimitPolicy, RATELIMIT, RATELIMIT_POLICY, REFUSAL_CODES, seconds } from "./headers.ts";
import type { LimitName, LimitPolicy } from "./policy.ts";
import type { LimitState } from "./store.ts";

/**
 * The 429 of a request refused by a limit: its code (`rate_limited`, `daily_quota_exhausted`,
 * `too_many_in_flight`), `Retry-After` in seconds and the RateLimit header fields. The replay
 * key was claimed all the same: the same bytes are a replay (409) later, so the client signs
 * anew after `Retry-After`, and whoever copied them cannot have them executed.
 */
export function limitRefusal(limit: LimitName, retryAfterMs: number, policy: LimitPolicy, state: LimitState): HTTPException {
	const headers: Record<string, string> = {
		"Retry-After": String(seconds(retryAfterMs)),
		[RATELIMIT_POLICY]: rateLimitPolicy(policy),
	};
	const current = rateLimit(state);
	if (current !== "") headers[RATELIMIT] = current;
	return gatewayError(REFUSAL_CODES[limit], { headers });
}
