/**
 * A bounded map of entries that expire: one isolate's memory of keyring lookups. Full, it
 * drops its oldest entry (a Map iterates in insertion order, and `set` moves an entry to the
 * end), so memory stays bounded whatever ids arrive. An expired entry is still returned by
 * `stale()`: the last known record serves while KV fails.
 */
export class ExpiringCache<V> {
	private readonly entries = new Map<string, { value: V; storedAt: number; expiresAt: number }>();
	private readonly maxEntries: number;
	private readonly now: () => number;

	constructor(maxEntries: number, now: () => number = Date.now) {
		if (!(Number.isInteger(maxEntries) && maxEntries > 0)) throw new Error("ExpiringCache: maxEntries must be a positive integer");
		this.maxEntries = maxEntries;
		this.now = now;
	}

	get size(): number {
		return this.entries.size;
	}

	/** The value, while it has not expired. */
	fresh(key: string): V | undefined {
		const entry = this.entries.get(key);
		return entry !== undefined && entry.expiresAt > this.now() ? entry.value : undefined;
	}

	/** The value, expired or not. */
	stale(key: string): V | undefined {
		return this.entries.get(key)?.value;
	}

	/** Milliseconds since the entry was set, expired or not; undefined without one. */
	age(key: string): number | undefined {
		const entry = this.entries.get(key);
		return entry === undefined ? undefined : this.now() - entry.storedAt;
	}

	set(key: string, value: V, ttlMs: number): void {
		this.entries.delete(key);
		if (this.entries.size >= this.maxEntries) {
			const oldest = this.entries.keys().next();
			if (oldest.done !== true) this.entries.delete(oldest.value);
		}
		const now = this.now();
		this.entries.set(key, { value, storedAt: now, expiresAt: now + ttlMs });
	}

	delete(key: string): void {
		this.entries.delete(key);
	}
}
