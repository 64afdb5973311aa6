/**
 * The keys this isolate saw Upstash hold (an `OK`, or a duplicate), by digest, until they
 * expire: a copy of one of them is a replay without a call, even during an outage.
 * Bounded, and only ever holds what Upstash holds, so it may forget: when full it drops the
 * oldest. Expired entries are dropped from the oldest end as new ones come in, so a busy
 * isolate does not stay full of them (entries come in roughly in the order they expire).
 */
export class Decisions {
	/** Digest to expiry (epoch milliseconds), oldest first. */
	private readonly expiries = new Map<string, number>();
	readonly maxKeys: number;

	constructor(maxKeys: number) {
		if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new Error("Decisions: maxKeys must be a positive integer");
		this.maxKeys = maxKeys;
	}

	get size(): number {
		return this.expiries.size;
	}

	/** Whether Upstash holds `id`, as far as this isolate saw, at `now`. */
	has(id: string, now: number): boolean {
		const expiresAt = this.expiries.get(id);
		if (expiresAt === undefined) return false;
		if (expiresAt > now) return true;
		this.expiries.delete(id);
		return false;
	}

	/** Records that Upstash holds `id` until `expiresAt`. */
	record(id: string, expiresAt: number, now: number): void {
		this.expiries.delete(id);
		for (const [oldest, oldestExpiry] of this.expiries) {
			if (oldestExpiry > now && this.expiries.size < this.maxKeys) break;
			this.expiries.delete(oldest);
		}
		this.expiries.set(id, expiresAt);
	}
}
