import type { KeyringEvents } from "../events.ts";
import type { Logger } from "../log.ts";
import { LogThrottle } from "../log.ts";
import { ExpiringCache } from "./cache.ts";
import { ABSENT, RecordOpener, type Decided, type KeyringClient, type KeyringLookupResult } from "./opener.ts";
import { ReadBudget } from "./read-budget.ts";
import { KeyringStoreError, type KeyringStore } from "./store.ts";

export type { KeyringClient, KeyringLookupResult, KeyringRefusal } from "./opener.ts";

/** A failed signature re-reads its id at most this often per isolate (docs/design.md, "Keyring"). */
export const REREAD_INTERVAL_MS = 1_000;

export interface KeyringLookupOptions {
	store: KeyringStore;
	/** `KEYRING_KEY`'s keys, imported for AES-GCM (new first); null when it is not set: every record refuses its id (503). */
	keys: readonly CryptoKey[] | Promise<readonly CryptoKey[]> | null;
	/** How long this isolate trusts what it read, hits and misses alike. @default 30000 (`KEYRING_CACHE_MS`) */
	cacheMs: number;
	/** Records kept per isolate; misses are kept apart, as many, so a flood of unknown ids cannot evict a client. */
	maxEntries: number;
	/**
	 * KV reads per second per isolate that may serve no client (`ReadBudget`): beyond this, an id
	 * this isolate knows nothing of gets 503 for the rest of the second, and a failed signature
	 * is not re-read, so a flood of random ids is not a flood of KV reads. Known ids are read
	 * again when their entry expires, whatever the budget. @default 100
	 */
	unknownReadsPerSecond?: number;
	/** How long a request waits for a read of the same id that another request started, before it reads itself (the store's own budget, and a margin). @default 1100 */
	joinTimeoutMs?: number;
	events: KeyringEvents;
	log: Logger;
	/** @default Date.now */
	now?: () => number;
}

/** A cached decision, with the sealed text it was made from (null for a miss or a value that is not a record). */
interface Entry {
	decided: Decided;
	sealed: string | null;
}

/**
 * One isolate's view of the keyring (docs/design.md, "Keyring"): records and misses cached
 * for `cacheMs`, one KV read per id per period however many requests ask at once, the last
 * known record served while KV fails, 503 for an id never seen, and a re-read after a failed
 * signature so that a new secret works at once.
 *
 * @example
 * ```ts
 * const keyring = new KeyringLookup({ store: new KvKeyringStore(env.KEYRING, { cacheTtlSeconds: 30, timeoutMs: 1000 }),
 *   keys: importKeyringKeys(config.keys), cacheMs: 30_000, maxEntries: 10_000, events, log });
 * const result = await keyring.lookup("alice"); // { kind: "found", client: { secrets, keys, ... } }
 * ```
 */
export class KeyringLookup {
	private readonly records: ExpiringCache<Entry>;
	private readonly misses: ExpiringCache<Entry>;
	private readonly inFlight = new Map<string, Promise<KeyringLookupResult>>();
	private readonly kvLog: LogThrottle;
	private readonly opener: RecordOpener;
	private readonly budget: ReadBudget;
	private readonly options: KeyringLookupOptions;
	private readonly now: () => number;
	private readonly joinTimeoutMs: number;

	constructor(options: KeyringLookupOptions) {
		if (!(options.cacheMs > 0)) throw new Error("KeyringLookup: cacheMs must be positive");
		const perSecond = options.unknownReadsPerSecond ?? 100;
		if (!(perSecond > 0)) throw new Error("KeyringLookup: unknownReadsPerSecond must be positive");
		this.joinTimeoutMs = options.joinTimeoutMs ?? 1_100;
		if (!(this.joinTimeoutMs > 0)) throw new Error("KeyringLookup: joinTimeoutMs must be positive");
		this.options = options;
		this.now = options.now ?? Date.now;
		this.records = new ExpiringCache(options.maxEntries, this.now);
		this.misses = new ExpiringCache(options.maxEntries, this.now);
		this.kvLog = new LogThrottle(10_000, this.now);
		this.budget = new ReadBudget(perSecond, this.now);
		this.opener = new RecordOpener(options.keys === null ? null : Promise.resolve(options.keys), options.log, this.now);
	}

	/**
	 * The client this isolate last found under `clientId`, from its cache alone (no read, not
	 * counted): what a request verified against just now, for what else its record carries.
	 */
	cachedClient(clientId: string): KeyringClient | undefined {
		const known = this.records.stale(clientId)?.decided;
		return known?.kind === "found" ? known.client : undefined;
	}

	lookup(clientId: string): Promise<KeyringLookupResult> {
		const cached = (this.records.fresh(clientId) ?? this.misses.fresh(clientId))?.decided;
		if (cached !== undefined) {
			this.count(cached);
			return Promise.resolve(cached);
		}
		return this.shared(clientId);
	}

