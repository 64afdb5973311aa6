import { describe, expect, it } from "vitest";
import { rateLimitInfo } from "./index.ts";

const answer = (headers: Record<string, string>) => ({ headers: new Headers(headers) });

describe("rateLimitInfo()", () => {
	it("reads Retry-After in seconds and the RateLimit field of the gateway's 429", () => {
		const info = rateLimitInfo(answer({ "Retry-After": "13", RateLimit: '"rpd";r=998;t=42000, "rpm";r=0;t=13, "concurrent";r=3' }));
		expect(info).toEqual({
			retryAfterMs: 13_000,
			limits: { rpd: { remaining: 998, resetSeconds: 42_000 }, rpm: { remaining: 0, resetSeconds: 13 }, concurrent: { remaining: 3, resetSeconds: null } },
		});
	});

	it("reads Retry-After as an HTTP date, never below 0", () => {
		const now = Date.UTC(2026, 11, 2, 12, 0, 0);
		expect(rateLimitInfo(answer({ "Retry-After": "Wed, 02 Dec 2026 12:00:30 GMT" }), now).retryAfterMs).toBe(30_000);
		expect(rateLimitInfo(answer({ "Retry-After": "Wed, 02 Dec 2026 11:00:00 GMT" }), now).retryAfterMs).toBe(0);
	});

	it("an answer without the fields, or with ones it cannot read, gives nothing rather than a guess", () => {
		expect(rateLimitInfo(answer({}))).toEqual({ retryAfterMs: null, limits: {} });
		expect(rateLimitInfo(answer({ "Retry-After": "soon", RateLimit: 'rpm;r=1, "x";t=5, "y";r=-1, "z";r=2;t=later' }))).toEqual({
			retryAfterMs: null,
			limits: { z: { remaining: 2, resetSeconds: null } },
		});
	});
});
