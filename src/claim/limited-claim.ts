import type { StoreFailureReason } from "../events.ts";
import type { LimitPolicy } from "../limits/policy.ts";
import type { MemoryReplayStore } from "./memory.ts";
import type { ClaimOutcome, LimitedClaim, LimitedClaimRequest, LimitedClaimStore } from "./store.ts";

/**
 * A store's answer to the replay guard (docs/design.md, "Per-client limits"): a plain claim's,
 * or a limited claim's (with what is left, or why refused). The guard reads it; the limited
 * claims are made below.
 */
export type Answer = ClaimOutcome | LimitedClaim;

/**
 * The limits script once; a timeout is confirmed by running it again with a confirmation's
 * budget (at least a second, as the plain claim's `SET NX GET`), which finds this claim's own
 * value (or its own refusal) when the first run landed. `call` times the command and turns a
 * failure into its reason.
 */
export async function claimUnderLimits(
	store: LimitedClaimStore,
	claim: { key: string; ttlMs: number; clientId: string; policy: LimitPolicy },
	value: string,
	call: (store: LimitedClaimStore, command: () => Promise<LimitedClaim>) => Promise<LimitedClaim | StoreFailureReason>,
): Promise<LimitedClaim | StoreFailureReason> {
	const request: LimitedClaimRequest = { key: claim.key, value, ttlMs: claim.ttlMs, clientId: claim.clientId, policy: claim.policy };
	const first = await call(store, () => store.claim(request));
	return first === "timeout" ? call(store, () => store.claim(request, true)) : first;
}

/** A claim in this isolate's memory: the plain one, or, under a limit policy, with the limits in memory. */
export function claimInMemory(
	memory: Pick<MemoryReplayStore, "claim">,
	limited: LimitedClaimStore | undefined,
	key: string,
	claim: { ttlMs: number; clientId: string; policy: LimitPolicy | null },
): Promise<Answer> {
	const { ttlMs, clientId, policy } = claim;
	if (policy === null || limited === undefined) return memory.claim(key, "", ttlMs, clientId);
	return limited.claim({ key, value: "", ttlMs, clientId, policy });
}
