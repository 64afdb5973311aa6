import { decodeKeyringKey } from "../keyring/sealing.ts";
import type { SettingReader } from "./reader.ts";

export interface KeyringConfig {
	/** `KEYRING_KEY`'s 32 bytes; null when the keyring is off (no key set). */
	key: Uint8Array<ArrayBuffer> | null;
	/** How long an isolate trusts a record or a miss (`KEYRING_CACHE_MS`), 30000 when unset. */
	cacheMs: number;
	/** Records cached per isolate, and as many misses (`KEYRING_CACHE_MAX_ENTRIES`), 10000 when unset. */
	maxEntries: number;
	/** Budget of one KV read (`KEYRING_TIMEOUT_MS`), 1000 when unset. */
	timeoutMs: number;
}

/**
 * The keyring in KV (docs/design.md, "Keyring"): on with `KEYRING_KEY` and the `KEYRING`
 * binding. A key that is not base64 of 32 bytes, or a key without the binding, is a problem.
 * Without a key the keyring is simply off (it is optional): no warning.
 */
export function readKeyring(read: SettingReader, hasBinding: boolean): KeyringConfig {
	const text = read.string("KEYRING_KEY");
	let key: Uint8Array<ArrayBuffer> | null = null;
	if (text !== undefined) {
		key = decodeKeyringKey(text);
		if (key === null) read.problem("KEYRING_KEY must be 32 bytes in base64 (openssl rand -base64 32)");
		else if (!hasBinding) read.problem("KEYRING_KEY is set but the Worker has no KEYRING binding (a KV namespace)");
	}
	return {
		key,
		cacheMs: read.integer("KEYRING_CACHE_MS", 30_000, { min: 100, max: 300_000 }),
		maxEntries: read.integer("KEYRING_CACHE_MAX_ENTRIES", 10_000, { min: 1, max: 1_000_000 }),
		timeoutMs: read.integer("KEYRING_TIMEOUT_MS", 1_000, { min: 1, max: 30_000 }),
	};
}
