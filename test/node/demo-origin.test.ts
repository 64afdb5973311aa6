import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startDemoOrigin, type DemoOrigin } from "../../scripts/lib/demo-origin.ts";
import { signRequest } from "../../src/client/index.ts";
import { SECRET, type RunningGateway } from "./helpers/gateway.ts";
import { available } from "./helpers/services.ts";
import { useUpstashStack } from "./helpers/stack.ts";
import { until } from "./helpers/until.ts";
import { usageRoute } from "./helpers/usage-route.ts";
import { awayFromUtcMidnight, WINDOW_EDGE_MARGIN_MS } from "../fixtures/instants.ts";

const budgeted = (hold: number, reservation = "res-1") => ({ "X-Token-Hold": String(hold), "X-Token-Reservation": reservation, "X-Gateway-Token": "origin-secret" });
const chat = (origin: DemoOrigin, query: string, headers: Record<string, string>) =>
	fetch(`${origin.url}/agent/chat${query}`, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify({ messages: [{ content: "one two three four five" }] }) });

// A day's or a month's budget spent here must stay spent for the file's few seconds: never across a UTC midnight.
beforeAll(() => awayFromUtcMidnight(), WINDOW_EDGE_MARGIN_MS + 5_000);

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
		expect(origin.settlements().at(-1)).toEqual({ reservation: "res-stream", tokens: 3, status: 200 });
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

describe.skipIf(!available("redis-server", "redis-server"))("the demo origin behind a gateway, for a client with a token budget", () => {
	const stack = useUpstashStack("demo-budget-token", {
		ORIGIN_TOKEN: "demo-origin-token",
		CLIENT_LIMITS: JSON.stringify({ "demo-agent": { monthly_tokens: 1000, token_hold: 40 } }),
		// A claim confirmed after the 200 ms default (a loaded machine) cannot say what is left: these tests read it.
		REPLAY_TIMEOUT_MS: "5000",
	});
	let gateway: RunningGateway;
	beforeEach(async () => {
		gateway = await stack.gateway();
		stack.origin.setGateway(gateway.url);
	});
	afterAll(() => stack.origin?.setGateway(null));

	const send = async (path: string, query: string, init: { body?: string; tokenLimit?: number } = {}) => {
		const method = init.body === undefined ? "GET" : "POST";
		const { headers } = await signRequest({ clientId: "demo-agent", secret: SECRET, method, path, body: init.body, tokenLimit: init.tokenLimit });
		const response = await gateway.fetch(path + query, { method, headers: { ...headers, "Content-Type": "application/json" }, body: init.body });
		return { response, text: await response.text() };
	};
	const reported = (reservation: string) => stack.origin.settlements().filter((s) => s.reservation === reservation);

	it("a stream stops at the hold the gateway forwarded, and its report settles at the gateway (200)", async () => {
		const { response, text } = await send("/agent/stream", "?tokens=60&interval_ms=1");
		expect(response.status).toBe(200);
		expect(text.trim().split("\n").filter((line) => line.includes('"token"'))).toHaveLength(40);
		const reservation = response.headers.get("x-token-reservation");
		expect(reservation).toBeNull(); // the reservation is the origin's business, never the client's
		await until(() => stack.origin.settlements().some((s) => s.tokens === 40 && s.status === 200), "the stream's report, settled");
	});

	it("the first report wins: a chat answer reported by its header and by the route is charged once", async () => {
		const { response } = await send("/agent/chat", "?report=both&spend=7", { body: JSON.stringify({ messages: [{ content: "x" }] }) });
		expect(response.headers.get("x-token-usage")).toBe("7");
		await until(() => stack.origin.settlements().some((s) => s.tokens === 7), "the route's report");
		const settlement = stack.origin.settlements().find((s) => s.tokens === 7)!;
		// Whichever came first (the header's settle runs in the gateway's background): 409 reservation_settled, or 200 and the header's refused.
		expect([200, 409]).toContain(settlement.status);
		expect(reported(settlement.reservation)).toHaveLength(1);
		const probe = await send("/agent/chat", "", { body: JSON.stringify({ messages: [{ content: "x" }] }), tokenLimit: 1 });
		expect(probe.response.headers.get("ratelimit")).toMatch(/^"monthly_tokens";r=992;t=\d+$/);
	});
});
