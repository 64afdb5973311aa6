import { ReplayStoreError, type ClaimOutcome, type ReplayStore } from "./store.ts";

/**
 * The per-isolate replay store: protects one isolate only. Bounded: expired keys are
 * dropped, and when it is full of live keys it refuses rather than evict one, because
 * evicting a live key would reopen a replay.
 */
export class MemoryReplayStore implements ReplayStore {
	readonly name = "memory";
	private readonly expiries = new Map<string, number>();
	/** No sweep can free anything before this time (set when a sweep freed nothing). */
	private nextUsefulSweep = 0;

	private readonly maxKeys: number;
	private readonly now: () => number;

	constructor(maxKeys: number, now: () => number = Date.now) {
		if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new Error("MemoryReplayStore: maxKeys must be a positive integer");
		this.maxKeys = maxKeys;
		this.now = now;
	}

	get size(): number {
		return this.expiries.size;
	}

	async claim(key: string, _value: string, ttlMs: number): Promise<ClaimOutcome> {
		const now = this.now();
		const expiry = this.expiries.get(key);
		if (expiry !== undefined && expiry > now) return "duplicate";
		if (expiry === undefined && this.expiries.size >= this.maxKeys) {
			this.sweep(now);
			if (this.expiries.size >= this.maxKeys) {
				throw new ReplayStoreError("full", "memory replay store is full of unexpired keys");
			}
		}
		// Delete first so the Map's insertion order stays close to expiry order.
		this.expiries.delete(key);
		this.expiries.set(key, now + ttlMs);
		return "claimed";
	}

	/** Drops expired keys. A sweep that frees nothing is not repeated until a key can expire. */
	private sweep(now: number): void {
		if (now < this.nextUsefulSweep) return;
		let earliest = Number.POSITIVE_INFINITY;
		for (const [key, expiry] of this.expiries) {
			if (expiry <= now) this.expiries.delete(key);
			else if (expiry < earliest) earliest = expiry;
		}
		this.nextUsefulSweep = this.expiries.size >= this.maxKeys ? earliest : 0;
	}
}
