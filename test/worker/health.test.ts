import { describe, expect, it } from "vitest";
import { harness, signedRequest } from "./harness.ts";

const withToken = { headers: { Authorization: "Bearer metrics-token" } };

describe("/healthz", () => {
	it("answers anonymously with the status only, and makes no subrequest", async () => {
		const h = harness({}, { aggregator: true });
		const response = await h.fetch(new Request("https://gateway.test/healthz"));
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ status: "ok" });
	});

	it("gives details with the metrics token", async () => {
		const h = harness({}, { aggregator: true });
		const response = await h.fetch(new Request("https://gateway.test/healthz", withToken));
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

	it("is never cached: anonymous and detailed answers both say Cache-Control: no-store", async () => {
		const h = harness();
		const anonymous = await h.fetch(new Request("https://gateway.test/healthz"));
		expect(anonymous.headers.get("cache-control")).toBe("no-store");
		const detailed = await h.fetch(new Request("https://gateway.test/healthz", withToken));
		expect(detailed.headers.get("cache-control")).toBe("no-store");
		expect(await detailed.json()).toMatchObject({ status: "ok" });
	});

	it("details of a production gateway without Upstash and without an aggregator", async () => {
		const h = harness({}, { upstash: false });
		const response = await h.fetch(new Request("https://gateway.test/healthz", withToken));
		expect(await response.json()).toEqual({
			status: "degraded",
			replay: { store: "memory", upstash_configured: false, degraded: true, breaker: "closed" },
			aggregator: { reachable: false },
		});
	});

	it("details name the open breaker after Upstash failed REPLAY_BREAKER_FAILURES times", async () => {
		const h = harness({ REPLAY_BREAKER_FAILURES: "2" });
		h.redis.answer = async () => {
			throw new Error("down");
		};
		expect((await h.fetch(await signedRequest({ body: '{"n":1}' }))).status).toBe(200);
		const afterOne = (await (await h.fetch(new Request("https://gateway.test/healthz", withToken))).json()) as { replay: { breaker: string } };
		expect(afterOne.replay.breaker).toBe("closed");
		expect((await h.fetch(await signedRequest({ body: '{"n":2}' }))).status).toBe(200);
		const response = await h.fetch(new Request("https://gateway.test/healthz", withToken));
		expect(await response.json()).toEqual({
			status: "degraded",
			replay: { store: "upstash", upstash_configured: true, degraded: true, breaker: "open" },
			aggregator: { reachable: false },
		});
	});
});