	/**
	 * After a signature failed against what this isolate knows of `clientId`: KV read again, when
	 * the last read of the id is at least `REREAD_INTERVAL_MS` old and the budget of reads that
	 * may serve no client allows. The new decision, or null when there is nothing new.
	 */
	async reread(clientId: string): Promise<KeyringLookupResult | null> {
		const age = this.records.age(clientId) ?? this.misses.age(clientId);
		if (age === undefined || age < REREAD_INTERVAL_MS || !this.budget.admits()) return null;
		this.budget.spend();
		const before = this.last(clientId);
		const after = await this.shared(clientId, true);
		return after === before ? null : after;
	}

	/** Requests for one id at once share one read. `budgetSpent`: a re-read, which paid for itself. */
	private shared(clientId: string, budgetSpent = false): Promise<KeyringLookupResult> {
		const pending = this.inFlight.get(clientId);
		if (pending !== undefined) return this.join(clientId, pending);
		const read: Promise<KeyringLookupResult> = this.read(clientId, budgetSpent).finally(() => {
			if (this.inFlight.get(clientId) === read) this.inFlight.delete(clientId);
		});
		this.inFlight.set(clientId, read);
		return read;
	}

	/**
	 * Waits for a read another request started, within this request's own budget: workerd
	 * cancels a request's I/O with the request (a client that hangs up), and the read would then
	 * never settle. Past the budget, this request reads for itself (and later ones join that read).
	 */
	private async join(clientId: string, pending: Promise<KeyringLookupResult>): Promise<KeyringLookupResult> {
		let timer: ReturnType<typeof setTimeout> | null = null;
		try {
			const ownBudget = new Promise<null>((done) => {
				timer = setTimeout(() => done(null), this.joinTimeoutMs);
			});
			const shared = await Promise.race([pending, ownBudget]);
			if (shared !== null) {
				// Every lookup counts its result once; the read itself was counted by the request that made it.
				this.count(shared);
				return shared;
			}
		} finally {
			if (timer !== null) clearTimeout(timer);
		}
		// The abandoned read no longer stands for this id: the next lookup reads anew.
		if (this.inFlight.get(clientId) === pending) this.inFlight.delete(clientId);
		return this.lookup(clientId);
	}

	private async read(clientId: string, budgetSpent: boolean): Promise<KeyringLookupResult> {
		const { events, cacheMs, store } = this.options;
		const last = this.records.stale(clientId) ?? this.misses.stale(clientId);
		if (last === undefined && !this.budget.admits()) {
			events.keyringLookup("throttled");
			return THROTTLED;
		}
		events.keyringLookup("kv_read");
		let entry: Entry;
		try {
			const read = await store.read(clientId);
			const sealed = read.kind === "record" ? read.record.sealed : null;
			// An unchanged record keeps its decision (no decryption, no key import); a miss is always
			// ABSENT; a record without the key is decided again, so the fault is logged while it lasts.
			const unchanged = sealed !== null && last?.sealed === sealed && last.decided.kind !== "unavailable";
			entry = unchanged ? last : { decided: await this.opener.decide(clientId, read), sealed };
		} catch (error) {
			if (!(error instanceof KeyringStoreError)) throw error;
			events.keyringLookup("kv_error");
			if (this.kvLog.admit(`kv:${error.reason}`) !== null) {
				this.options.log.warn("keyring read failed; serving the last known records", { reason: error.reason });
			}
			if (last === undefined) {
				if (!budgetSpent) this.budget.spend();
				return KV_UNAVAILABLE;
			}
			// The last known answer serves for another period: an outage is not a KV read per request.
			this.remember(clientId, last, cacheMs);
			this.count(last.decided);
			return last.decided;
		}
		// A refusal (another case of a registered id, a disabled, revoked or unreadable record) serves no
		// client either: without this, a flood of case variants of one known id was a KV read each, unthrottled.
		if (!budgetSpent && entry.decided.kind !== "found") this.budget.spend();
		this.remember(clientId, entry, cacheMs);
		this.count(entry.decided);
		return entry.decided;
	}

	private last(clientId: string): Decided | undefined {
		return (this.records.stale(clientId) ?? this.misses.stale(clientId))?.decided;
	}

	private remember(clientId: string, entry: Entry, ttlMs: number): void {
		if (entry.decided === ABSENT) {
			this.records.delete(clientId);
			this.misses.set(clientId, entry, ttlMs);
		} else {
			this.misses.delete(clientId);
			this.records.set(clientId, entry, ttlMs);
		}
	}

	private count(result: KeyringLookupResult): void {
		const { events } = this.options;
		if (result.kind === "absent") events.keyringLookup("miss");
		else if (result.kind === "refused" && result.reason === "undecryptable") events.keyringLookup("undecryptable");
		else if (result.kind === "unavailable" && result.reason === "no_key") events.keyringLookup("no_key");
		else if (result.kind !== "unavailable") events.keyringLookup("hit");
	}
}

const THROTTLED: KeyringLookupResult = Object.freeze({ kind: "unavailable", reason: "throttled" });
const KV_UNAVAILABLE: KeyringLookupResult = Object.freeze({ kind: "unavailable", reason: "kv_error" });
