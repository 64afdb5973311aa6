import type { StoreFailureReason } from "../events.ts";
import type { LimitPolicy } from "../limits/policy.ts";
import type { MemoryReplayStore } from "./memory.ts";
import { reservationId, reservationNonce } from "./redis-budget.ts";
import type { ClaimOutcome, LimitedClaim, LimitedClaimRequest, LimitedClaimStore, LostClaim, Spend } from "./store.ts";

/**
 * A store's answer to the replay guard (docs/design.md, "Per-client limits"): a plain claim's,
 * or a limited claim's (with what is left, or why refused). The guard reads it; the limited
 * claims are made below.
 */
export type Answer = ClaimOutcome | LimitedClaim;

/**
 * The limits script once, sent at `now`; a timeout is confirmed by running it again with a
 * confirmation's budget (at least a second, as the plain claim's `SET NX GET`), which finds
 * this claim's own value (or its own refusal) when the first run landed. `call` times the
 * command and turns a failure into its reason. When no answer came, a run may still have
 * landed: what it may have taken (a slot, a reservation) goes to `lost`, to be given back.
 */
export async function claimUnderLimits(
	store: LimitedClaimStore,
	claim: { key: string; ttlMs: number; clientId: string; policy: LimitPolicy; tokenHold: number | null },
	value: string,
	call: (store: LimitedClaimStore, command: () => Promise<LimitedClaim>) => Promise<LimitedClaim | StoreFailureReason>,
	now: number,
	lost: (claim: LostClaim) => void,
): Promise<LimitedClaim | StoreFailureReason> {
	const request = { ...limitedRequest(claim.key, value, claim), at: now };
	const first = await call(store, () => store.claim(request));
	const outcome = first === "timeout" ? await call(store, () => store.claim(request, true)) : first;
	if (typeof outcome === "string") lost(lostClaim(request, store.name));
	return outcome;
}

/** What `request`'s run in `store` may have taken: its slot (its replay value names it) and its reservation. */
function lostClaim(request: LimitedClaimRequest & { at: number }, store: LimitedClaimStore["name"]): LostClaim {
	const { policy, clientId, value } = request;
	return {
		slot: policy.concurrent === null ? null : { clientId, id: value, store },
		reservation: request.budget === undefined || policy.budget === undefined ? null : reservationId(request, request.at),
	};
}

/** A claim in this isolate's memory: the plain one, or, under a limit policy, with the limits in memory. */
export function claimInMemory(
	memory: Pick<MemoryReplayStore, "claim">,
	limited: LimitedClaimStore | undefined,
	key: string,
	claim: { ttlMs: number; clientId: string; policy: LimitPolicy | null; tokenHold: number | null },
): Promise<Answer> {
	const { ttlMs, clientId, policy } = claim;
	if (policy === null || limited === undefined) return memory.claim(key, "", ttlMs, clientId);
	return limited.claim(limitedRequest(key, "", { ...claim, policy }));
}

/** A claim under `policy`; with a token budget, the hold asked for and a fresh reservation nonce (one per claim: a confirming run names the same). */
function limitedRequest(key: string, value: string, claim: { ttlMs: number; clientId: string; policy: LimitPolicy; tokenHold: number | null }): LimitedClaimRequest {
	const { ttlMs, clientId, policy, tokenHold } = claim;
	const request: LimitedClaimRequest = { key, value, ttlMs, clientId, policy };
	if (policy.budget !== undefined) request.budget = { hold: Math.min(tokenHold ?? policy.budget.hold, policy.budget.hold), nonce: reservationNonce() };
	return request;
}

/** The quota a memory claim under `policy` spent at `now`, to be added to Upstash's counters; none without `rpm` or `rpd`. */
export function spendOf(policy: LimitPolicy | null, now: number): Spend | undefined {
	if (policy === null || (policy.rpm === null && policy.rpd === null)) return undefined;
	return { at: now, rpm: policy.rpm !== null, rpd: policy.rpd !== null };
}
