import { describe, expect, it } from "vitest";
import { rateLimitInfo } from "./index.ts";

const answer = (headers: Record<string, string>) => ({ headers: new Headers(headers) });

describe("rateLimitInfo()", () => {
	it("reads Retry-After in seconds and the RateLimit field of the gateway's 429", () => {
		const info = rateLimitInfo(answer({ "Retry-After": "13", RateLimit: '"rpd";r=998;t=42000, "rpm";r=0;t=13, "concurrent";r=3' }));
		expect(info).toEqual({
			retryAfterMs: 13_000,
			limits: { rpd: { remaining: 998, resetSeconds: 42_000 }, rpm: { remaining: 0, resetSeconds: 13 }, concurrent: { remaining: 3, resetSeconds: null } },
			tokensRemaining: null,
		});
	});

	it("reads Retry-After as an HTTP date, never below 0", () => {
		const now = Date.UTC(2026, 11, 2, 12, 0, 0);
		expect(rateLimitInfo(answer({ "Retry-After": "Wed, 02 Dec 2026 12:00:30 GMT" }), now).retryAfterMs).toBe(30_000);
		expect(rateLimitInfo(answer({ "Retry-After": "Wed, 02 Dec 2026 11:00:00 GMT" }), now).retryAfterMs).toBe(0);
	});

	it("an answer without the fields, or with ones it cannot read, gives nothing rather than a guess", () => {
		expect(rateLimitInfo(answer({}))).toEqual({ retryAfterMs: null, limits: {}, tokensRemaining: null });
		expect(rateLimitInfo(answer({ "Retry-After": "soon", RateLimit: 'rpm;r=1, "x";t=5, "y";r=-1, "z";r=2;t=later' }))).toEqual({
			retryAfterMs: null,
			limits: { z: { remaining: 2, resetSeconds: null } },
			tokensRemaining: null,
		});
	});

	it("reads the token budgets of a 429 token_budget_exhausted: Retry-After to the window's end, the fewest tokens left", () => {
		const info = rateLimitInfo(
			answer({ "Retry-After": "38112", RateLimit: '"daily_tokens";r=0;t=38112, "monthly_tokens";r=912000;t=1594512, "rpm";r=59;t=60' }),
		);
		expect(info).toEqual({
			retryAfterMs: 38_112_000,
			limits: {
				daily_tokens: { remaining: 0, resetSeconds: 38_112 },
				monthly_tokens: { remaining: 912_000, resetSeconds: 1_594_512 },
				rpm: { remaining: 59, resetSeconds: 60 },
			},
			tokensRemaining: 0,
		});
	});

	it("tokensRemaining is the smaller budget, whichever comes first, and ignores request limits", () => {
		const left = (value: string) => rateLimitInfo(answer({ RateLimit: value })).tokensRemaining;
		expect(left('"monthly_tokens";r=700;t=99, "daily_tokens";r=4000;t=9')).toBe(700);
		expect(left('"daily_tokens";r=12;t=9, "monthly_tokens";r=700;t=99')).toBe(12);
		expect(left('"daily_tokens";r=4096;t=9')).toBe(4096);
		expect(left('"rpd";r=0;t=9, "concurrent";r=0')).toBeNull();
	});
});
