import type { MemoryReplayStore } from "./memory.ts";
import type { MemoryLimiter } from "./memory-limiter.ts";
import type { HeldSlot, LimitedClaim, LimitedClaimRequest, LimitedClaimStore } from "./store.ts";

/**
 * The replay claim and the limits in this isolate's memory, in the script's order: a replay
 * spends nothing, a refusal spends nothing and claims the key all the same. Atomic within the
 * isolate: nothing awaits between the replay check, the spend and the claim.
 */
export class MemoryLimitedStore implements LimitedClaimStore {
	readonly name = "memory" as const;

	private readonly replay: Pick<MemoryReplayStore, "has" | "claim">;
	private readonly limiter: MemoryLimiter;
	private readonly now: () => number;

	constructor(replay: Pick<MemoryReplayStore, "has" | "claim">, limiter: MemoryLimiter, now: () => number = Date.now) {
		this.replay = replay;
		this.limiter = limiter;
		this.now = now;
	}

	async claim(request: LimitedClaimRequest): Promise<LimitedClaim> {
		if (this.replay.has(request.key)) return { outcome: "duplicate" };
		const { claim, take } = this.limiter.take(request.clientId, request.policy, this.now(), request.budget?.hold ?? 0);
		if (take === null) {
			// Refused: its bytes must never be executed later. A full store throws (503): refused either way.
			await this.replay.claim(request.key, request.value, request.ttlMs, request.clientId);
			return claim;
		}
		// The memory store's claim runs synchronously up to its answer: no other request slips in.
		const pending = this.replay.claim(request.key, request.value, request.ttlMs, request.clientId);
		let outcome: Awaited<typeof pending>;
		try {
			outcome = await pending;
		} catch (error) {
			this.limiter.refund(take);
			throw error;
		}
		if (outcome === "duplicate") {
			this.limiter.refund(take);
			return { outcome: "duplicate" };
		}
		if (request.budget !== undefined && claim.outcome === "claimed") {
			// In memory a hold is charged whole (no report reaches it): the origin still gets it as its ceiling.
			claim.reservation = { id: `${request.clientId}:-:-:${request.budget.nonce}`, hold: take.hold, store: this.name };
		}
		return claim;
	}

	async release(slot: HeldSlot): Promise<void> {
		this.limiter.release(slot.clientId, slot.id);
	}
}
