import type { MemoryReplayStore } from "./memory.ts";
import type { MemoryLimiter } from "./memory-limiter.ts";
import { MemoryReservations } from "./memory-reservations.ts";
import type { HeldSlot, LimitedClaim, LimitedClaimRequest, LimitedClaimStore, SettleResult } from "./store.ts";

export interface MemoryLimitedOptions {
	/** How long a token reservation waits for the origin's report. @default the limiter's lease + 60 s, as in Upstash */
	reservationLeaseMs?: number;
	/** Token reservations remembered at once (a forgotten one stays charged whole). @default 10000 */
	maxReservations?: number;
}

/**
 * The replay claim and the limits in this isolate's memory, in the script's order: a replay
 * spends nothing, a refusal spends nothing and claims the key all the same. Atomic within the
 * isolate: nothing awaits between the replay check, the spend and the claim. Its token
 * reservations are settled here, in the isolate that made them (docs/design.md, "Token budgets").
 */
export class MemoryLimitedStore implements LimitedClaimStore {
	readonly name = "memory" as const;

	private readonly replay: Pick<MemoryReplayStore, "has" | "claim">;
	private readonly limiter: MemoryLimiter;
	private readonly now: () => number;
	private readonly reservations: MemoryReservations;

	constructor(replay: Pick<MemoryReplayStore, "has" | "claim">, limiter: MemoryLimiter, now: () => number = Date.now, options: MemoryLimitedOptions = {}) {
		this.replay = replay;
		this.limiter = limiter;
		this.now = now;
		this.reservations = new MemoryReservations({ leaseMs: options.reservationLeaseMs ?? limiter.leaseMs + 60_000, maxOpen: options.maxReservations });
	}

	async claim(request: LimitedClaimRequest): Promise<LimitedClaim> {
		if (this.replay.has(request.key)) return { outcome: "duplicate" };
		const now = this.now();
		// Reservations whose lease ended are dropped (charged whole) as budgeted requests come.
		if (request.budget !== undefined) this.reservations.sweep(now);
		const { claim, take } = this.limiter.take(request.clientId, request.policy, now, request.budget?.hold ?? 0);
		if (take === null) {
			// Refused: its bytes must never be executed later. A full store throws (503): refused either way.
			await this.replay.claim(request.key, request.value, request.ttlMs, request.clientId);
			return this.withExpired(claim);
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
			// Named as in Upstash: the windows it holds in (those the budget has), then the nonce.
			const budget = request.policy.budget!;
			const id = `${request.clientId}:${budget.daily === null ? "-" : take.day}:${budget.monthly === null ? "-" : take.month}:${request.budget.nonce}`;
			this.reservations.add(id, { clientId: request.clientId, hold: take.hold, day: take.day, month: take.month }, now);
			claim.reservation = { id, hold: take.hold, store: this.name };
		}
		return this.withExpired(claim);
	}

	async release(slot: HeldSlot): Promise<void> {
		this.limiter.release(slot.clientId, slot.id);
	}

	/** Settles a reservation this isolate made: the first report wins; what the hold did not spend goes back to its windows. */
	async settle(reservation: string, tokens: number): Promise<SettleResult> {
		const found = this.reservations.settle(reservation, tokens, this.now());
		if (found.status !== "settled") return found;
		const { hold, counted, reservation: held } = found;
		this.limiter.giveBack(held.clientId, held, hold - counted);
		return { status: "settled", hold, counted };
	}

	/** A claimed or refused answer, with the holds charged whole since the last one (counted as `expired`, as the script's sweep is). */
	private withExpired(claim: LimitedClaim): LimitedClaim {
		const expired = this.reservations.takeExpired();
		if (expired > 0 && claim.outcome !== "duplicate") claim.expiredTokens = (claim.expiredTokens ?? 0) + expired;
		return claim;
	}
}
