/**
 * The keyring's settings (docs/design.md, "Configuration"), read with the rest of the
 * configuration: a bad value is a problem naming the variable, never quoting it.
 */
import type { Env } from "../env.ts";
import { decodeKeyringKey } from "./sealing.ts";

export interface KeyringSettings {
	/** `KEYRING_KEY`'s 32 bytes; null when the keyring is off (no key set). */
	key: Uint8Array<ArrayBuffer> | null;
	/** How long an isolate trusts a record or a miss (`KEYRING_CACHE_MS`). */
	cacheMs: number;
	/** Records cached per isolate, and as many misses (`KEYRING_CACHE_MAX_ENTRIES`). */
	maxEntries: number;
	/** Budget of one KV read (`KEYRING_TIMEOUT_MS`). */
	timeoutMs: number;
}

export const KEYRING_DEFAULTS = { cacheMs: 30_000, maxEntries: 10_000, timeoutMs: 1_000 } as const;

/** Reads the `KEYRING_*` settings; each problem is pushed onto `problems`, each weakness onto `warnings`. */
export function readKeyringSettings(env: Env, problems: string[], warnings: string[], isProduction: boolean): KeyringSettings {
	const text = typeof env.KEYRING_KEY === "string" ? env.KEYRING_KEY.trim() : "";
	let key: Uint8Array<ArrayBuffer> | null = null;
	if (text !== "") {
		key = decodeKeyringKey(text);
		if (key === null) problems.push("KEYRING_KEY must be 32 bytes in base64 (openssl rand -base64 32)");
		else if (env.KEYRING === undefined || env.KEYRING === null) problems.push("KEYRING_KEY is set but the Worker has no KEYRING binding (a KV namespace)");
	} else if (isProduction && env.KEYRING !== undefined) {
		warnings.push("KEYRING_KEY is not set: the keyring in KV is not used, only HMAC_SECRET and HMAC_CLIENTS");
	}
	return {
		key,
		cacheMs: integer(env, "KEYRING_CACHE_MS", KEYRING_DEFAULTS.cacheMs, 100, 300_000, problems),
		maxEntries: integer(env, "KEYRING_CACHE_MAX_ENTRIES", KEYRING_DEFAULTS.maxEntries, 1, 1_000_000, problems),
		timeoutMs: integer(env, "KEYRING_TIMEOUT_MS", KEYRING_DEFAULTS.timeoutMs, 1, 30_000, problems),
	};
}

function integer(env: Env, name: keyof Env, fallback: number, min: number, max: number, problems: string[]): number {
	const raw = env[name];
	if (raw === undefined || raw === null) return fallback;
	if (typeof raw !== "string") {
		problems.push(`${name} must be a string`);
		return fallback;
	}
	const value = raw.trim();
	if (value === "") return fallback;
	if (!/^[0-9]{1,15}$/.test(value)) {
		problems.push(`${name} is not a whole number`);
		return fallback;
	}
	const parsed = Number(value);
	if (parsed < min || parsed > max) {
		problems.push(`${name} must be between ${min} and ${max}`);
		return fallback;
	}
	return parsed;
}
