import { describe, expect, it } from "vitest";
import { errorBody, harness, signedRequest } from "./harness.ts";

describe("scheme v1 edges through the whole gateway", () => {
	it("accepts a signed GET that declares Content-Length: 0 (no body is no body)", async () => {
		const h = harness();
		const request = await signedRequest({ method: "GET", headers: { "Content-Length": "0" } });
		expect(request.headers.get("content-length")).toBe("0");
		const response = await h.fetch(request);
		expect(response.status).toBe(200);
		expect(h.origin.requests).toHaveLength(1);
	});

	it("refuses a GET that declares a body length, before reading it", async () => {
		const h = harness();
		const request = await signedRequest({ method: "GET", headers: { "Content-Length": "1" } });
		const response = await h.fetch(request);
		expect(response.status).toBe(400);
		expect((await errorBody(response)).code).toBe("body_not_allowed");
	});

	it("keeps a replay key for REDIS_REPLAY_TTL when that outlives the skew window", async () => {
		const h = harness({ HMAC_MAX_SKEW_MS: "300000", REDIS_REPLAY_TTL: "900" });
		expect((await h.fetch(await signedRequest({}, h.clock.now), {})).status).toBe(200);
		expect(h.redis.calls.map((call) => call.opts)).toEqual([{ nx: true, px: 900_000 }]);
	});
});
