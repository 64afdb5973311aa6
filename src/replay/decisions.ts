/**
 * The keys this isolate saw Upstash hold (an `OK`, or a duplicate), by digest, until they
 * expire: a copy of one of them is a replay without a call, even during an outage.
 * Bounded, and only ever holds what Upstash holds, so it may forget: when full it drops the
 * oldest. Expired entries are dropped from the oldest end as new ones come in, so a busy
 * isolate does not stay full of them (entries come in roughly in the order they expire).
 * Expiries are kept as milliseconds from the first one recorded: small integers, which V8
 * stores in the map itself rather than as a boxed number each.
 */
export class Decisions {
	/** Digest to expiry (from `epoch`), oldest first. */
	private readonly expiries = new Map<string, number>();
	private epoch: number | null = null;
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
		const expiry = this.expiries.get(id);
		if (expiry === undefined) return false;
		if (expiry > now - this.epoch!) return true;
		this.expiries.delete(id);
		return false;
	}

	/** Records that Upstash holds `id` until `expiresAt`. */
	record(id: string, expiresAt: number, now: number): void {
		this.epoch ??= now;
		const since = now - this.epoch;
		this.expiries.delete(id);
		for (const [oldest, expiry] of this.expiries) {
			if (expiry > since && this.expiries.size < this.maxKeys) break;
			this.expiries.delete(oldest);
		}
		this.expiries.set(id, expiresAt - this.epoch);
	}
}
