import { describe, expect, it } from "vitest";
import { errorBody, harness, SECRET, signedRequest } from "./harness.ts";

describe("configuration (docs/design.md, \"Configuration\")", () => {
	it.each([
		[{ HMAC_MAX_SKEW_MS: "abc" }, "HMAC_MAX_SKEW_MS is not a whole number"],
		[{ REDIS_REPLAY_TTL: "0" }, "REDIS_REPLAY_TTL must be at least 1"],
		[{ HMAC_CLIENTS: '{"svc": "s3cr3t-in-broken-json' }, "HMAC_CLIENTS is not valid JSON"],
		[{ HMAC_CLIENTS: '{"svc": ["a","b","c","d"]}' }, "HMAC_CLIENTS lists more than 3 secrets for a client"],
		[{ HMAC_CLIENTS: '{"svc": []}' }, "HMAC_CLIENTS must map each client id"],
		[{ HMAC_SECRET: "one-character-secrets-are-refused".slice(0, 1) }, "HMAC_SECRET has a secret shorter than 32 characters"],
		[{ ENVIRONMENT: "Production", HMAC_MAX_SKEW_MS: "86400000" }, "HMAC_MAX_SKEW_MS is over 3600000"],
		[{ ENVIRONMENT: "staging", ORIGIN_URL: "http://origin.internal.example" }, "ORIGIN_URL is plain http on a host that is not loopback"],
		[{ REPLAY_FAIL_MODE: "open" }, "REPLAY_FAIL_MODE must be memory or closed"],
		[{ ORIGIN_URL: "" }, "ORIGIN_URL is required"],
		[{ ORIGIN_URL: "ftp://x" }, "ORIGIN_URL is not an http(s) URL"],
		[{ METRICS_FLUSH_MS: "30000" }, "METRICS_FLUSH_MS must be between 100 and 25000"],
		[{ UPSTASH_REDIS_REST_TOKEN: "" }, "UPSTASH_REDIS_REST_TOKEN is required"],
		[{ HMAC_SECRET: "a,,b" }, "HMAC_SECRET has an empty entry"],
		[{ HMAC_CLIENTS: '{"alice": "s3cr3t-of-alice-32-characters-long", "Alice": "s3cr3t-of-Alice-32-characters-long"}' }, "HMAC_CLIENTS names two client ids that differ only in letter case"],
		[{ ORIGIN_URL: "HTTP://origin.example.com" }, "ORIGIN_URL is plain http on a host that is not loopback"],
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

	it.each(["Production", "prod", "staging"])("ENVIRONMENT=%s is production: without METRICS_TOKEN, /metrics and the /healthz details are closed, and the warnings are logged once", async (environment) => {
		const h = harness({ ENVIRONMENT: environment, METRICS_TOKEN: "", ORIGIN_TOKEN: "" });
		const metrics = await h.fetch(new Request("https://gateway.test/metrics"));
		expect(metrics.status).toBe(500);
		expect((await errorBody(metrics)).code).toBe("config_error");
		expect(await (await h.fetch(new Request("https://gateway.test/healthz"))).json()).toEqual({ status: "ok" });
		await h.fetch(new Request("https://gateway.test/healthz"));
		expect(h.logs.filter((line) => line.level === "warn").map((line) => line.message)).toEqual([
			"METRICS_TOKEN is not set: it is required in production, and /metrics answers 500 config_error without it",
			"ORIGIN_TOKEN is not set: the origin cannot tell gateway traffic from direct calls",
		]);
	});

	it("development takes a production refusal with a warning, logged once", async () => {
		const h = harness({ ENVIRONMENT: "development", HMAC_SECRET: "dev" });
		const request = await signedRequest({ secret: "dev" });
		expect((await h.fetch(request)).status).toBe(200);
		await h.fetch(new Request("https://gateway.test/healthz"));
		expect(h.logs.filter((line) => line.level === "warn").map((line) => line.message)).toEqual([
			"HMAC_SECRET has a secret shorter than 32 characters (refused in production)",
		]);
	});
});
