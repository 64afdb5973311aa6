import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import type { VerifiedVariables } from "../auth/verified.ts";
import { recordingLog } from "../../test/fixtures/replay-guard.ts";
import type { ReplayDecision } from "./guard.ts";
import { replayProtection } from "./middleware.ts";

function app(decision: ReplayDecision, pending = 0) {
	const claims: unknown[][] = [];
	const outcomes: string[] = [];
	const order: string[] = [];
	const { log, lines } = recordingLog();
	const guard = {
		pendingReconciliation: pending,
		reconcile: async () => void order.push("reconcile"),
		claim: async (...args: unknown[]) => {
			claims.push(args);
			return decision;
		},
	};
	const events = { outcome: (...args: string[]) => void outcomes.push(args.join("/")) };
	const hono = new Hono<{ Variables: VerifiedVariables }>();
	hono.use(async (c, next) => {
		c.set("verified", { scheme: "v1", clientId: "svc", path: "/agent/chat", query: "", body: new Uint8Array(0), coveredHeaders: [], replay: { id: "sig-1", signedAt: "1700" } });
		await next();
		order.push("after");
	});
	hono.use(replayProtection({ guard, events, log, now: () => 1234 }));
	hono.post("/agent/chat", async (c) => {
		await Promise.resolve();
		order.push("handler");
		return c.json({ ok: true });
	});
	hono.onError((error) => (error instanceof HTTPException ? error.getResponse() : new Response("boom", { status: 599 })));
	const background: Promise<unknown>[] = [];
	const ctx = { waitUntil: (promise: Promise<unknown>) => void background.push(promise), passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
	const send = (init: RequestInit = {}) => hono.fetch(new Request("https://gateway.test/agent/chat", { method: "POST", ...init }), {}, ctx);
	return { send, claims, outcomes, order, lines, background };
}

const claimed: ReplayDecision = { status: "claimed", store: "upstash", fallback: null };

describe("replayProtection()", () => {
	it("claims the verified key with client and signed time, counts the request accepted, then runs the route to its end", async () => {
		const { send, claims, outcomes, order, lines } = app(claimed);
		expect((await send()).status).toBe(200);
		// The fourth argument is the client's limit policy: null without CLIENT_LIMITS.
		expect(claims).toEqual([["sig-1", "svc", "1700", null, null]]);
		expect(outcomes).toEqual(["ok/real"]);
		expect(order).toEqual(["handler", "after"]);
		expect(lines).toEqual([]);
	});

	it("409 replay with X-Server-Time from its clock; 503 when the store cannot tell; each counted under its own mode", async () => {
		const replay = app({ status: "replay", store: "upstash" });
		const refused = await replay.send();
		expect(refused.status).toBe(409);
		expect(refused.headers.get("x-server-time")).toBe("1234");
		expect(replay.outcomes).toEqual(["fail/replay"]);
		const unavailable = app({ status: "unavailable", store: "memory", reason: "full" });
		const failed = await unavailable.send();
		expect(failed.status).toBe(503);
		expect(unavailable.outcomes).toEqual(["fail/replay_store_unavailable"]);
		expect(unavailable.order).toEqual(["after"]);
		// A full memory store is the guard's to log; this middleware logs only Upstash's failures.
		expect(unavailable.lines).toEqual([]);
	});

	it("logs a fallback to memory with the request's colo, rate limited", async () => {
		const fellBack = app({ status: "claimed", store: "memory", fallback: "timeout" });
		expect((await fellBack.send({ cf: { colo: "AMS" } } as RequestInit)).status).toBe(200);
		await fellBack.send({ cf: { colo: "AMS" } } as RequestInit);
		expect(fellBack.lines).toEqual([
			{ level: "warn", message: "replay store unavailable, falling back to memory", fields: { reason: "timeout", colo: "AMS", fail_mode: "memory", suppressed: 0 } },
		]);
		expect(fellBack.outcomes).toEqual(["ok/real", "ok/real"]);
	});

	it("logs failing closed with the colo (null when the request has none)", async () => {
		const closed = app({ status: "unavailable", store: "upstash", reason: "breaker_open" });
		expect((await closed.send()).status).toBe(503);
		expect(closed.lines).toEqual([
			{ level: "warn", message: "replay store unavailable, failing closed", fields: { reason: "breaker_open", colo: null, fail_mode: "closed", suppressed: 0 } },
		]);
	});

	it("starts the write-backs with the claim, before the origin answers, and only when claims wait for one", async () => {
		const waiting = app(claimed, 3);
		await waiting.send();
		expect(waiting.background).toHaveLength(1);
		expect(waiting.order).toEqual(["reconcile", "handler", "after"]);
		// A replay's request starts them too: Upstash answered it.
		const replayed = app({ status: "replay", store: "upstash" }, 3);
		await replayed.send();
		expect(replayed.background).toHaveLength(1);
		const none = app(claimed, 0);
		await none.send();
		expect(none.background).toEqual([]);
		expect(none.order).toEqual(["handler", "after"]);
	});
});
