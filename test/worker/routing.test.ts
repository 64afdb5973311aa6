import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { errorBody, harness } from "./harness.ts";

describe('routes (docs/design.md, "Routes")', () => {
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
		expect(await missing.json()).toEqual({ detail: "X-Client-Id is missing", code: "missing_headers" });
	});
});
