import { describe, expect, it } from "vitest";
import { harness, signedRequest } from "./harness.ts";

const withToken = { headers: { Authorization: "Bearer metrics-token" } };

describe("/healthz details and headers", () => {
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
