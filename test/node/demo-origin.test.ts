import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startDemoOrigin, type DemoOrigin } from "../../scripts/lib/demo-origin.ts";
import { until } from "./helpers/until.ts";

/** A stand-in for the gateway's usage route: keeps every report with its bearer token, answers 204. */
async function usageRoute() {
	const reports: { path: string; authorization: string | undefined; body: unknown }[] = [];
	const server = http.createServer(async (request, response) => {
		const chunks: Buffer[] = [];
		for await (const chunk of request) chunks.push(chunk as Buffer);
		reports.push({ path: `${request.method} ${request.url}`, authorization: request.headers.authorization, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
		response.writeHead(204).end();
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, reports, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const budgeted = (hold: number, reservation = "res-1") => ({ "X-Token-Hold": String(hold), "X-Token-Reservation": reservation, "X-Gateway-Token": "origin-secret" });
const chat = (origin: DemoOrigin, query: string, headers: Record<string, string>) =>
	fetch(`${origin.url}/agent/chat${query}`, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify({ messages: [{ content: "one two three four five" }] }) });

describe("the demo origin's part in token budgets (docs/design.md, \"Token budgets\")", () => {
	let gateway: Awaited<ReturnType<typeof usageRoute>>;
	let origin: DemoOrigin;
	beforeAll(async () => {
		gateway = await usageRoute();
		origin = await startDemoOrigin({ gatewayUrl: gateway.url });
	});
	afterAll(async () => {
		await origin?.close();
		await gateway?.close();
	});
	beforeEach(() => void gateway.reports.splice(0));

	it("a request without a budget: the whole answer, no usage reported anywhere", async () => {
		const response = await chat(origin, "", {});
		expect(((await response.json()) as { reply: string }).reply).toBe("Demo answer to: one two three four five");
		expect(response.headers.has("x-token-usage")).toBe(false);
		await origin.settled();
		expect(gateway.reports).toEqual([]);
	});

	it("a chat answer stops at X-Token-Hold and reports what it spent in X-Token-Usage, not to the route", async () => {
		const stopped = await chat(origin, "", budgeted(3));
		expect(((await stopped.json()) as { reply: string }).reply).toBe("Demo answer to:");
		expect(stopped.headers.get("x-token-usage")).toBe("3");
		const under = await chat(origin, "", budgeted(100));
		expect(((await under.json()) as { reply: string }).reply).toBe("Demo answer to: one two three four five");
		expect(under.headers.get("x-token-usage")).toBe("8");
		expect((await chat(origin, "?spend=40", budgeted(25))).headers.get("x-token-usage")).toBe("25");
		await origin.settled();
		expect(gateway.reports).toEqual([]);
	});

	it("report=route: the chat answer carries no usage, and the route gets it with the gateway's token", async () => {
		const response = await chat(origin, "?report=route&spend=7", budgeted(20, "res-route"));
		expect(response.headers.has("x-token-usage")).toBe(false);
		await response.arrayBuffer();
		await until(() => gateway.reports.length === 1, "the report");
		expect(gateway.reports[0]).toEqual({ path: "POST /gateway/usage", authorization: "Bearer origin-secret", body: { reservation: "res-route", tokens: 7 } });
	});

	it("ignore_hold=1 plays an origin that overruns its hold", async () => {
		expect((await chat(origin, "?spend=40&ignore_hold=1", budgeted(25))).headers.get("x-token-usage")).toBe("40");
	});

	it("a stream stops at its hold, then reports to the route", async () => {
		const response = await fetch(`${origin.url}/agent/stream?tokens=10&interval_ms=1`, { headers: budgeted(3, "res-stream") });
		const events = (await response.text()).trim().split("\n").map((line) => (JSON.parse(line) as { type: string }).type);
		expect(events).toEqual(["start", "token", "token", "token", "done"]);
		await until(() => gateway.reports.length === 1, "the report");
		expect(gateway.reports[0]!.body).toEqual({ reservation: "res-stream", tokens: 3 });
		expect(origin.settlements().at(-1)).toEqual({ reservation: "res-stream", tokens: 3, status: 204 });
	});

	it("a stream the client left reports what was sent before it left", async () => {
		const controller = new AbortController();
		const response = await fetch(`${origin.url}/agent/stream?tokens=50&interval_ms=20`, { headers: budgeted(100, "res-left"), signal: controller.signal });
		const reader = response.body!.getReader();
		let text = "";
		while ((text.match(/"token"/g) ?? []).length < 2) text += new TextDecoder().decode((await reader.read()).value);
		controller.abort();
		await until(() => gateway.reports.length === 1, "the report of the stream the client left");
		const { tokens } = gateway.reports[0]!.body as { tokens: number };
		expect(tokens).toBeGreaterThanOrEqual(2);
		expect(tokens).toBeLessThan(50);
	});

	it("without a gateway to report to, the report is kept as not sent", async () => {
		origin.setGateway(null);
		try {
			await (await fetch(`${origin.url}/agent/stream?tokens=1&interval_ms=1`, { headers: budgeted(5, "res-nowhere") })).text();
			await until(() => origin.settlements().some((s) => s.reservation === "res-nowhere"), "the report");
			expect(origin.settlements().find((s) => s.reservation === "res-nowhere")).toEqual({ reservation: "res-nowhere", tokens: 1, status: "no gateway" });
		} finally {
			origin.setGateway(gateway.url);
		}
	});
});
