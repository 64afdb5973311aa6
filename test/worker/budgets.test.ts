import { describe, expect, it } from "vitest";
import { errorBody, harness, sampleValue, scrape, signedRequest, type Harness } from "./harness.ts";

const BUDGET = (entry: object, more: Record<string, string> = {}) => ({ CLIENT_LIMITS: JSON.stringify({ "svc-test": entry }), ...more });
let counter = 0;
const fresh = (h: Harness, init: { clientId?: string; headers?: Record<string, string> } = {}) =>
	signedRequest({ body: JSON.stringify({ messages: [{ role: "user", content: `budget ${++counter}` }] }), ...init }, h.clock.now);
const down = (h: Harness) => {
	h.redis.scriptAnswer = async () => {
		throw new Error("Upstash down");
	};
	h.redis.answer = async () => {
		throw new Error("Upstash down");
	};
};
const report = (h: Harness, body: unknown, authorization?: string) =>
	h.fetch(new Request("https://gateway.test/gateway/usage", { method: "POST", headers: authorization === undefined ? {} : { Authorization: authorization }, body: JSON.stringify(body) }));

describe("token budgets, the whole Worker in workerd", () => {
	it("while Upstash fails, a budgeted client gets 503 budget_unavailable whatever REPLAY_FAIL_MODE says; a client without one is served from memory", async () => {
		const h = harness(BUDGET({ daily_tokens: 1_000 }));
		down(h);
		const refused = await h.fetch(await fresh(h));
		expect(refused.status).toBe(503);
		expect((await errorBody(refused)).code).toBe("budget_unavailable");
		expect((await h.fetch(await fresh(h, { clientId: "other" }))).status).toBe(200);
		expect(h.origin.requests).toHaveLength(1);
		expect(await sampleValue(await scrape(h), "agent_chat_requests_total", { auth: "fail", mode: "budget_unavailable" })).toBe(1);
		// REPLAY_FAIL_MODE=closed says the same to a budgeted client: it is the budget that cannot be checked.
		const closed = harness(BUDGET({ daily_tokens: 1_000 }, { REPLAY_FAIL_MODE: "closed" }));
		down(closed);
		const answers = [await closed.fetch(await fresh(closed)), await closed.fetch(await fresh(closed, { clientId: "other" }))];
		expect(await Promise.all(answers.map(async (answer) => [answer.status, (await errorBody(answer)).code]))).toEqual([
			[503, "budget_unavailable"],
			[503, "replay_store_unavailable"],
		]);
	});

	it("BUDGET_FAIL_MODE=memory: each isolate keeps the budget alone, charging each hold whole; spent, 429 token_budget_exhausted until the day ends", async () => {
		const h = harness(BUDGET({ daily_tokens: 250, token_hold: 100 }, { BUDGET_FAIL_MODE: "memory" }));
		h.clock.now = Date.UTC(2026, 11, 2, 23, 0, 0);
		down(h);
		const holds: string[] = [];
		for (let i = 0; i < 3; i++) {
			const answer = await h.fetch(await fresh(h));
			expect(answer.status).toBe(200);
			holds.push(h.origin.requests.at(-1)!.headers.get("x-token-hold")!);
		}
		expect(holds).toEqual(["100", "100", "50"]);
		const refused = await h.fetch(await fresh(h));
		expect(refused.status).toBe(429);
		expect((await errorBody(refused)).code).toBe("token_budget_exhausted");
		expect(refused.headers.get("retry-after")).toBe("3600");
		expect(refused.headers.get("ratelimit")).toBe('"daily_tokens";r=0;t=3600');
		expect(refused.headers.get("ratelimit-policy")).toBe('"daily_tokens";q=250;w=86400;qu="tokens"');
		const exposition = await scrape(h);
		expect(sampleValue(exposition, "agent_limit_refusals_total", { limit: "daily_tokens" })).toBe(1);
		expect(sampleValue(exposition, "agent_tokens_total", { kind: "held" })).toBe(250);
	});

	it("X-Token-Limit lowers the hold, never raises it; one that is not a whole number from 1 is 400 before any claim", async () => {
		const h = harness(BUDGET({ daily_tokens: 1_000, token_hold: 100 }, { BUDGET_FAIL_MODE: "memory" }));
		down(h);
		// A whole number of any length is one (signRequest() sends up to Number.MAX_SAFE_INTEGER, 16 digits): it lowers nothing.
		for (const [limit, hold] of [["40", "40"], ["5000", "100"], [String(Number.MAX_SAFE_INTEGER), "100"], ["99999999999999999999", "100"], ["0007", "7"]]) {
			expect((await h.fetch(await fresh(h, { headers: { "X-Token-Limit": limit! } }))).status).toBe(200);
			expect(h.origin.requests.at(-1)!.headers.get("x-token-hold")).toBe(hold);
		}
		for (const bad of ["0", "-1", "1.5", "ten", "1e3"]) {
			const refused = await h.fetch(await fresh(h, { headers: { "X-Token-Limit": bad } }));
			expect(refused.status, bad).toBe(400);
			expect((await errorBody(refused)).code).toBe("invalid_token_limit");
		}
		expect(h.origin.requests).toHaveLength(5);
	});

	it("X-Token-Limit is judged after the signature and the clock, before the replay claim, which a bad one never makes (docs/protocol.md's check tables)", async () => {
		const h = harness(BUDGET({ daily_tokens: 1_000, token_hold: 100 }));
		const bad = { "X-Token-Limit": "0" };
		const stale = await signedRequest({ headers: bad }, h.clock.now - 600_000);
		const forged = await fresh(h, { headers: bad });
		forged.headers.set("X-Signature", "0".repeat(64));
		const accepted = await fresh(h);
		expect((await h.fetch(accepted.clone())).status).toBe(200);
		// v1 signs no header: the accepted bytes again with a bad limit are still those bytes.
		const replayed = new Request(accepted.clone(), { headers: new Headers([...accepted.headers, ["X-Token-Limit", "0"]]) });
		const answers = [await h.fetch(stale), await h.fetch(forged), await h.fetch(replayed), await h.fetch(accepted)];
		expect(await Promise.all(answers.map(async (answer) => [answer.status, (await errorBody(answer)).code]))).toEqual([
			[408, "clock_skew"],
			[403, "bad_signature"],
			[400, "invalid_token_limit"],
			[409, "replay"],
		]);
		expect(h.origin.requests).toHaveLength(1);
		// Refused before the claim: the same bytes without the bad limit are not a replay.
		const unclaimed = await fresh(h);
		const refused = await h.fetch(new Request(unclaimed.clone(), { headers: new Headers([...unclaimed.headers, ["X-Token-Limit", "0"]]) }));
		expect(refused.status).toBe(400);
		expect((await h.fetch(unclaimed)).status).toBe(200);
	});

	it("a client's own X-Token-Hold and X-Token-Reservation never reach the origin; without a budget, the origin gets neither", async () => {
		const h = harness();
		const answer = await h.fetch(await fresh(h, { headers: { "X-Token-Hold": "999999", "X-Token-Reservation": "forged" } }));
		expect(answer.status).toBe(200);
		const sent = h.origin.requests[0]!.headers;
		expect(sent.has("x-token-hold")).toBe(false);
		expect(sent.has("x-token-reservation")).toBe(false);
	});

	it("POST /gateway/usage: 404 without ORIGIN_TOKEN, 401 without the token, 400 for a body that is not a report, 404 for a reservation this gateway never gave", async () => {
		const without = harness({ ORIGIN_TOKEN: "" });
		expect((await report(without, { reservation: "x", tokens: 1 }, "Bearer origin-token")).status).toBe(404);
		const h = harness(BUDGET({ daily_tokens: 1_000 }));
		for (const authorization of [undefined, "Bearer wrong", "origin-token", "Basic origin-token"]) {
			const refused = await report(h, { reservation: "svc-test:-:-:" + "0".repeat(32), tokens: 1 }, authorization);
			expect(refused.status, authorization).toBe(401);
			expect((await errorBody(refused)).code).toBe("unauthorized");
		}
		for (const body of [{}, { reservation: "r" }, { reservation: "r", tokens: -1 }, { reservation: "r", tokens: 1.5 }, { reservation: 7, tokens: 1 }, [], "text"]) {
			const refused = await report(h, body, "Bearer origin-token");
			expect(refused.status, JSON.stringify(body)).toBe(400);
			expect((await errorBody(refused)).code).toBe("invalid_usage_report");
		}
		const unknown = await report(h, { reservation: "not-one-of-ours", tokens: 1 }, "Bearer origin-token");
		expect(unknown.status).toBe(404);
		expect((await errorBody(unknown)).code).toBe("reservation_unknown");
		// Nothing of it reached Upstash: the id's form alone says it is not one of ours.
		expect(h.redis.scriptCalls).toEqual([]);
		// Without Upstash, an id this isolate never reserved is unknown here too: 404, not 503.
		const memoryOnly = harness(BUDGET({ daily_tokens: 1_000 }), { upstash: false });
		const nothingToSettle = await report(memoryOnly, { reservation: `svc-test:-:-:${"0".repeat(32)}`, tokens: 1 }, "Bearer origin-token");
		expect(nothingToSettle.status).toBe(404);
		expect((await errorBody(nothingToSettle)).code).toBe("reservation_unknown");
	});
});

