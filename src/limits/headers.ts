import type { HTTPException } from "hono/http-exception";
import { gatewayError } from "../errors.ts";
import type { LimitName, LimitPolicy, LimitState } from "./policy.ts";

/**
 * The RateLimit header fields of draft-ietf-httpapi-ratelimit-headers (-11): one quota policy
 * per limit the client has, named after it, and what is left of each.
 *
 *   RateLimit-Policy: "rpd";q=1000;w=86400, "rpm";q=60;w=60, "concurrent";q=4;qu="concurrent-requests"
 *   RateLimit: "rpd";r=998;t=42000, "rpm";r=58;t=59, "concurrent";r=3
 */
export const RATELIMIT_POLICY = "RateLimit-Policy";
export const RATELIMIT = "RateLimit";

/** A policy's field value never changes, so it is built once per policy. */
const policyFields = new WeakMap<LimitPolicy, string>();

/** The `RateLimit-Policy` value of a client's limits. */
export function rateLimitPolicy(policy: LimitPolicy): string {
	let field = policyFields.get(policy);
	if (field === undefined) {
		const items: string[] = [];
		if (policy.rpd !== null) items.push(`"rpd";q=${policy.rpd};w=86400`);
		if (policy.rpm !== null) items.push(`"rpm";q=${policy.rpm};w=60`);
		if (policy.concurrent !== null) items.push(`"concurrent";q=${policy.concurrent};qu="concurrent-requests"`);
		// A calendar month has no fixed length: its `w` is left out (`t` on RateLimit says when it ends).
		if (policy.budget?.daily != null) items.push(`"daily_tokens";q=${policy.budget.daily};w=86400;qu="tokens"`);
		if (policy.budget?.monthly != null) items.push(`"monthly_tokens";q=${policy.budget.monthly};qu="tokens"`);
		field = items.join(", ");
		policyFields.set(policy, field);
	}
	return field;
}

/** The `RateLimit` value: what is left of each limit, and in how many seconds more comes (`t`). */
export function rateLimit(state: LimitState): string {
	const items: string[] = [];
	if (state.rpd !== null) items.push(`"rpd";r=${Math.max(0, state.rpd.remaining)};t=${seconds(state.rpd.resetMs)}`);
	if (state.rpm !== null) items.push(`"rpm";r=${Math.max(0, state.rpm.remaining)};t=${seconds(state.rpm.resetMs)}`);
	if (state.concurrent !== null) items.push(`"concurrent";r=${Math.max(0, state.concurrent.remaining)}`);
	const { dailyTokens, monthlyTokens } = state;
	if (dailyTokens != null) items.push(`"daily_tokens";r=${Math.max(0, dailyTokens.remaining)};t=${seconds(dailyTokens.resetMs)}`);
	if (monthlyTokens != null) items.push(`"monthly_tokens";r=${Math.max(0, monthlyTokens.remaining)};t=${seconds(monthlyTokens.resetMs)}`);
	return items.join(", ");
}

/** Sets both fields on an answer's headers (a `RateLimit` only when some state is known). */
export function setRateLimitHeaders(headers: Headers, policy: LimitPolicy, state: LimitState): void {
	headers.set(RATELIMIT_POLICY, rateLimitPolicy(policy));
	const current = rateLimit(state);
	if (current !== "") headers.set(RATELIMIT, current);
}

/** Whole seconds, rounded up so a client that waits this long is past the point (at least 1). */
export function seconds(ms: number): number {
	return Math.max(1, Math.ceil(ms / 1000));
}

/** The answer code of each limit's refusal. */
export const REFUSAL_CODES = {
	rpm: "rate_limited",
	rpd: "daily_quota_exhausted",
	concurrent: "too_many_in_flight",
	daily_tokens: "token_budget_exhausted",
	monthly_tokens: "token_budget_exhausted",
} as const satisfies Record<LimitName, string>;

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
