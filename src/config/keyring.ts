import { decodeKeyringKeys } from "../keyring/sealing.ts";
import type { SettingReader } from "./reader.ts";

export interface KeyringConfig {
	/**
	 * `KEYRING_KEY`'s keys, 32 bytes each: one, or two while it is rotated (new first: records
	 * are sealed with the first, opened with either). Empty when it is not set.
	 */
	keys: Uint8Array<ArrayBuffer>[];
	/** How long an isolate trusts a record or a miss (`KEYRING_CACHE_MS`), 30000 when unset. */
	cacheMs: number;
	/** Records cached per isolate, and as many misses (`KEYRING_CACHE_MAX_ENTRIES`), 10000 when unset. */
	maxEntries: number;
	/** Budget of one KV read (`KEYRING_TIMEOUT_MS`), 1000 when unset. */
	timeoutMs: number;
}

/**
 * The keyring in KV (docs/design.md, "Keyring"): on with the `KEYRING` binding. A key that is
 * not base64 of 32 bytes (or more than two), or a key without the binding, is a problem. The
 * binding without a key is a warning: the keyring is still read, and an id that has a record
 * is refused (503), so a lost key never hands keyring ids to the shared secret. A deployment
 * without a keyring removes the binding.
 */
export function readKeyring(read: SettingReader, hasBinding: boolean): KeyringConfig {
	const text = read.string("KEYRING_KEY");
	let keys: Uint8Array<ArrayBuffer>[] = [];
	if (text !== undefined) {
		const decoded = decodeKeyringKeys(text);
		if (decoded === null) read.problem("KEYRING_KEY must be 32 bytes in base64 (openssl rand -base64 32), or two such keys (new,old) while it is rotated");
		else if (!hasBinding) read.problem("KEYRING_KEY is set but the Worker has no KEYRING binding (a KV namespace)");
		else keys = decoded;
	} else if (hasBinding) {
		read.warnings.push(
			"the KEYRING binding is set but KEYRING_KEY is not: every client id that has a keyring record is refused (503 keyring_unavailable); set the key, or remove the binding where no keyring is used",
		);
	}
	return {
		keys,
		cacheMs: read.integer("KEYRING_CACHE_MS", 30_000, { min: 100, max: 300_000 }),
		maxEntries: read.integer("KEYRING_CACHE_MAX_ENTRIES", 10_000, { min: 1, max: 1_000_000 }),
		timeoutMs: read.integer("KEYRING_TIMEOUT_MS", 1_000, { min: 1, max: 30_000 }),
	};
}
