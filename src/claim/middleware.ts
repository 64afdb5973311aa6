import type { MiddlewareHandler } from "hono";
import type { VerifiedVariables } from "../auth/verified.ts";
import { backgroundOf } from "../background.ts";
import { gatewayError } from "../errors.ts";
import type { AuthEvents, BudgetEvents, FallbackReason, LimitEvents } from "../events.ts";
import { limitRefusal, REFUSAL_CODES } from "../limits/headers.ts";
import type { LimitPolicies } from "../limits/policy.ts";
import { LogThrottle, type Logger } from "../log.ts";
import { answerOfLimitedClient } from "./answer.ts";
import type { ReplayGuard } from "./guard.ts";
import type { Settlements } from "./settle.ts";
import type { HeldSlot } from "./store.ts";

export interface ReplayProtectionOptions {
	/** Claims each verified request once: in Upstash, or this isolate's memory (docs/design.md, "Replay protection"). */
	guard: Pick<ReplayGuard, "claim" | "pendingReconciliation" | "reconcile">;
	events: Pick<AuthEvents, "outcome">;
	log: Logger;
	/** @default Date.now */
	now?: () => number;
	/**
	 * Per-client limits (`CLIENT_LIMITS`, keyring records; docs/design.md, "Per-client limits"): each client's
	 * policy, checked in its claim; where a slot is freed; where a refusal is counted. Unset: none.
	 */
	limits?: {
		policies: Pick<LimitPolicies, "policyFor">;
		release: (slot: HeldSlot) => Promise<void>;
		events: LimitEvents & BudgetEvents;
		/** Settles a budgeted request from its answer's `X-Token-Usage` (docs/design.md, "Token budgets"). */
		settlements?: Pick<Settlements, "reportHeader">;
	};
}

/** A fallback or a closed failure is logged at most once per this interval (with how many were held back). */
const LOG_INTERVAL_MS = 10_000;

/**
 * Claims the replay key of a request a signature middleware verified (`c.var.verified`),
 * so a signed request is accepted once: a replay answers 409 `replay`, a store that cannot
 * tell (in `closed` mode, or a full memory store) 503 `replay_store_unavailable`. Claims made
 * in memory during an outage are written back to Upstash in the background of the first
 * requests whose claim Upstash answers again.
 *
 * It counts `auth="ok"` itself: the claim is a request's last admission step, so an accepted
 * request is one this middleware let through, whatever scheme verified it.
 *
 * @example
 * ```ts
 * app.post(
 *   "/agent/*",
 *   signatureAuth({ keys: new Keyring(config.auth), schemes: ["v1", "v2"], maxSkewMs: 300_000, maxBodyBytes: 1_048_576, events, log }),
 *   replayProtection({ guard: new ReplayGuard({ primary, memory, breaker, failMode: "memory", ... }), events, log }),
 *   (c) => c.json({ client: c.var.verified.clientId }),
 * );
 * ```
 */
export const replayProtection = (options: ReplayProtectionOptions): MiddlewareHandler<{ Variables: VerifiedVariables }> => {
	const { guard, events, log, limits } = options;
	const now = options.now ?? Date.now;
	const throttle = new LogThrottle(LOG_INTERVAL_MS, now);

	// With limits, a fallback also means each isolate enforces them alone: the line says so.
	const perIsolate = limits === undefined ? {} : { limits: "enforced per isolate" };
	const warn = (message: string, reason: FallbackReason, failMode: "memory" | "closed", request: Request) => {
		const suppressed = throttle.admit("fallback");
		if (suppressed !== null) log.warn(message, { reason, colo: coloOf(request) ?? null, fail_mode: failMode, suppressed, ...(failMode === "memory" ? perIsolate : {}) });
	};

	return async function replayProtection(c, next) {
		const verified = c.get("verified");
		if (verified === undefined) throw new Error("replayProtection runs after a signature middleware");
		const { replay } = verified;
		const policy = limits?.policies.policyFor(verified.clientId) ?? null;
		// A budgeted client may lower its hold (never raise it) with X-Token-Limit; a bad one is refused before the claim.
		const tokenHold = policy?.budget === undefined ? null : tokenLimit(c.req.header("x-token-limit"), policy.budget.hold, events);
		const decision = await guard.claim(replay.id, verified.clientId, replay.signedAt, policy, tokenHold);
		// Write-backs start as soon as Upstash answers again, beside this request's origin call.
		if (guard.pendingReconciliation > 0) backgroundOf(c)?.waitUntil(guard.reconcile());
		if (decision.status === "replay") {
			events.outcome("fail", "replay");
			throw gatewayError("replay", { headers: { "X-Server-Time": String(now()) } });
		}
		if (decision.status === "unavailable") {
			if (decision.store === "upstash" && decision.reason !== "full") {
				warn("replay store unavailable, failing closed", decision.reason, "closed", c.req.raw);
			}
			const code = decision.budget === true ? "budget_unavailable" : "replay_store_unavailable";
			events.outcome("fail", code);
			throw gatewayError(code);
		}
		if (decision.status === "limited") {
			const { limit, retryAfterMs, state, expiredTokens } = decision.refusal;
			if (expiredTokens) limits!.events.tokens("expired", expiredTokens);
			limits!.events.limitRefused(limit, policy!.label);
			events.outcome("fail", REFUSAL_CODES[limit]);
			throw limitRefusal(limit, retryAfterMs, policy!, state);
		}
		if (decision.fallback !== null) warn("replay store unavailable, falling back to memory", decision.fallback, "memory", c.req.raw);
		events.outcome("ok", "real");
		const reservation = decision.limits?.reservation;
		if (decision.limits?.expiredTokens) limits!.events.tokens("expired", decision.limits.expiredTokens);
		if (reservation !== undefined) {
			limits!.events.tokens("held", reservation.hold);
			c.set("reservation", { id: reservation.id, hold: reservation.hold });
		}
		// A slot is released when the answer ends: forwarding pipes it so that its end is seen, under the deadline.
		if (decision.limits?.slot) c.set("watchAnswerEnd", true);
		await next();
		// The origin's report on its answer settles the reservation after the answer (where it is held); the header goes on to the client.
		const usage = reservation === undefined ? null : c.res.headers.get("x-token-usage");
		const background = usage === null ? undefined : backgroundOf(c);
		if (background !== undefined) limits?.settlements?.reportHeader(reservation!, usage!, background);
		if (decision.limits !== undefined) {
			const answer = answerOfLimitedClient(c.res, policy!, decision.limits, limits!.release, backgroundOf(c));
			// A new Response (a slot's pipe) already has the headers: unset first, so Hono does not copy them onto it again.
			if (answer !== c.res) {
				c.res = undefined;
				c.res = answer;
			}
		}
	};
};

/**
 * The hold a budgeted request asks for: its `X-Token-Limit` when smaller than `token_hold`; a value that is not a whole
 * number from 1 is 400. A whole number of any length is one (signRequest() sends up to 2^53 - 1): a long one lowers nothing.
 */
function tokenLimit(header: string | undefined, hold: number, events: Pick<AuthEvents, "outcome">): number {
	if (header === undefined) return hold;
	if (!/^[0-9]+$/.test(header) || Number(header) < 1) {
		events.outcome("fail", "invalid_token_limit");
		throw gatewayError("invalid_token_limit");
	}
	return Math.min(Number(header), hold);
}

function coloOf(request: Request): string | undefined {
	const colo = (request as { cf?: { colo?: unknown } }).cf?.colo;
	return typeof colo === "string" ? colo : undefined;
}
