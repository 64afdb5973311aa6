import type { MiddlewareHandler } from "hono";
import type { VerifiedVariables } from "../auth/verified.ts";
import { gatewayError } from "../errors.ts";
import type { AuthEvents } from "../events.ts";
import type { ReplayGuard } from "./guard.ts";

export interface ReplayProtectionOptions {
	/** Claims each verified request once: in Upstash, or this isolate's memory (SPEC section 3). */
	guard: Pick<ReplayGuard, "claim" | "pendingReconciliation" | "reconcile">;
	events: Pick<AuthEvents, "outcome">;
	/** @default Date.now */
	now?: () => number;
}

/**
 * Claims the replay key of a request a signature middleware verified (`c.var.verified`),
 * so a signed request is accepted once: a replay answers 409 `replay`, a store that cannot
 * tell (in `closed` mode, or a full memory store) 503 `replay_store_unavailable`. After the
 * answer, claims made in memory during an outage are written back to Upstash in the background.
 *
 * @example
 * ```ts
 * app.use("/agent/*", hmacAuth({ keyring, maxSkewMs, maxBodyBytes, events, log }), replayProtection({ guard, events }));
 * ```
 */
export const replayProtection = (options: ReplayProtectionOptions): MiddlewareHandler<{ Variables: VerifiedVariables }> => {
	const { guard, events } = options;
	const now = options.now ?? Date.now;

	return async function replayProtection(c, next) {
		const verified = c.get("verified");
		if (verified === undefined) throw new Error("replayProtection runs after a signature middleware");
		const { replay } = verified;
		const request = c.req.raw;
		// The colo is read only when a warning names it (reading `request.cf` costs on every request).
		const context = {
			get colo() {
				return coloOf(request);
			},
		};
		const decision = await guard.claim(replay.id, verified.clientId, replay.signedAt, context);
		if (decision.status === "replay") {
			events.outcome("fail", "replay");
			throw gatewayError("replay", { headers: { "X-Server-Time": String(now()) } });
		}
		if (decision.status === "unavailable") {
			events.outcome("fail", "replay_store_unavailable");
			throw gatewayError("replay_store_unavailable");
		}
		events.outcome("ok", "real");
		await next();
		// Claims made in memory during an Upstash outage are written to it once it answers again,
		// in the background of a request that made a claim (never of an anonymous /healthz).
		if (guard.pendingReconciliation > 0) backgroundOf(c)?.waitUntil(guard.reconcile());
	};
};

function backgroundOf(c: { executionCtx: Pick<ExecutionContext, "waitUntil"> }): Pick<ExecutionContext, "waitUntil"> | undefined {
	try {
		return c.executionCtx;
	} catch {
		// No ExecutionContext (app.request() in a test): nothing can run in the background.
		return undefined;
	}
}

function coloOf(request: Request): string | undefined {
	const colo = (request as { cf?: { colo?: unknown } }).cf?.colo;
	return typeof colo === "string" ? colo : undefined;
}
