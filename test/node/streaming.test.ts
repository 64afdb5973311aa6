import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDemoOrigin, type DemoOrigin } from "../../scripts/lib/demo-origin.ts";
import { parseExposition, valueOf } from "../fixtures/exposition.ts";
import { signed, startGateway, type RunningGateway } from "./helpers/gateway.ts";

async function readAll(response: Response): Promise<string> {
	const reader = response.body!.getReader();
	let text = "";
	for (;;) {
		const { done, value } = await reader.read();
		if (done) return text;
		text += new TextDecoder().decode(value);
	}
}

/** The summed counter once it reaches `atLeast`, or after `attempts` scrapes (the flush runs in the background). */
async function originOutcome(gateway: RunningGateway, outcome: string, atLeast: number, attempts = 50): Promise<number> {
	for (let attempt = 1; ; attempt++) {
		const families = parseExposition(await (await gateway.fetch("/metrics")).text());
		const value = valueOf(families, "agent_origin_responses_total", { outcome });
		if (value >= atLeast || attempt >= attempts) return value;
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
}

describe("a streamed answer through the shipped bundle", () => {
	let origin: DemoOrigin;
	let gateway: RunningGateway;

	beforeAll(async () => {
		origin = await startDemoOrigin();
		gateway = await startGateway({ ORIGIN_URL: `${origin.url}/t/stream` });
	});
	afterAll(async () => {
		await gateway?.close();
		await origin?.close();
	});

	it("streams: the first NDJSON event arrives while the origin is still sending", async () => {
		const request = await signed({ method: "GET", path: "/agent/stream" });
		const response = await gateway.fetch("/agent/stream?tokens=5&interval_ms=200", request.init);
		expect(response.status).toBe(200);
		expect(response.headers.get("content-type")).toBe("application/x-ndjson");
		const reader = response.body!.getReader();
		const first = await reader.read();
		expect(JSON.parse(new TextDecoder().decode(first.value).split("\n")[0]!)).toEqual({ type: "start", model: "demo-origin" });
		expect(origin.recorded("stream")[0]?.answerEnded).toBeNull();
		let rest = new TextDecoder().decode(first.value).split("\n").slice(1).join("\n");
		for (;;) {
			const { done, value } = await reader.read();
			if (done) break;
			rest += new TextDecoder().decode(value);
		}
		const events = rest.trim().split("\n").map((line) => JSON.parse(line) as { type: string });
		expect(events.map((event) => event.type)).toEqual(["token", "token", "token", "token", "token", "done"]);
		await expect.poll(() => origin.recorded("stream")[0]?.answerEnded).toBe("finished");
	});
});

describe("the total deadline of a streamed answer (ORIGIN_STREAM_MAX_MS), enforced by workerd", () => {
	let origin: DemoOrigin;
	let gateway: RunningGateway;

	beforeAll(async () => {
		origin = await startDemoOrigin();
		// ORIGIN_URL under /t/<id>: the origin records each request and how its answer ended.
		gateway = await startGateway({ ORIGIN_URL: `${origin.url}/t/deadline`, ORIGIN_STREAM_MAX_MS: "1500", METRICS_FLUSH_MS: "200" });
	});
	afterAll(async () => {
		await gateway?.close();
		await origin?.close();
	});

	it("ends the client's answer cleanly at the deadline, closes the origin's connection, and counts stream_deadline", async () => {
		const request = await signed({ method: "GET", path: "/agent/stream" });
		// 100 tokens 100 ms apart: ten seconds of answer, far past the deadline.
		const response = await gateway.fetch("/agent/stream?tokens=100&interval_ms=100", request.init);
		expect(response.status).toBe(200);
		const text = await readAll(response);
		const events = text.trim().split("\n").map((line) => JSON.parse(line) as { type: string });
		expect(events[0]).toEqual({ type: "start", model: "demo-origin" });
		// Cut: some tokens came, never all of them, and no "done".
		expect(events.length).toBeGreaterThan(2);
		expect(events.length).toBeLessThan(60);
		expect(events.map((event) => event.type)).not.toContain("done");
		await expect.poll(() => origin.recorded("deadline")[0]?.answerEnded).toBe("closed early");
		expect(await originOutcome(gateway, "stream_deadline", 1)).toBe(1);
		expect(await originOutcome(gateway, "stream_cut", 1, 1)).toBe(0);
	});

	it("leaves an answer that ends before the deadline whole, and counts no cut", async () => {
		const request = await signed({ method: "GET", path: "/agent/stream" });
		const response = await gateway.fetch("/agent/stream?tokens=3&interval_ms=50", request.init);
		const events = (await readAll(response)).trim().split("\n").map((line) => JSON.parse(line) as { type: string });
		expect(events.map((event) => event.type)).toEqual(["start", "token", "token", "token", "done"]);
		// Past the deadline of this answer: a deadline timer still counting would have counted by now.
		await new Promise((resolve) => setTimeout(resolve, 1600));
		expect(origin.recorded("deadline").at(-1)?.answerEnded).toBe("finished");
		expect(await originOutcome(gateway, "stream_deadline", 2, 5)).toBe(1);
	});
});
