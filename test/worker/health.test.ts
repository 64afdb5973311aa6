import { describe, expect, it } from "vitest";
import { harness, signedRequest } from "./harness.ts";

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
		expect(text).toMatch(/^agent_replay_store_degraded\{aggregation="isolate",isolate="[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"\} 1$/m);
	});

	it("in production with an empty METRICS_TOKEN, answers anonymous callers with the status only", async () => {
		const h = harness({ METRICS_TOKEN: "" }, { aggregator: true });
		const response = await h.fetch(new Request("https://gateway.test/healthz"));
		expect(await response.json()).toEqual({ status: "ok" });
	});

	it("outside production with no METRICS_TOKEN, gives the details to anyone (development convenience)", async () => {
		const h = harness({ ENVIRONMENT: "development", METRICS_TOKEN: "" }, { aggregator: true });
		const response = await h.fetch(new Request("https://gateway.test/healthz"));
		expect(await response.json()).toMatchObject({ status: "ok", replay: { store: "upstash" } });
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
