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
		for (const [limit, hold] of [["40", "40"], ["5000", "100"]]) {
			expect((await h.fetch(await fresh(h, { headers: { "X-Token-Limit": limit! } }))).status).toBe(200);
			expect(h.origin.requests.at(-1)!.headers.get("x-token-hold")).toBe(hold);
		}
		for (const bad of ["0", "-1", "1.5", "ten", "1e3"]) {
			const refused = await h.fetch(await fresh(h, { headers: { "X-Token-Limit": bad } }));
			expect(refused.status, bad).toBe(400);
			expect((await errorBody(refused)).code).toBe("invalid_token_limit");
		}
		expect(h.origin.requests).toHaveLength(2);
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
		// Without Upstash, budgets live in each isolate's memory and no reservation is ever settled: 404, not 503.
		const memoryOnly = harness(BUDGET({ daily_tokens: 1_000 }), { upstash: false });
		const nothingToSettle = await report(memoryOnly, { reservation: `svc-test:-:-:${"0".repeat(32)}`, tokens: 1 }, "Bearer origin-token");
		expect(nothingToSettle.status).toBe(404);
		expect((await errorBody(nothingToSettle)).code).toBe("reservation_unknown");
	});
});
