import { parseStoredRecord, recordKey, type StoredRecord } from "./record.ts";

/**
 * What a read found: a record, nothing, or a value that is not a record of this format
 * (logged, refused): `old_format` for one of the first format, which sealed only the secrets.
 */
export type StoreRead = { kind: "record"; record: StoredRecord } | { kind: "absent" } | { kind: "malformed"; why: "malformed" | "old_format" };

/** Where keyring records live: Workers KV in the Worker, a Map in tests. */
export interface KeyringStore {
	/** Throws `KeyringStoreError` when the store cannot answer; never for a missing or malformed record. */
	read(clientId: string): Promise<StoreRead>;
}

/** The store did not answer (an error or its time budget): the caller serves what it knew, or 503. */
export class KeyringStoreError extends Error {
	override readonly name = "KeyringStoreError";
	readonly reason: "error" | "timeout";

	constructor(reason: "error" | "timeout", message: string, options?: ErrorOptions) {
		super(message, options);
		this.reason = reason;
	}
}

/** Workers KV's smallest `cacheTtl`, in seconds. */
export const KV_MIN_CACHE_TTL_SECONDS = 30;

export interface KvKeyringStoreOptions {
	/**
	 * How long KV's own cache in a Cloudflare location keeps a read, in seconds (its `cacheTtl`,
	 * at least 30). A revocation reaches a location within this time.
	 */
	cacheTtlSeconds: number;
	/** Budget of one read, in milliseconds: a KV read that hangs must not hold the request. */
	timeoutMs: number;
}

/**
 * Keyring records in a KV namespace. Needs only `get`, so a fake in a test is a few lines.
 *
 * @example
 * ```ts
 * const store = new KvKeyringStore(env.KEYRING, { cacheTtlSeconds: 30, timeoutMs: 1000 });
 * const read = await store.read("alice");
 * ```
 */
export class KvKeyringStore implements KeyringStore {
	private readonly kv: Pick<KVNamespace, "get">;
	private readonly options: KvKeyringStoreOptions;

	constructor(kv: Pick<KVNamespace, "get">, options: KvKeyringStoreOptions) {
		if (!(options.cacheTtlSeconds >= KV_MIN_CACHE_TTL_SECONDS)) {
			throw new Error(`KvKeyringStore: cacheTtlSeconds must be at least ${KV_MIN_CACHE_TTL_SECONDS}`);
		}
		if (!(options.timeoutMs > 0)) throw new Error("KvKeyringStore: timeoutMs must be positive");
		this.kv = kv;
		this.options = options;
	}

	async read(clientId: string): Promise<StoreRead> {
		let value: unknown;
		let timer: ReturnType<typeof setTimeout> | null = null;
		try {
			const deadline = new Promise<never>((_, reject) => {
				timer = setTimeout(
					() => reject(new KeyringStoreError("timeout", "the keyring read did not answer in time")),
					this.options.timeoutMs,
				);
			});
			value = await Promise.race([
				this.kv.get(recordKey(clientId), { type: "json", cacheTtl: this.options.cacheTtlSeconds }),
				deadline,
			]);
		} catch (error) {
			if (error instanceof KeyringStoreError) throw error;
			// A value that is not JSON is a bad record, not a failing store.
			if (error instanceof SyntaxError) return MALFORMED;
			throw new KeyringStoreError("error", "the keyring read failed", { cause: error });
		} finally {
			if (timer !== null) clearTimeout(timer);
		}
		return value === null ? { kind: "absent" } : readValue(value);
	}
}

/** Keyring records in a Map, keyed like KV: for tests, and a deployment without KV. */
export class MemoryKeyringStore implements KeyringStore {
	readonly records = new Map<string, unknown>();

	put(record: StoredRecord): void {
		this.records.set(recordKey(record.id), record);
	}

	async read(clientId: string): Promise<StoreRead> {
		const value = this.records.get(recordKey(clientId));
		return value === undefined ? { kind: "absent" } : readValue(value);
	}
}

const MALFORMED: StoreRead = Object.freeze({ kind: "malformed", why: "malformed" });
const OLD_FORMAT: StoreRead = Object.freeze({ kind: "malformed", why: "old_format" });

function readValue(value: unknown): StoreRead {
	const record = parseStoredRecord(value);
	if (record !== null) return { kind: "record", record };
	return (value as { v?: unknown } | null)?.v === 1 ? OLD_FORMAT : MALFORMED;
}
