// What this isolate remembers of the claims (docs/design.md, "Replay protection"): the claims
// made in its memory (`MemoryReplayStore`), the keys it saw Upstash hold (`Decisions`), and the
// fixed-size digest both know a key by.
import { OwnerNumbers } from "./owner-numbers.ts";
import { ReplayStoreError, type ClaimOutcome, type ReplayStore } from "./store.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The per-isolate replay store: protects one isolate only. Bounded: expired keys are
 * dropped, and when it is full of live keys it refuses rather than evict one, because
 * evicting a live key would reopen a replay. One owner (client id) holds at most half of
 * it, so one client's flood of far-future timestamps cannot make it refuse everyone else.
 * It keeps no value: a key (the guard gives it a fixed-size digest), its expiry and its owner
 * are enough. Small on purpose, since an outage can fill it with claims of as many distinct
 * client ids: no object per key and no client id, only numbers in flat maps. An owner is a
 * 52-bit number drawn from its id with this store's secret points (`OwnerNumbers`), so no one
 * can choose an id that shares another's half; expiries are milliseconds from the store's
 * creation (small integers V8 keeps unboxed).
 */
export class MemoryReplayStore implements ReplayStore {
	readonly name = "memory";
	/** Key to expiry (from `epoch`). */
	private readonly expiries = new Map<string, number>();
	/** Key to its owner's number. */
	private readonly owners = new Map<string, number>();
	/** Owner's number to its live keys. */
	private readonly keysPerOwner = new Map<number, number>();
	private readonly ownerNumbers: OwnerNumbers;
	/** No key expires before this time (from `epoch`), so a sweep before it frees nothing. */
	private nextUsefulSweep = Number.POSITIVE_INFINITY;

	readonly maxKeys: number;
	private readonly maxKeysPerOwner: number;
	private readonly now: () => number;
	private readonly epoch: number;

	constructor(maxKeys: number, now: () => number = Date.now, ownerNumbers = new OwnerNumbers()) {
		if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new Error("MemoryReplayStore: maxKeys must be a positive integer");
		this.maxKeys = maxKeys;
		this.maxKeysPerOwner = Math.max(1, Math.floor(maxKeys / 2));
		this.now = now;
		this.epoch = now();
		this.ownerNumbers = ownerNumbers;
	}

	get size(): number {
		return this.expiries.size;
	}

	/** Whether `key` is claimed and not expired. */
	has(key: string): boolean {
		return this.expiresAt(key) !== undefined;
	}

	/** When `key`'s claim expires (epoch milliseconds), while it is claimed. */
	expiresAt(key: string): number | undefined {
		const expiry = this.expiries.get(key);
		return expiry !== undefined && expiry > this.now() - this.epoch ? expiry + this.epoch : undefined;
	}

	/** `owner` is the client id: one owner may hold at most half of the store. */
	async claim(key: string, _value: string, ttlMs: number, owner = ""): Promise<ClaimOutcome> {
		// No await from here to the write: the guard's last look at the decisions and this
		// claim happen in one step, so a copy's Upstash answer cannot land between them.
		const ownerNumber = this.ownerNumbers.of(owner);
		const now = this.now() - this.epoch;
		const existing = this.expiries.get(key);
		if (existing !== undefined && existing > now) return "duplicate";
		if (existing !== undefined) this.remove(key);
		if (this.expiries.size >= this.maxKeys || this.keysOf(ownerNumber) >= this.maxKeysPerOwner) {
			this.sweep(now);
			if (this.expiries.size >= this.maxKeys) {
				throw new ReplayStoreError("full", "memory replay store is full of unexpired keys");
			}
			if (this.keysOf(ownerNumber) >= this.maxKeysPerOwner) {
				throw new ReplayStoreError("full", "one client holds half of the memory replay store");
			}
		}
		this.keysPerOwner.set(ownerNumber, this.keysOf(ownerNumber) + 1);
		const expiry = now + ttlMs;
		this.expiries.set(key, expiry);
		this.owners.set(key, ownerNumber);
		if (expiry < this.nextUsefulSweep) this.nextUsefulSweep = expiry;
		return "claimed";
	}

	private keysOf(ownerNumber: number): number {
		return this.keysPerOwner.get(ownerNumber) ?? 0;
	}

	private remove(key: string): void {
		const ownerNumber = this.owners.get(key)!;
		this.expiries.delete(key);
		this.owners.delete(key);
		const left = this.keysOf(ownerNumber) - 1;
		if (left === 0) this.keysPerOwner.delete(ownerNumber);
		else this.keysPerOwner.set(ownerNumber, left);
	}

	/** Drops expired keys; does nothing before the earliest expiry it knows of. */
	private sweep(now: number): void {
		if (now < this.nextUsefulSweep) return;
		let earliest = Number.POSITIVE_INFINITY;
		for (const [key, expiry] of this.expiries) {
			if (expiry <= now) this.remove(key);
			else if (expiry < earliest) earliest = expiry;
		}
		this.nextUsefulSweep = earliest;
	}
}

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

/** Bytes of SHA-256 kept: 128 bits, so two live keys never share a digest by chance. */
const DIGEST_BYTES = 16;

/**
 * A fixed-size name for a replay key, for the structures that only need to recognise it
 * (the memory store, the decisions): 16 bytes of its SHA-256 as a one-byte string, about
 * 28 bytes of heap where a maximum-length v2 key (prefix, keyid and nonce) takes about 160.
 * A cryptographic hash, because a client that signs its own requests chooses their nonces:
 * it must not be able to make two keys collide and have another's request refused.
 */
export async function keyDigest(key: string): Promise<string> {
	const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(key)), 0, DIGEST_BYTES);
	return String.fromCharCode(...hash);
}

/**
 * A copy of `text` that holds nothing else alive. A substring of a header (a v2 keyid or
 * nonce) can share the whole header's memory; a string kept for minutes must not.
 */
export function ownCopy(text: string): string {
	return decoder.decode(encoder.encode(text));
}
