import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDemoOrigin, type DemoOrigin } from "../../scripts/lib/demo-origin.ts";
import { signed, startGateway, type RunningGateway } from "./helpers/gateway.ts";

describe("a streamed answer through the shipped bundle", () => {
	let origin: DemoOrigin;
	let gateway: RunningGateway;

	beforeAll(async () => {
		origin = await startDemoOrigin();
		gateway = await startGateway({ ORIGIN_URL: origin.url });
	});
	afterAll(async () => {
		await gateway?.close();
		await origin?.close();
	});

	it("streams: the first NDJSON event arrives before the origin has finished", async () => {
		const request = await signed({ method: "GET", path: "/agent/stream" });
		const started = performance.now();
		const response = await gateway.fetch("/agent/stream?tokens=5&interval_ms=200", request.init);
		expect(response.status).toBe(200);
		expect(response.headers.get("content-type")).toBe("application/x-ndjson");
		const reader = response.body!.getReader();
		const first = await reader.read();
		const firstAt = performance.now() - started;
		expect(JSON.parse(new TextDecoder().decode(first.value).split("\n")[0]!)).toEqual({ type: "start", model: "demo-origin" });
		let rest = "";
		for (;;) {
			const { done, value } = await reader.read();
			if (done) break;
			rest += new TextDecoder().decode(value);
		}
		const totalAt = performance.now() - started;
		// The origin spends 5 x 200 ms after "start"; the first event came well before the end.
		expect(totalAt - firstAt).toBeGreaterThan(800);
		const events = rest.trim().split("\n").map((line) => JSON.parse(line) as { type: string });
		expect(events.map((event) => event.type)).toEqual(["token", "token", "token", "token", "token", "done"]);
	});
});