describe("token budgets without Upstash (npm run dev): reservations made in memory settle in memory, in the isolate that made them", () => {
	/** A development gateway with no Upstash: the memory limiter holds the budget. */
	const dev = (entry: object = { daily_tokens: 1_000, token_hold: 100 }) => harness(BUDGET(entry, { ENVIRONMENT: "development" }), { upstash: false });
	const left = (answer: Response) => Number(/"daily_tokens";r=(\d+)/.exec(answer.headers.get("ratelimit") ?? "")?.[1]);
	const reservationOf = (h: Harness) => h.origin.requests.at(-1)!.headers.get("x-token-reservation")!;
	const ORIGIN_TOKEN = "Bearer origin-token";

	it("an answer's X-Token-Usage settles its reservation: the unspent part of the hold comes back, the header goes on to the client", async () => {
		const h = dev();
		h.origin.respond = () => Response.json({ reply: "spent 30" }, { headers: { "X-Token-Usage": "30" } });
		const first = await h.fetch(await fresh(h));
		expect(first.status).toBe(200);
		expect(first.headers.get("x-token-usage")).toBe("30");
		expect(h.origin.requests[0]!.headers.get("x-token-hold")).toBe("100");
		expect(left(first)).toBe(900);
		// Unreported, the next one's hold stays charged whole: 1000 - 30 - 100.
		h.origin.respond = () => Response.json({ reply: "no report" });
		expect(left(await h.fetch(await fresh(h)))).toBe(870);
		expect(left(await h.fetch(await fresh(h)))).toBe(770);
		const exposition = await scrape(h);
		expect(sampleValue(exposition, "agent_tokens_total", { kind: "held" })).toBe(300);
		expect(sampleValue(exposition, "agent_tokens_total", { kind: "settled" })).toBe(30);
	});

	it("an answer's X-Token-Usage that is not a whole number settles nothing and is logged: the hold stays charged, the header goes on", async () => {
		const h = dev();
		h.origin.respond = () => Response.json({ reply: "spent 1e1" }, { headers: { "X-Token-Usage": "1e1" } });
		const first = await h.fetch(await fresh(h));
		expect(first.headers.get("x-token-usage")).toBe("1e1");
		expect(left(first)).toBe(900);
		h.origin.respond = () => Response.json({ reply: "no report" });
		expect(left(await h.fetch(await fresh(h)))).toBe(800);
		expect(h.logs.filter((line) => line.level === "warn" && line.message.includes("X-Token-Usage"))).toHaveLength(1);
		expect(sampleValue(await scrape(h), "agent_tokens_total", { kind: "settled" })).toBe(0);
	});

	it("the RateLimit fields go on every answer past the replay check (the origin's, a 502), none on a refusal before it (409 replay, 400 invalid_token_limit)", async () => {
		const h = dev();
		const request = await fresh(h);
		const copy = request.clone();
		expect(left(await h.fetch(request))).toBe(900);
		const replayed = await h.fetch(copy);
		expect(replayed.status).toBe(409);
		expect(replayed.headers.has("ratelimit")).toBe(false);
		const badLimit = await h.fetch(await fresh(h, { headers: { "X-Token-Limit": "0" } }));
		expect(badLimit.status).toBe(400);
		expect(badLimit.headers.has("ratelimit")).toBe(false);
		h.origin.respond = () => {
			throw new TypeError("connection refused");
		};
		const unreachable = await h.fetch(await fresh(h));
		expect(unreachable.status).toBe(502);
		expect(left(unreachable)).toBe(800);
	});

	it("POST /gateway/usage: 200 settled once (at most the hold counted, an overrun counted), 409 after; another client's or an unknown id 404; after its lease 410, charged whole", async () => {
		const h = dev();
		await h.fetch(await fresh(h));
		const first = reservationOf(h);
		expect(first).toMatch(/^svc-test:\d{4}-\d{2}-\d{2}:-:[0-9a-f-]{36}$/);
		const settled = await report(h, { reservation: first, tokens: 250 }, ORIGIN_TOKEN);
		expect(settled.status).toBe(200);
		expect(await settled.json()).toEqual({ reservation: first, status: "settled", hold: 100, counted: 100 });
		const again = await report(h, { reservation: first, tokens: 0 }, ORIGIN_TOKEN);
		expect(again.status).toBe(409);
		expect((await errorBody(again)).code).toBe("reservation_settled");
		for (const reservation of [first.replace(/^svc-test:/, "other:"), `${first.slice(0, -4)}0000`, "not-one-of-ours"]) {
			const unknown = await report(h, { reservation, tokens: 1 }, ORIGIN_TOKEN);
			expect(unknown.status, reservation).toBe(404);
			expect((await errorBody(unknown)).code).toBe("reservation_unknown");
		}
		await h.fetch(await fresh(h));
		// A report may come a minute past the longest answer's life (the slot's lease): at 59 s past it, still settled.
		h.clock.now += 60_000 + 900_000 + 59_000;
		expect((await report(h, { reservation: reservationOf(h), tokens: 10 }, ORIGIN_TOKEN)).status).toBe(200);
		// 1000 - 100 (the first, reported above its hold) - 10, and this one's hold.
		const third = await h.fetch(await fresh(h));
		expect(left(third)).toBe(790);
		// The third is never reported in time: its lease (ORIGIN_TIMEOUT_MS + ORIGIN_STREAM_MAX_MS + 60 s) ends, and it stays charged whole.
		const late = reservationOf(h);
		h.clock.now += 60_000 + 900_000 + 60_000;
		const expired = await report(h, { reservation: late, tokens: 1 }, ORIGIN_TOKEN);
		expect(expired.status).toBe(410);
		expect((await errorBody(expired)).code).toBe("reservation_expired");
		expect(left(await h.fetch(await fresh(h)))).toBe(690);
		const exposition = await scrape(h);
		expect(sampleValue(exposition, "agent_tokens_total", { kind: "settled" })).toBe(110);
		expect(sampleValue(exposition, "agent_tokens_total", { kind: "overrun" })).toBe(150);
		expect(sampleValue(exposition, "agent_tokens_total", { kind: "expired" })).toBe(100);
	});

	it("a report that reaches another isolate cannot settle (404 there), and the hold stays charged whole where it was made", async () => {
		const h = dev();
		const other = dev();
		await h.fetch(await fresh(h));
		const elsewhere = await report(other, { reservation: reservationOf(h), tokens: 0 }, ORIGIN_TOKEN);
		expect(elsewhere.status).toBe(404);
		expect((await errorBody(elsewhere)).code).toBe("reservation_unknown");
		expect(left(await h.fetch(await fresh(h)))).toBe(800);
	});

	it("BUDGET_FAIL_MODE=memory during an outage: a report that reaches the isolate that held it settles there; another isolate cannot tell (503)", async () => {
		const h = harness(BUDGET({ daily_tokens: 1_000, token_hold: 100 }, { BUDGET_FAIL_MODE: "memory" }));
		const other = harness(BUDGET({ daily_tokens: 1_000, token_hold: 100 }, { BUDGET_FAIL_MODE: "memory" }));
		down(h);
		down(other);
		await h.fetch(await fresh(h));
		const held = reservationOf(h);
		const elsewhere = await report(other, { reservation: held, tokens: 5 }, ORIGIN_TOKEN);
		expect(elsewhere.status).toBe(503);
		expect((await errorBody(elsewhere)).code).toBe("budget_unavailable");
		expect(await (await report(h, { reservation: held, tokens: 5 }, ORIGIN_TOKEN)).json()).toMatchObject({ status: "settled", hold: 100, counted: 5 });
		expect(left(await h.fetch(await fresh(h)))).toBe(895);
	});
});

