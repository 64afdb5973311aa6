import type { Logger } from "../log.ts";
import { LogThrottle } from "../log.ts";
import { ExpiringCache } from "./cache.ts";
import type { KeyringEvents } from "./events.ts";
import type { StoredRecord } from "./record.ts";
import { KeyringDecryptError, openSecrets } from "./sealing.ts";
import { KeyringStoreError, type KeyringStore } from "./store.ts";

/** A keyring record that verifies: its secrets, newest first, and what else it carries. */
export interface KeyringClient {
	clientId: string;
	/** Newest first. */
	secrets: readonly string[];
	/** HMAC-SHA256 verify keys of `secrets`, imported once per cached record. */
	keys: Promise<CryptoKey[]>;
	/** The client's limits as stored (the `CLIENT_LIMITS` entry format), if any. */
	limits?: Record<string, unknown>;
}

/** Why a named id must not verify: refused like an unknown client, never served by a shared secret. */
export type KeyringRefusal = "disabled" | "case_variant" | "undecryptable";

export type KeyringLookupResult =
	| { kind: "found"; client: KeyringClient }
	/** The keyring does not name this id: the secrets of the environment decide. */
	| { kind: "absent" }
	| { kind: "refused"; reason: KeyringRefusal }
	/** Nothing known of this id and KV cannot answer now (or too many unknown ids): 503, never a pass. */
	| { kind: "unavailable"; reason: "kv_error" | "throttled" };

type Known = Extract<KeyringLookupResult, { kind: "found" | "refused" }>;

export interface KeyringLookupOptions {
	store: KeyringStore;
	/** `KEYRING_KEY`, imported for AES-GCM. */
	key: CryptoKey | Promise<CryptoKey>;
	/** How long this isolate trusts what it read, hits and misses alike. @default 30000 (`KEYRING_CACHE_MS`) */
	cacheMs: number;
	/** Records kept per isolate; misses are kept apart, as many, so a flood of unknown ids cannot evict a client. */
	maxEntries: number;
	/**
	 * KV reads per second per isolate that may find no record a client can use (none, another case of an id, a disabled one) or fail: beyond this, an id
	 * this isolate knows nothing of gets 503 for the rest of the second, so a flood of random
	 * ids is not a flood of KV reads. Known ids are not affected. @default 100
	 */
	unknownReadsPerSecond?: number;
	/** How long a request waits for a read of the same id that another request started, before it reads itself (the store's own budget, and a margin). @default 1100 */
	joinTimeoutMs?: number;
	events: KeyringEvents;
	log: Logger;
	/** @default Date.now */
	now?: () => number;
}

/**
 * One isolate's view of the keyring (docs/design.md, "Keyring"): records and misses cached
 * for `cacheMs`, one KV read per id per period however many requests ask at once, the last
 * known record served while KV fails, and 503 for an id never seen.
 *
 * @example
 * ```ts
 * const keyring = new KeyringLookup({ store: new KvKeyringStore(env.KEYRING, { cacheTtlSeconds: 30, timeoutMs: 1000 }),
 *   key: importKeyringKey(bytes), cacheMs: 30_000, maxEntries: 10_000, events, log });
 * const result = await keyring.lookup("alice"); // { kind: "found", client: { secrets, keys, ... } }
 * ```
 */
export class KeyringLookup {
	private readonly records: ExpiringCache<Known>;
	private readonly misses: ExpiringCache<true>;
	private readonly inFlight = new Map<string, Promise<KeyringLookupResult>>();
	private readonly throttle: LogThrottle;
	private readonly options: KeyringLookupOptions;
	private readonly now: () => number;
	private readonly unknownReadsPerSecond: number;
	private readonly joinTimeoutMs: number;
	private budgetWindow = 0;
	private unknownReads = 0;

	constructor(options: KeyringLookupOptions) {
		if (!(options.cacheMs > 0)) throw new Error("KeyringLookup: cacheMs must be positive");
		this.unknownReadsPerSecond = options.unknownReadsPerSecond ?? 100;
		if (!(this.unknownReadsPerSecond > 0)) throw new Error("KeyringLookup: unknownReadsPerSecond must be positive");
		this.joinTimeoutMs = options.joinTimeoutMs ?? 1_100;
		if (!(this.joinTimeoutMs > 0)) throw new Error("KeyringLookup: joinTimeoutMs must be positive");
		this.options = options;
		this.now = options.now ?? Date.now;
		this.records = new ExpiringCache(options.maxEntries, this.now);
		this.misses = new ExpiringCache(options.maxEntries, this.now);
		this.throttle = new LogThrottle(10_000, this.now);
	}

	/**
	 * The client this isolate last found under `clientId`, from its cache alone (no read, not
	 * counted): what a request verified against just now, for what else its record carries.
	 */
	cachedClient(clientId: string): KeyringClient | undefined {
		const known = this.records.stale(clientId);
		return known?.kind === "found" ? known.client : undefined;
	}

