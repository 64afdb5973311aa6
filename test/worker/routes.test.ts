import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { errorBody, harness, SECRET, signedRequest } from "./harness.ts";

describe("routes (SPEC section 1)", () => {
	it("404 JSON for anything else", async () => {
		const h = harness();
		for (const path of ["/", "/agentx/chat", "/api/agent", "/api/chat", "/metrics/extra"]) {
			const response = await h.fetch(new Request(`https://gateway.test${path}`));
			expect(response.status, path).toBe(404);
			expect((await errorBody(response)).code).toBe("not_found");
		}
	});

	it.each(["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])("405 method_not_allowed for %s on an agent route", async (method) => {
		const h = harness();
		const response = await h.fetch(new Request("https://gateway.test/agent/chat", { method }));
		expect(response.status).toBe(405);
		expect(response.headers.get("allow")).toBe("GET, POST");
		if (method !== "HEAD") expect((await errorBody(response)).code).toBe("method_not_allowed");
		expect(h.origin.requests).toHaveLength(0);
	});

	it("the deployed entry answers through SELF with the wrangler.toml configuration", async () => {
		const health = await SELF.fetch("https://gateway.test/healthz");
		expect(health.status).toBe(200);
		// ENVIRONMENT=test without a metrics token: details are open; no Upstash: the memory store.
		expect(await health.json()).toMatchObject({ status: "ok", replay: { store: "memory", upstash_configured: false } });
		const missing = await SELF.fetch("https://gateway.test/agent/chat", { method: "POST", body: "{}" });
		expect(missing.status).toBe(401);
		expect(await missing.json()).toEqual({ detail: "X-Client-Id, X-Timestamp and X-Signature are required.", code: "missing_headers" });
	});
});

describe("/healthz", () => {
	it("answers anonymously with the status only, and makes no subrequest", async () => {
		const h = harness({}, { aggregator: true });
		const response = await h.fetch(new Request("https://gateway.test/healthz"));
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ status: "ok" });
	});

	it("gives details with the metrics token", async () => {
		const h = harness({}, { aggregator: true });
		const response = await h.fetch(new Request("https://gateway.test/healthz", { headers: { Authorization: "Bearer metrics-token" } }));
		expect(await response.json()).toEqual({
			status: "ok",
			replay: { store: "upstash", upstash_configured: true, degraded: false, breaker: "closed" },
			aggregator: { reachable: true },
		});
	});

	it("says degraded in production without Upstash (the memory store protects one isolate), ok in development", async () => {
		const production = harness({}, { upstash: false });
		expect(await (await production.fetch(new Request("https://gateway.test/healthz"))).json()).toEqual({ status: "degraded" });
		const disabled = harness({ UPSTASH_REDIS_REST_URL: "disabled" }, { upstash: false });
		expect(await (await disabled.fetch(new Request("https://gateway.test/healthz"))).json()).toEqual({ status: "degraded" });
		const development = harness({ ENVIRONMENT: "development" }, { upstash: false });
		expect(await (await development.fetch(new Request("https://gateway.test/healthz"))).json()).toEqual({ status: "ok" });
		const text = await (await production.fetch(new Request("https://gateway.test/metrics", { headers: { Authorization: "Bearer metrics-token" } }))).text();
		expect(text).toMatch(/^agent_replay_store_degraded\{aggregation="isolate",isolate="[0-9a-f]{8}"\} 1$/m);
	});

	it("says degraded while Upstash is failing", async () => {
		const h = harness();
		h.redis.answer = async () => {
			throw new Error("down");
		};
		expect((await h.fetch(await signedRequest())).status).toBe(200);
		const response = await h.fetch(new Request("https://gateway.test/healthz"));
		expect(await response.json()).toEqual({ status: "degraded" });
	});
});

describe("test modes (SPEC section 5)", () => {
	const stub = {
		reply: "This is a deterministic test reply.",
		citations: [],
		used_context: { month: null },
		tool_trace: [{ tool: "test_stub", status: "ok" }],
		model: "test-stub",
	};

	it.each(["development", "test"])("answers stub and echo without a signature when ENVIRONMENT=%s", async (environment) => {
		const h = harness({ ENVIRONMENT: environment });
		const stubbed = await h.fetch(new Request("https://gateway.test/agent/chat", { method: "POST", headers: { "X-Test-Mode": "stub" }, body: "{}" }));
		expect(stubbed.status).toBe(200);
		expect(stubbed.headers.get("x-auth-mode")).toBe("bypass");
		expect(await stubbed.json()).toEqual(stub);
		const echoed = await h.fetch(
			new Request("https://gateway.test/agent/chat", {
				method: "POST",
				headers: { "X-Test-Mode": "echo" },
				body: JSON.stringify({ messages: [{ role: "user", content: "first" }, { role: "user", content: "last one" }] }),
			}),
		);
		expect(await echoed.json()).toEqual({ ...stub, reply: "[echo] last one", tool_trace: [{ tool: "test_echo", status: "ok" }], model: "test-echo" });
		expect(h.origin.requests).toHaveLength(0);
		expect(h.redis.calls).toHaveLength(0);
	});

	it("answers stub in production only with ALLOW_TEST_STUBS=1", async () => {
		const h = harness({ ALLOW_TEST_STUBS: "1" });
		const response = await h.fetch(new Request("https://gateway.test/agent/chat", { method: "POST", headers: { "X-Test-Mode": "stub" }, body: "{}" }));
		expect(response.status).toBe(200);
	});

	it.each([{}, { ENVIRONMENT: "staging" }, { ENVIRONMENT: "" }])("ignores the header in production-like settings %j", async (overrides) => {
		const h = harness(overrides);
		const unsigned = await h.fetch(new Request("https://gateway.test/agent/chat", { method: "POST", headers: { "X-Test-Mode": "stub" }, body: "{}" }));
		expect(unsigned.status).toBe(401);
		const signed = await h.fetch(await signedRequest({ headers: { "X-Test-Mode": "stub" } }));
		expect(signed.status).toBe(200);
		expect(signed.headers.get("x-auth-mode")).toBe("hmac");
		expect(h.origin.requests).toHaveLength(1);
	});
});

describe("configuration (SPEC section 7)", () => {
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
