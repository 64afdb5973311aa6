import { describe, expect, it } from "vitest";
import { errorBody } from "../../test/worker/harness.ts";
import { rateLimit, rateLimitPolicy, seconds, setRateLimitHeaders } from "./headers.ts";
import type { LimitPolicy } from "./policy.ts";
import { limitRefusal } from "./headers.ts";

const ALL: LimitPolicy = { rpm: 60, rpd: 1000, concurrent: 4, label: "" };

describe("RateLimit header fields (draft-ietf-httpapi-ratelimit-headers-11)", () => {
	it("RateLimit-Policy names one policy per limit the client has, as Structured Field strings with q, w and qu", () => {
		expect(rateLimitPolicy(ALL)).toBe('"rpd";q=1000;w=86400, "rpm";q=60;w=60, "concurrent";q=4;qu="concurrent-requests"');
		expect(rateLimitPolicy({ rpm: 5, rpd: null, concurrent: null, label: "" })).toBe('"rpm";q=5;w=60');
	});

	it("a token budget's policies: the day's with w, the month's without (no fixed length), each its own quota", () => {
		const budgeted: LimitPolicy = { rpm: null, rpd: null, concurrent: null, label: "", budget: { daily: 1_000, monthly: 20_000, hold: 100 } };
		expect(rateLimitPolicy(budgeted)).toBe('"daily_tokens";q=1000;w=86400;qu="tokens", "monthly_tokens";q=20000;qu="tokens"');
		const state = { rpm: null, rpd: null, concurrent: null, dailyTokens: { remaining: 900, resetMs: 1_500 }, monthlyTokens: { remaining: 19_900, resetMs: 86_400_000 } };
		expect(rateLimit(state)).toBe('"daily_tokens";r=900;t=2, "monthly_tokens";r=19900;t=86400');
	});

	it("RateLimit gives what is left (r) and the seconds until more comes (t), rounded up, never below 0 left", () => {
		const state = { rpd: { remaining: 998, resetMs: 41_999_001 }, rpm: { remaining: 58, resetMs: 59_001 }, concurrent: { remaining: 3 } };
		expect(rateLimit(state)).toBe('"rpd";r=998;t=42000, "rpm";r=58;t=60, "concurrent";r=3');
		expect(rateLimit({ rpm: { remaining: -1, resetMs: 1 }, rpd: null, concurrent: null })).toBe('"rpm";r=0;t=1');
		const over = { rpd: { remaining: -2, resetMs: 1 }, rpm: null, concurrent: { remaining: -1 }, dailyTokens: { remaining: -5, resetMs: 1 }, monthlyTokens: { remaining: -5, resetMs: 1 } };
		expect(rateLimit(over)).toBe('"rpd";r=0;t=1, "concurrent";r=0, "daily_tokens";r=0;t=1, "monthly_tokens";r=0;t=1');
		expect(rateLimit({ rpm: null, rpd: null, concurrent: null })).toBe("");
	});

	it("seconds: whole, rounded up, at least 1", () => {
		expect([seconds(0), seconds(1), seconds(999), seconds(1000), seconds(1001), seconds(60_000)]).toEqual([1, 1, 1, 1, 2, 60]);
	});

	it("setRateLimitHeaders leaves RateLimit out when nothing is known", () => {
		const headers = new Headers();
		setRateLimitHeaders(headers, ALL, { rpm: null, rpd: null, concurrent: null });
		expect([...headers]).toEqual([["ratelimit-policy", rateLimitPolicy(ALL)]]);
	});
});

describe("the 429 answer", () => {
	it.each([
		["rpm", "rate_limited"],
		["rpd", "daily_quota_exhausted"],
		["concurrent", "too_many_in_flight"],
		["daily_tokens", "token_budget_exhausted"],
		["monthly_tokens", "token_budget_exhausted"],
	] as const)("%s: 429 %s with Retry-After in whole seconds and both fields", async (limit, code) => {
		const state = { rpm: { remaining: 0, resetMs: 12_345 }, rpd: null, concurrent: null };
		const response = limitRefusal(limit, 12_345, ALL, state).getResponse();
		expect(response.status).toBe(429);
		expect((await errorBody(response)).code).toBe(code);
		expect(response.headers.get("retry-after")).toBe("13");
		expect(response.headers.get("ratelimit-policy")).toBe(rateLimitPolicy(ALL));
		expect(response.headers.get("ratelimit")).toBe('"rpm";r=0;t=13');
	});

	it("with nothing known of what is left, the 429 has RateLimit-Policy but no RateLimit", () => {
		const response = limitRefusal("rpm", 1_000, ALL, { rpm: null, rpd: null, concurrent: null }).getResponse();
		expect(response.headers.get("ratelimit-policy")).toBe(rateLimitPolicy(ALL));
		expect(response.headers.has("ratelimit")).toBe(false);
	});
});
