import type { StoreFailureReason } from "../events.ts";
import type { MemoryReplayStore } from "../replay/memory.ts";
import type { ClaimOutcome } from "../replay/store.ts";
import type { LimitPolicy } from "./policy.ts";
import type { LimitedClaim, LimitedClaimRequest, LimitedClaimStore } from "./store.ts";

/**
 * A store's answer to the replay guard (docs/design.md, "Per-client limits"): a plain claim's,
 * or a limited claim's (with what is left, or why refused). The guard reads it; the limited
 * claims are made below.
 */
export type Answer = ClaimOutcome | LimitedClaim;

/** A confirming run that found this claim's own value: the first run landed, its quota spent and its slot held. */
export function confirmedClaim(answer: LimitedClaim, request: { value: string; clientId: string; policy: LimitPolicy }): LimitedClaim {
	if (answer.outcome !== "duplicate" || answer.found !== request.value) return answer;
	const slot = request.policy.concurrent === null ? null : { clientId: request.clientId, id: request.value, store: "upstash" as const };
	return { outcome: "claimed", state: { rpm: null, rpd: null, concurrent: null }, slot };
}

/**
 * The limits script once; a timeout is confirmed by running it again, which finds this
 * claim's own value when the first run landed. `call` times the command and turns a failure
 * into its reason.
 */
export async function claimUnderLimits(
	store: LimitedClaimStore,
	claim: { key: string; ttlMs: number; clientId: string; policy: LimitPolicy },
	value: string,
	call: (store: LimitedClaimStore, command: () => Promise<LimitedClaim>) => Promise<LimitedClaim | StoreFailureReason>,
): Promise<LimitedClaim | StoreFailureReason> {
	const request: LimitedClaimRequest = { key: claim.key, value, ttlMs: claim.ttlMs, clientId: claim.clientId, policy: claim.policy };
	const first = await call(store, () => store.claim(request));
	return first === "timeout" ? call(store, async () => confirmedClaim(await store.claim(request), request)) : first;
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
