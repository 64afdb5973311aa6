import { ownCopy } from "./digest.ts";
import { ReplayStoreError, type ClaimOutcome, type ReplayStore } from "./store.ts";

/** One owner: its name, kept once for all its entries, and its live keys. */
interface Owner {
	readonly name: string;
	keys: number;
}

/**
 * The per-isolate replay store: protects one isolate only. Bounded: expired keys are
 * dropped, and when it is full of live keys it refuses rather than evict one, because
 * evicting a live key would reopen a replay. One owner (client id) holds at most half of
 * it, so one client's flood of far-future timestamps cannot make it refuse everyone else.
 * It keeps no value: a key (the guard gives it a fixed-size digest), its expiry and its owner
 * are enough. Small on purpose, since an outage can fill it: each owner's name is kept once,
 * and expiries are milliseconds from the store's creation (small integers V8 keeps unboxed).
 */
export class MemoryReplayStore implements ReplayStore {
	readonly name = "memory";
	private readonly entries = new Map<string, { expiry: number; owner: Owner }>();
	private readonly owners = new Map<string, Owner>();
	/** No key expires before this time (from `epoch`), so a sweep before it frees nothing. */
	private nextUsefulSweep = Number.POSITIVE_INFINITY;

	readonly maxKeys: number;
	private readonly maxKeysPerOwner: number;
	private readonly now: () => number;
	private readonly epoch: number;

	constructor(maxKeys: number, now: () => number = Date.now) {
		if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new Error("MemoryReplayStore: maxKeys must be a positive integer");
		this.maxKeys = maxKeys;
		this.maxKeysPerOwner = Math.max(1, Math.floor(maxKeys / 2));
		this.now = now;
		this.epoch = now();
	}

	get size(): number {
		return this.entries.size;
	}

	/** Whether `key` is claimed and not expired. */
	has(key: string): boolean {
		return this.ownerOf(key) !== undefined;
	}

	/** The owner of `key` while it is claimed: the one copy of its name this store keeps. */
	ownerOf(key: string): string | undefined {
		const entry = this.entries.get(key);
		return entry !== undefined && entry.expiry > this.now() - this.epoch ? entry.owner.name : undefined;
	}

	/** When `key`'s claim expires (epoch milliseconds), while it is claimed. */
	expiresAt(key: string): number | undefined {
		const entry = this.entries.get(key);
		return entry !== undefined && entry.expiry > this.now() - this.epoch ? entry.expiry + this.epoch : undefined;
	}

	/** `owner` is the client id: one owner may hold at most half of the store. */
	async claim(key: string, _value: string, ttlMs: number, owner = ""): Promise<ClaimOutcome> {
		const now = this.now() - this.epoch;
		const existing = this.entries.get(key);
		if (existing !== undefined && existing.expiry > now) return "duplicate";
		if (existing !== undefined) this.remove(key, existing.owner);
		if (this.entries.size >= this.maxKeys || (this.owners.get(owner)?.keys ?? 0) >= this.maxKeysPerOwner) {
			this.sweep(now);
			if (this.entries.size >= this.maxKeys) {
				throw new ReplayStoreError("full", "memory replay store is full of unexpired keys");
			}
			if ((this.owners.get(owner)?.keys ?? 0) >= this.maxKeysPerOwner) {
				throw new ReplayStoreError("full", "one client holds half of the memory replay store");
			}
		}
		let record = this.owners.get(owner);
		if (record === undefined) {
			record = { name: ownCopy(owner), keys: 0 };
			this.owners.set(record.name, record);
		}
		record.keys++;
		const expiry = now + ttlMs;
		this.entries.set(key, { expiry, owner: record });
		if (expiry < this.nextUsefulSweep) this.nextUsefulSweep = expiry;
		return "claimed";
	}

	private remove(key: string, owner: Owner): void {
		this.entries.delete(key);
		if (--owner.keys === 0) this.owners.delete(owner.name);
	}

	/** Drops expired keys; does nothing before the earliest expiry it knows of. */
	private sweep(now: number): void {
		if (now < this.nextUsefulSweep) return;
		let earliest = Number.POSITIVE_INFINITY;
		for (const [key, entry] of this.entries) {
			if (entry.expiry <= now) this.remove(key, entry.owner);
			else if (entry.expiry < earliest) earliest = entry.expiry;
		}
		this.nextUsefulSweep = earliest;
	}
}
