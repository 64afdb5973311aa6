import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import type { VerifiedVariables } from "../auth/verified.ts";
import { readClientLimits } from "../limits/config.ts";
import type { HeldSlot } from "./store.ts";
import { recordingLog } from "../../test/fixtures/replay-guard.ts";
import type { ReplayDecision } from "./guard.ts";
import { replayProtection } from "./middleware.ts";

const NONE = { rpm: null, rpd: null, concurrent: null };
const policies = readClientLimits('{"svc": {"rpm": 5, "concurrent": 2, "label": true}, "budgeted": {"daily_tokens": 1000, "token_hold": 100}}', { problem: () => {}, strict: () => {} })!;

function app(decision: ReplayDecision, clientId = "svc") {
	const claims: unknown[][] = [];
	const outcomes: string[] = [];
	const refusals: string[] = [];
	const released: HeldSlot[] = [];
	const tokens: string[] = [];
	let handled = 0;
	let watched: boolean | undefined;
	const guard = {
		pendingReconciliation: 0,
		reconcile: async () => {},
		claim: async (...args: unknown[]) => {
			claims.push(args);
			return decision;
		},
	};
	const hono = new Hono<{ Variables: VerifiedVariables }>();
	hono.use(async (c, next) => {
		c.set("verified", { scheme: "v1", clientId, path: "/agent/chat", query: "", body: new Uint8Array(0), coveredHeaders: [], replay: { id: "sig-1", signedAt: "1700" } });
		await next();
	});
	hono.use(
		replayProtection({
			guard,
			events: { outcome: (...args: string[]) => void outcomes.push(args.join("/")) },
			log: recordingLog().log,
			limits: { policies, release: async (slot) => void released.push(slot), events: { limitRefused: (limit, label) => void refusals.push(`${limit}/${label}`), tokens: (kind, count) => void tokens.push(`${kind}/${count}`) } },
		}),
	);
	hono.post("/agent/chat", (c) => {
		handled++;
		watched = c.get("watchAnswerEnd");
		return c.body("streamed answer");
	});
	hono.onError((error) => (error instanceof HTTPException ? error.getResponse() : new Response("boom", { status: 599 })));
	const background: Promise<unknown>[] = [];
	const ctx = { waitUntil: (promise: Promise<unknown>) => void background.push(promise), passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
	const send = (headers: HeadersInit = {}) => hono.fetch(new Request("https://gateway.test/agent/chat", { method: "POST", headers }), {}, ctx);
	return { send, claims, outcomes, refusals, released, tokens, background, handled: () => handled, watched: () => watched };
}

describe("replayProtection() with CLIENT_LIMITS", () => {
	it("passes the client's policy to the claim; a client without one claims plainly (null)", async () => {
		const limited = app({ status: "claimed", store: "upstash", fallback: null, limits: { state: NONE, slot: null } });
		await limited.send();
		expect(limited.claims[0]![3]).toEqual({ rpm: 5, rpd: null, concurrent: 2, label: "svc" });
		const other = app({ status: "claimed", store: "upstash", fallback: null }, "other");
		const answer = await other.send();
		expect(other.claims[0]![3]).toBeNull();
		expect(answer.headers.has("ratelimit-policy")).toBe(false);
	});

	it("asks the claim for the client's X-Token-Limit when it is below token_hold, and for token_hold otherwise", async () => {
		const budgeted = app({ status: "claimed", store: "upstash", fallback: null, limits: { state: NONE, slot: null } }, "budgeted");
		for (const headers of [{}, { "X-Token-Limit": "40" }, { "X-Token-Limit": "5000" }, { "X-Token-Limit": "100" }] as Record<string, string>[]) expect((await budgeted.send(headers)).status).toBe(200);
		expect(budgeted.claims.map((args) => args[4])).toEqual([100, 40, 100, 100]);
	});

	it("a refusal: 429 with its code and fields, counted (by the listed label), and the route never runs", async () => {
		const { send, outcomes, refusals, handled } = app({
			status: "limited",
			store: "upstash",
			refusal: { outcome: "limited", limit: "concurrent", retryAfterMs: 1_000, state: { ...NONE, concurrent: { remaining: 0 } } },
		});
		const response = await send();
		expect(response.status).toBe(429);
		expect(await response.json()).toMatchObject({ code: "too_many_in_flight" });
		expect(response.headers.get("retry-after")).toBe("1");
		expect(response.headers.get("ratelimit")).toBe('"concurrent";r=0');
		expect(outcomes).toEqual(["fail/too_many_in_flight"]);
		expect(refusals).toEqual(["concurrent/svc"]);
		expect(handled()).toBe(0);
	});

	it("counts tokens by kind: a claim's hold as held, the expired holds its claim charged as expired, a refusal's too", async () => {
		const budget = { ...NONE, dailyTokens: { remaining: 940, resetMs: 60_000 } };
		const accepted = app({
			status: "claimed",
			store: "upstash",
			fallback: null,
			limits: { state: budget, slot: null, reservation: { id: "svc:-:-:n", hold: 60, store: "upstash" }, expiredTokens: 250 },
		});
		expect((await accepted.send()).status).toBe(200);
		expect(accepted.tokens.sort()).toEqual(["expired/250", "held/60"]);
		const refused = app({
			status: "limited",
			store: "upstash",
			refusal: { outcome: "limited", limit: "daily_tokens", retryAfterMs: 60_000, state: { ...budget, dailyTokens: { remaining: 0, resetMs: 60_000 } }, expiredTokens: 90 },
		});
		expect((await refused.send()).status).toBe(429);
		expect(refused.tokens).toEqual(["expired/90"]);
	});

	it("accepted: the fields on the answer, and its slot released once the body was read", async () => {
		const slot: HeldSlot = { clientId: "svc", id: "v", store: "upstash" };
		const { send, released, background } = app({
			status: "claimed",
			store: "upstash",
			fallback: null,
			limits: { state: { ...NONE, rpm: { remaining: 4, resetMs: 60_000 }, concurrent: { remaining: 1 } }, slot },
		});
		const response = await send();
		expect(response.headers.get("ratelimit-policy")).toBe('"rpm";q=5;w=60, "concurrent";q=2;qu="concurrent-requests"');
		expect(response.headers.get("ratelimit")).toBe('"rpm";r=4;t=60, "concurrent";r=1');
		expect(released).toEqual([]);
		expect(await response.text()).toBe("streamed answer");
		await Promise.all(background);
		expect(released).toEqual([slot]);
	});

	it("only a slot asks forwarding to watch the answer's end: a budget's reservation alone leaves the stream the runtime's", async () => {
		const slot: HeldSlot = { clientId: "svc", id: "v", store: "upstash" };
		const withSlot = app({ status: "claimed", store: "upstash", fallback: null, limits: { state: { ...NONE, concurrent: { remaining: 1 } }, slot } });
		await (await withSlot.send()).text();
		expect(withSlot.watched()).toBe(true);
		const budgetOnly = app({ status: "claimed", store: "upstash", fallback: null, limits: { state: NONE, slot: null, reservation: { id: "svc:-:-:n", hold: 10, store: "upstash" } } });
		const answer = await budgetOnly.send();
		expect(await answer.text()).toBe("streamed answer");
		expect(budgetOnly.handled()).toBe(1);
		expect(budgetOnly.watched()).toBeUndefined();
	});
});
