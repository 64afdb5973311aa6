import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RespConnection } from "../../scripts/lib/resp.ts";
import { parseExposition, valueOf } from "../fixtures/exposition.ts";
import { CLIENT_ID, signed, type RunningGateway } from "./helpers/gateway.ts";
import { available } from "./helpers/services.ts";
import { until } from "./helpers/until.ts";
import { useUpstashStack } from "./helpers/stack.ts";
import { awayFromUtcMidnight, WINDOW_EDGE_MARGIN_MS } from "../fixtures/instants.ts";

const TOKEN = "budget-exactness-token";
const ORIGIN_TOKEN = "budget-origin-token";
const METRICS = { headers: { Authorization: "Bearer budget-metrics" } };
const HOLD = 100;
/** 500 holds of 100 add up to ten times the day's budget. */
const DAILY = 5_000;
const REQUESTS = 500;

type Mode = "header" | "route" | "never" | "died";
/** What the origin saw of each request it served, and what it reported. */
interface Served {
	mode: Mode;
	reservation: string;
	hold: number;
	tokens: number;
	reported: Promise<number>;
}

/** The modes in turn, by the order requests reach the origin: every mode is served whichever requests the budget lets through. */
const MODES: readonly Mode[] = ["header", "route", "never", "header", "route", "died"];

/**
 * An origin that spends a random number of tokens up to a little past its hold and reports by
 * the mode in the query, or else the next of MODES: an answer header, the usage route (through
 * either gateway), never (an origin that forgot), or dies mid-request (the socket destroyed:
 * the gateway answers 502).
 */
function startOrigin(gateways: () => RunningGateway[]) {
	const served: Served[] = [];
	let arrived = 0;
	const server = http.createServer((request, response) => {
		const url = new URL(request.url ?? "/", "http://origin");
		const mode = (url.searchParams.get("mode") ?? MODES[arrived++ % MODES.length]!) as Mode;
		const hold = Number(request.headers["x-token-hold"]);
		const reservation = String(request.headers["x-token-reservation"] ?? "");
		request.resume();
		request.on("end", () => {
			if (mode === "died") {
				served.push({ mode, reservation, hold, tokens: 0, reported: Promise.resolve(0) });
				request.socket.destroy();
				return;
			}
			// Now and then more than the hold: an overrun, counted at the hold.
			const tokens = Math.floor(Math.random() * (hold + 20));
			const headers: Record<string, string> = { "Content-Type": "application/json" };
			if (mode === "header") headers["X-Token-Usage"] = String(tokens);
			response.writeHead(200, headers).end(JSON.stringify({ reply: "ok" }));
			let reported = Promise.resolve(0);
			if (mode === "route") {
				const gateway = gateways()[served.length % 2]!;
				reported = gateway
					.fetch("/gateway/usage", {
						method: "POST",
						headers: { Authorization: `Bearer ${ORIGIN_TOKEN}`, "Content-Type": "application/json" },
						body: JSON.stringify({ reservation, tokens }),
					})
					.then(async (answer) => (await answer.arrayBuffer(), answer.status));
			}
			served.push({ mode, reservation, hold, tokens, reported });
		});
	});
	return { server, served };
}

// A day's or a month's budget spent here must stay spent for the file's few seconds: never across a UTC midnight.
beforeAll(() => awayFromUtcMidnight(), WINDOW_EDGE_MARGIN_MS + 5_000);

