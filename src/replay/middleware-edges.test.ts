import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import type { VerifiedVariables } from "../auth/verified.ts";
import { replayProtection } from "./middleware.ts";

type Decision = { status: "claimed" | "replay" | "unavailable" };

function app(decision: Decision["status"]) {
	const claims: unknown[][] = [];
	const outcomes: string[] = [];
	const guard = {
		pendingReconciliation: 0,
		reconcile: async () => {},
		claim: async (...args: unknown[]) => {
			claims.push(args);
			return { status: decision } as never;
		},
	};
	const events = { outcome: (...args: string[]) => void outcomes.push(args.join("/")) };
	const order: string[] = [];
	const hono = new Hono<{ Variables: VerifiedVariables }>();
	hono.use(async (c, next) => {
		c.set("verified", { scheme: "v1", clientId: "svc", path: "/agent/chat", query: "", body: new Uint8Array(0), replay: { id: "sig-1", signedAt: "1700" } });
		await next();
		order.push("after");
	});
	hono.use(replayProtection({ guard, events, now: () => 1234 }));
	hono.post("/agent/chat", async (c) => {
		await Promise.resolve();
		order.push("handler");
		return c.json({ ok: true });
	});
	hono.onError((error) => (error instanceof HTTPException ? error.getResponse() : new Response("boom", { status: 599 })));
	return { hono, claims, outcomes, order };
}

describe("replayProtection()", () => {
	it("claims the verified key with client, signed time and the request's colo, then runs the route to its end", async () => {
		const { hono, claims, outcomes, order } = app("claimed");
		const request = new Request("https://gateway.test/agent/chat", { method: "POST", cf: { colo: "AMS" } } as RequestInit);
		const response = await hono.fetch(request);
		expect(response.status).toBe(200);
		expect(claims).toEqual([["sig-1", "svc", "1700", { colo: "AMS" }]]);
		expect(outcomes).toEqual(["ok/real"]);
		expect(order).toEqual(["handler", "after"]);
	});

	it("409 replay with X-Server-Time from its clock; 503 when the store cannot tell; each counted under its own mode", async () => {
		const replay = app("replay");
		const refused = await replay.hono.fetch(new Request("https://gateway.test/agent/chat", { method: "POST" }));
		expect(refused.status).toBe(409);
		expect(refused.headers.get("x-server-time")).toBe("1234");
		expect(replay.claims[0]![3]).toEqual({ colo: undefined });
		expect(replay.outcomes).toEqual(["fail/replay"]);
		const unavailable = app("unavailable");
		const failed = await unavailable.hono.fetch(new Request("https://gateway.test/agent/chat", { method: "POST" }));
		expect(failed.status).toBe(503);
		expect(unavailable.outcomes).toEqual(["fail/replay_store_unavailable"]);
		expect(unavailable.order).toEqual(["after"]);
	});
});
