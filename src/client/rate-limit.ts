/**
 * What a gateway answer says about the client's limits (docs/design.md, "Per-client limits") and
 * token budgets (docs/design.md, "Token budgets"): `Retry-After` on a 429 (and a 503), and the
 * `RateLimit` field (draft-ietf-httpapi-ratelimit-headers) on every answer to a limited client,
 * so a client can slow down before it is refused.
 */

/** The `RateLimit` policies of token budgets: tokens per UTC day and per UTC calendar month. */
const TOKEN_BUDGETS = ["daily_tokens", "monthly_tokens"] as const;

/** One quota policy's current service limit, from the `RateLimit` field. */
export interface ServiceLimit {
	/** Requests (or, for `concurrent`, slots) left. */
	remaining: number;
	/** Seconds until more comes, when the gateway says. */
	resetSeconds: number | null;
}

export interface RateLimitInfo {
	/** How long to wait before sending again (signed anew), in milliseconds; null without `Retry-After`. */
	retryAfterMs: number | null;
	/** By policy name: `rpm`, `rpd`, `concurrent`, `daily_tokens`, `monthly_tokens`. Empty when the answer carries no `RateLimit`. */
	limits: Record<string, ServiceLimit>;
	/**
	 * The fewest tokens left in any of the client's token budgets: the most its next request can
	 * be given (0 after a 429 `token_budget_exhausted`). Null when the answer names no token budget.
	 */
	tokensRemaining: number | null;
}

/**
 * Reads `Retry-After` (delta-seconds or an HTTP date) and `RateLimit` from an answer.
 *
 * @example
 * ```ts
 * const response = await fetch(url, { method: "POST", headers, body });
 * if (response.status === 429) {
 *   // token_budget_exhausted waits until the window's end: hours, not seconds.
 *   const { retryAfterMs } = rateLimitInfo(response);
 *   await new Promise((resolve) => setTimeout(resolve, retryAfterMs ?? 1000));
 *   // then sign again: a fresh timestamp (v1) or nonce (v2)
 * }
 * ```
 */
export function rateLimitInfo(response: { headers: Headers }, now: number = Date.now()): RateLimitInfo {
	const limits = parseRateLimit(response.headers.get("ratelimit"));
	return { retryAfterMs: retryAfterMs(response.headers.get("retry-after"), now), limits, tokensRemaining: tokensRemaining(limits) };
}

function tokensRemaining(limits: Record<string, ServiceLimit>): number | null {
	let fewest: number | null = null;
	for (const name of TOKEN_BUDGETS) {
		const remaining = limits[name]?.remaining;
		if (remaining !== undefined && (fewest === null || remaining < fewest)) fewest = remaining;
	}
	return fewest;
}

function retryAfterMs(value: string | null, now: number): number | null {
	if (value === null) return null;
	const text = value.trim();
	if (/^[0-9]{1,10}$/.test(text)) return Number(text) * 1000;
	const date = Date.parse(text);
	return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/** `"rpm";r=58;t=60, "concurrent";r=3` into `{rpm: {remaining: 58, resetSeconds: 60}, ...}`; skips what it cannot read. */
function parseRateLimit(value: string | null): Record<string, ServiceLimit> {
	const limits: Record<string, ServiceLimit> = {};
	if (value === null) return limits;
	for (const item of value.split(",")) {
		const match = /^\s*"([^"\\]*)"((?:;[a-z*][a-z0-9_.*-]*=[^;]*)*)\s*$/.exec(item);
		if (match === null) continue;
		const parameters = new Map(match[2]!.split(";").slice(1).map((pair) => pair.split("=", 2) as [string, string]));
		const remaining = parameters.get("r");
		if (remaining === undefined || !/^[0-9]+$/.test(remaining)) continue;
		const reset = parameters.get("t");
		limits[match[1]!] = { remaining: Number(remaining), resetSeconds: reset !== undefined && /^[0-9]+$/.test(reset) ? Number(reset) : null };
	}
	return limits;
}
