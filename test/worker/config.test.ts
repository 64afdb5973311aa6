import { describe, expect, it } from "vitest";
import { errorBody, harness, SECRET, signedRequest } from "./harness.ts";

describe("configuration (SPEC section 7)", () => {
	it.each([
		[{ HMAC_MAX_SKEW_MS: "abc" }, "HMAC_MAX_SKEW_MS is not a whole number"],
		[{ REDIS_REPLAY_TTL: "0" }, "REDIS_REPLAY_TTL must be at least 1"],
		[{ HMAC_CLIENTS: '{"svc": "s3cr3t-in-broken-json' }, "HMAC_CLIENTS is not valid JSON"],
		[{ HMAC_CLIENTS: '{"svc": ["a","b","c","d"]}' }, "HMAC_CLIENTS must map each client id"],
		[{ REPLAY_FAIL_MODE: "open" }, "REPLAY_FAIL_MODE must be memory or closed"],
		[{ ORIGIN_URL: "" }, "ORIGIN_URL is required"],
		[{ ORIGIN_URL: "ftp://x" }, "ORIGIN_URL is not an http(s) URL"],
		[{ METRICS_FLUSH_MS: "30000" }, "METRICS_FLUSH_MS must be between 100 and 25000"],
		[{ UPSTASH_REDIS_REST_TOKEN: "" }, "UPSTASH_REDIS_REST_TOKEN is required"],
		[{ HMAC_SECRET: "a,,b" }, "HMAC_SECRET has an empty entry"],
	])("500 config_error naming the variable for %j, never the value", async (overrides, expected) => {
		const h = harness(overrides as Record<string, string>);
		for (const request of [await signedRequest(), new Request("https://gateway.test/healthz")]) {
			const response = await h.fetch(request);
			expect(response.status).toBe(500);
			const body = await errorBody(response);
			expect(body.code).toBe("config_error");
			expect(body.detail).toContain(expected);
			for (const value of Object.values(overrides)) if (value.length > 3) expect(body.detail).not.toContain(value);
		}
		const logged = h.logs.filter((line) => line.message === "invalid configuration");
		expect(logged).toHaveLength(1);
		expect(String(logged[0]?.fields.problems)).toContain(expected);
		expect(JSON.stringify(h.logs)).not.toContain(SECRET);
		expect(JSON.stringify(h.logs)).not.toContain("s3cr3t");
	});
});