	lookup(clientId: string): Promise<KeyringLookupResult> {
		const cached = this.records.fresh(clientId) ?? (this.misses.fresh(clientId) === undefined ? undefined : ABSENT);
		if (cached !== undefined) {
			this.count(cached);
			return Promise.resolve(cached);
		}
		// Requests for one id at once share one read.
		const pending = this.inFlight.get(clientId);
		if (pending !== undefined) return this.join(clientId, pending);
		const read: Promise<KeyringLookupResult> = this.read(clientId).finally(() => {
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

	private async read(clientId: string): Promise<KeyringLookupResult> {
		const { events, cacheMs } = this.options;
		const last = this.records.stale(clientId) ?? (this.misses.stale(clientId) === undefined ? undefined : ABSENT);
		if (last === undefined && !this.admitUnknownRead()) {
			events.keyringLookup("throttled");
			return THROTTLED;
		}
		events.keyringLookup("kv_read");
		let result: KeyringLookupResult;
		try {
			const read = await this.options.store.read(clientId);
			result =
				read.kind === "absent" ? ABSENT
				: read.kind === "malformed" ? this.unreadable(clientId, "malformed")
				: await this.open(clientId, read.record);
		} catch (error) {
			if (!(error instanceof KeyringStoreError)) throw error;
			events.keyringLookup("kv_error");
			if (this.throttle.admit(`kv:${error.reason}`) !== null) {
				this.options.log.warn("keyring read failed; serving the last known records", { reason: error.reason });
			}
			if (last === undefined) {
				this.spendUnknownRead();
				return KV_UNAVAILABLE;
			}
			// The last known answer serves for another period: an outage is not a KV read per request.
			this.remember(clientId, last, cacheMs);
			this.count(last);
			return last;
		}
		// A refusal (another case of a registered id, a disabled or unreadable record) serves no client
		// either: without this, a flood of case variants of one known id was a KV read each, unthrottled.
		if (result.kind !== "found") this.spendUnknownRead();
		this.remember(clientId, result, cacheMs);
		this.count(result);
		return result;
	}

	private async open(clientId: string, record: StoredRecord): Promise<Known> {
		// One KV key holds every case of an id; only the exact id is this record's client.
		if (record.id !== clientId) {
			if (record.id.toLowerCase() === clientId.toLowerCase()) return { kind: "refused", reason: "case_variant" };
			return this.unreadable(clientId, "moved");
		}
		if (record.disabled) return { kind: "refused", reason: "disabled" };
		let secrets: string[];
		try {
			secrets = await openSecrets(await this.options.key, clientId, record.secrets);
		} catch (error) {
			if (error instanceof KeyringDecryptError) return this.unreadable(clientId, "decrypt");
			throw error;
		}
		const keys = Promise.all(secrets.map(importVerifyKey));
		return {
			kind: "found",
			client: { clientId, secrets, keys, ...(record.limits === undefined ? {} : { limits: record.limits }) },
		};
	}

	/** A record that does not open (wrong key, moved, changed, or not a record): logged, refused as unknown. */
	private unreadable(clientId: string, why: "malformed" | "moved" | "decrypt"): Known {
		if (this.throttle.admit(`unreadable:${clientId}`) !== null) {
			this.options.log.error("keyring record refused: it does not decrypt for its id under KEYRING_KEY", { clientId, why });
		}
		return UNDECRYPTABLE;
	}

	private remember(clientId: string, result: KeyringLookupResult, ttlMs: number): void {
		if (result.kind === "absent") {
			this.records.delete(clientId);
			this.misses.set(clientId, true, ttlMs);
		} else if (result.kind !== "unavailable") {
			this.misses.delete(clientId);
			this.records.set(clientId, result, ttlMs);
		}
	}

	private count(result: KeyringLookupResult): void {
		const { events } = this.options;
		if (result.kind === "absent") events.keyringLookup("miss");
		else if (result.kind === "refused" && result.reason === "undecryptable") events.keyringLookup("undecryptable");
		else if (result.kind !== "unavailable") events.keyringLookup("hit");
	}

	private admitUnknownRead(): boolean {
		const window = Math.floor(this.now() / 1000);
		if (window !== this.budgetWindow) {
			this.budgetWindow = window;
			this.unknownReads = 0;
		}
		return this.unknownReads < this.unknownReadsPerSecond;
	}

	private spendUnknownRead(): void {
		if (this.admitUnknownRead()) this.unknownReads++;
	}
}

const ABSENT: KeyringLookupResult = Object.freeze({ kind: "absent" });
const UNDECRYPTABLE: Known = Object.freeze({ kind: "refused", reason: "undecryptable" });
const THROTTLED: KeyringLookupResult = Object.freeze({ kind: "unavailable", reason: "throttled" });
const KV_UNAVAILABLE: KeyringLookupResult = Object.freeze({ kind: "unavailable", reason: "kv_error" });

function importVerifyKey(secret: string): Promise<CryptoKey> {
	return crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
}
