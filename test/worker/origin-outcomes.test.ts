import { describe, expect, it } from "vitest";
import { harness, sampleValue, scrape, signedRequest } from "./harness.ts";

describe("the origin's answer, counted by its status (docs/design.md, \"Metrics\")", () => {
	it("counts 500 and 503 as status_5xx and 499 as ok, passing each answer through", async () => {
		const h = harness();
		for (const [status, timestamp] of [[500, 1], [503, 2], [499, 3]] as const) {
			h.origin.respond = () => new Response("origin says", { status });
			const response = await h.fetch(await signedRequest({ timestamp: 1_763_000_000_000 + timestamp }));
			expect(response.status).toBe(status);
			expect(await response.text()).toBe("origin says");
		}
		const text = await scrape(h);
		expect(sampleValue(text, "agent_origin_responses_total", { outcome: "status_5xx" })).toBe(2);
		expect(sampleValue(text, "agent_origin_responses_total", { outcome: "ok" })).toBe(1);
	});
});