describe.skipIf(!available("redis-server", "redis-server"))("token budgets, exact: two gateway processes on one Redis through the local Upstash server", () => {
	const stack = useUpstashStack(TOKEN, { METRICS_TOKEN: "budget-metrics" });
	let gateways: RunningGateway[] = [];
	const origin = startOrigin(() => gateways);
	let originUrl = "";
	beforeAll(async () => {
		await new Promise<void>((resolve) => origin.server.listen(0, "127.0.0.1", resolve));
		originUrl = `http://127.0.0.1:${(origin.server.address() as AddressInfo).port}`;
	});
	afterAll(() => new Promise<void>((resolve) => origin.server.close(() => resolve())));

	async function redis(...args: string[]) {
		const connection = await RespConnection.connect(stack.redis.port);
		try {
			return (await connection.send([args]))[0];
		} finally {
			connection.close();
		}
	}

	/**
	 * Waits until every reservation the origin reported by header is settled in Redis: an
	 * answer's report is settled in the background, riding on a later claim or alone after a moment.
	 */
	async function headerReportsSettled(prefix: string) {
		const holds = `${prefix}limit:${CLIENT_ID}:tokens:holds`;
		const pending = async () => {
			const reported = origin.served.filter((entry) => entry.mode === "header").map((entry) => entry.reservation);
			const values = reported.length === 0 ? [] : ((await redis("HMGET", holds, ...reported)) as (Buffer | null)[]);
			return values.filter((value) => value !== null && !value.toString().startsWith("s:")).length;
		};
		await until(async () => (await pending()) === 0, "the answers' token reports to be settled");
	}

	it("500 at once whose holds add up to 10x the budget, a third settled by header, a third by the usage route, a third never: used + held never past the budget, every unreported hold charged whole", async () => {
		const prefix = `budget:${crypto.randomUUID()}:`;
		const bindings = {
			REDIS_REPLAY_PREFIX: prefix,
			ORIGIN_URL: originUrl,
			ORIGIN_TOKEN,
			REPLAY_TIMEOUT_MS: "5000",
			CLIENT_LIMITS: JSON.stringify({ [CLIENT_ID]: { daily_tokens: DAILY, monthly_tokens: 1_000_000, token_hold: HOLD } }),
		};
		gateways = await Promise.all([stack.gateway(bindings), stack.gateway(bindings)]);
		const today = new Date().toISOString().slice(0, 10);
		const window = `${prefix}limit:${CLIENT_ID}:tokens:day:${today}`;
		const requests = await Promise.all(Array.from({ length: REQUESTS }, (_, i) => signed({ body: JSON.stringify({ n: i, at: Math.random() }) })));
		// Sample the window while the requests run: used + held, never past the budget.
		let sampling = true;
		const samples: number[] = [];
		const sampler = (async () => {
			while (sampling) {
				const [used, held] = ((await redis("HMGET", window, "used", "held")) as (Buffer | null)[]).map((value) => Number(value?.toString() ?? "0"));
				samples.push(used! + held!);
			}
		})();
		const answers = await Promise.all(
			requests.map((request, i) => gateways[i % 2]!.fetch(request.path, request.init).then(async (answer) => (await answer.arrayBuffer(), answer.status))),
		);
		await Promise.all(origin.served.map((entry) => entry.reported));
		await headerReportsSettled(prefix);
		sampling = false;
		await sampler;
		const statuses: Record<number, number> = {};
		for (const status of answers) statuses[status] = (statuses[status] ?? 0) + 1;

		// A second report of a settled reservation changes nothing, while its lease lasts.
		const settledByRoute = origin.served.find((entry) => entry.mode === "route")!;
		const before = await redis("HMGET", window, "used", "held");
		const duplicate = await gateways[1]!.fetch("/gateway/usage", {
			method: "POST",
			headers: { Authorization: `Bearer ${ORIGIN_TOKEN}` },
			body: JSON.stringify({ reservation: settledByRoute.reservation, tokens: 1 }),
		});
		expect(duplicate.status).toBe(409);
		expect(((await duplicate.json()) as { code: string }).code).toBe("reservation_settled");
		expect(await redis("HMGET", window, "used", "held")).toEqual(before);

		// Leases end (injected: every reservation's lease end moved to the past), then the client's next requests sweep them.
		const leases = `${prefix}limit:${CLIENT_ID}:tokens:leases`;
		const pending = ((await redis("ZRANGE", leases, "0", "-1")) as Buffer[]).map(String);
		for (const id of pending) await redis("ZADD", leases, "XX", String(Date.now() - 1), id);
		const late = origin.served.find((entry) => entry.mode === "never")!;
		const lateReport = await gateways[0]!.fetch("/gateway/usage", {
			method: "POST",
			headers: { Authorization: `Bearer ${ORIGIN_TOKEN}` },
			body: JSON.stringify({ reservation: late.reservation, tokens: 1 }),
		});
		expect(lateReport.status).toBe(410);
		for (let sweeps = 0; sweeps < 40 && Number((await redis("ZCARD", leases)) as number) > 0; sweeps++) {
			const request = await signed({ body: JSON.stringify({ sweep: sweeps, at: Math.random() }) });
			await (await gateways[sweeps % 2]!.fetch(`${request.path}?mode=header`, request.init)).arrayBuffer();
		}
		// The sweeps' own requests, accepted while tokens were left, settle by header in the background.
		await Promise.all(origin.served.map((entry) => entry.reported));
		await headerReportsSettled(prefix);
		const [used, held] = ((await redis("HMGET", window, "used", "held")) as (Buffer | null)[]).map((value) => Number(value?.toString() ?? "0"));
		const counted = origin.served.reduce((sum, entry) => sum + (entry.mode === "header" || entry.mode === "route" ? Math.min(entry.tokens, entry.hold) : entry.hold), 0);
		const byMode = (mode: Mode) => origin.served.filter((entry) => entry.mode === mode).length;
		console.log(
			`budget ${DAILY}, ${REQUESTS} at once (holds ${REQUESTS * HOLD}): ${JSON.stringify(statuses)}; served by header ${byMode("header")}, route ${byMode("route")}, never ${byMode("never")}, died ${byMode("died")}; ` +
				`${samples.length} samples, the highest used + held ${Math.max(...samples)}; after the sweeps used ${used}, held ${held}`,
		);
		expect(Math.max(...samples)).toBeLessThanOrEqual(DAILY);
		expect(samples.length).toBeGreaterThan(10);
		expect(held).toBe(0);
		expect(used).toBe(counted);
		expect(used).toBeLessThanOrEqual(DAILY);
		for (const mode of ["header", "route", "never", "died"] as const) expect(byMode(mode), mode).toBeGreaterThan(0);
		expect((await Promise.all(origin.served.filter((entry) => entry.mode === "route").map((entry) => entry.reported))).every((status) => status === 200)).toBe(true);

		// The metrics of both gateways: every hold counted, every unreported hold expired whole.
		let heldTotal = 0;
		let expiredTotal = 0;
		let settledTotal = 0;
		let overrunTotal = 0;
		for (const gateway of gateways) {
			const metrics = parseExposition(await (await gateway.fetch("/metrics", METRICS)).text());
			heldTotal += valueOf(metrics, "agent_tokens_total", { kind: "held" });
			expiredTotal += valueOf(metrics, "agent_tokens_total", { kind: "expired" });
			settledTotal += valueOf(metrics, "agent_tokens_total", { kind: "settled" });
			overrunTotal += valueOf(metrics, "agent_tokens_total", { kind: "overrun" });
		}
		// Reported above the hold: counted at the hold, the excess an overrun.
		const reported = origin.served.filter((entry) => entry.mode === "header" || entry.mode === "route");
		expect(overrunTotal).toBe(reported.reduce((sum, entry) => sum + Math.max(0, entry.tokens - entry.hold), 0));
		const unreported = origin.served.filter((entry) => entry.mode === "never" || entry.mode === "died");
		expect(expiredTotal).toBe(unreported.reduce((sum, entry) => sum + entry.hold, 0));
		expect(heldTotal).toBe(origin.served.reduce((sum, entry) => sum + entry.hold, 0));
		expect(settledTotal + expiredTotal).toBe(used);

		// A swept, an unknown and a foreign report change nothing; without the token: 401.
		const report = (body: unknown, authorization = `Bearer ${ORIGIN_TOKEN}`) =>
			gateways[1]!.fetch("/gateway/usage", { method: "POST", headers: { Authorization: authorization }, body: JSON.stringify(body) });
		expect((await report({ reservation: late.reservation, tokens: 1 })).status).toBe(404);
		expect((await report({ reservation: `${CLIENT_ID}:${today}:-:${"0".repeat(32)}`, tokens: 1 })).status).toBe(404);
		expect((await report({ reservation: settledByRoute.reservation.replace(CLIENT_ID, "another-client"), tokens: 1 })).status).toBe(404);
		expect((await report({ reservation: settledByRoute.reservation, tokens: 1 }, "Bearer wrong")).status).toBe(401);
		expect((await report({ reservation: settledByRoute.reservation, tokens: -1 })).status).toBe(400);
		const after = ((await redis("HMGET", window, "used", "held")) as (Buffer | null)[]).map((value) => Number(value?.toString() ?? "0"));
		expect(after).toEqual([used, 0]);
	});

	it("a busy client's header reports cost no Upstash command: each rides on its next claim; the last, with no claim after it, is sent alone; all counted exactly", async () => {
		const prefix = `budget:${crypto.randomUUID()}:`;
		const gateway = await stack.gateway({
			REDIS_REPLAY_PREFIX: prefix,
			ORIGIN_URL: originUrl,
			REPLAY_TIMEOUT_MS: "5000",
			METRICS_FLUSH_MS: "100",
			CLIENT_LIMITS: JSON.stringify({ [CLIENT_ID]: { daily_tokens: 1_000_000, token_hold: HOLD } }),
		});
		const window = `${prefix}limit:${CLIENT_ID}:tokens:day:${new Date().toISOString().slice(0, 10)}`;
		const servedBefore = origin.served.length;
		const requests = 12;
		stack.upstash.resetStats();
		for (let i = 0; i < requests; i++) {
			const request = await signed({ body: JSON.stringify({ ride: i, at: Math.random() }) });
			const answer = await gateway.fetch(`${request.path}?mode=header`, request.init);
			expect(answer.status).toBe(200);
			await answer.arrayBuffer();
		}
		await headerReportsSettled(prefix);
		const served = origin.served.slice(servedBefore);
		expect(served).toHaveLength(requests);
		const [used, held] = ((await redis("HMGET", window, "used", "held")) as (Buffer | null)[]).map((value) => Number(value?.toString() ?? "0"));
		expect([used, held]).toEqual([served.reduce((sum, entry) => sum + Math.min(entry.tokens, entry.hold), 0), 0]);
		// One command per request on the way in; the settles rode along but for the last few (each would be one more).
		const upstashRequests = stack.upstash.stats.requests;
		console.log(`${requests} budgeted requests one after another, each reported by header: ${upstashRequests} Upstash requests`);
		expect(upstashRequests).toBeGreaterThanOrEqual(requests + 1);
		expect(upstashRequests).toBeLessThanOrEqual(requests + 3);
		await until(
			async () => valueOf(parseExposition(await (await gateway.fetch("/metrics", METRICS)).text()), "agent_tokens_total", { kind: "settled" }) === used,
			"the settled tokens to be counted",
		);
	});
});
