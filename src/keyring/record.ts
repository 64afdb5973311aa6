/**
 * The keyring's record format (docs/design.md, "Keyring"): one KV value per client id, JSON.
 * Only the secrets are encrypted; the id, the flag, the limits and the timestamps are not
 * secret and stay readable for `wrangler kv key get` and the admin CLI's `list`.
 */
import { CLIENT_ID_PATTERN } from "../auth/grammar.ts";

/** Format version of a stored record: a later format is refused, not misread. */
export const RECORD_VERSION = 1;
/** Secrets per client: the newest, and up to two still honoured during a rotation. */
export const MAX_SECRETS_PER_CLIENT = 3;
/** Every keyring entry's KV key starts with this; the rest is the client id in lowercase. */
export const RECORD_KEY_PREFIX = "client:";

/** A record as KV holds it. */
export interface StoredRecord {
	v: typeof RECORD_VERSION;
	/** The client id exactly as registered (the KV key holds it in lowercase). */
	id: string;
	/** `base64(iv || AES-256-GCM ciphertext)` of the JSON list of secrets, newest first; the id is the additional data. */
	secrets: string;
	/** The client's limits (the `CLIENT_LIMITS` entry format), kept as given. */
	limits?: Record<string, unknown>;
	/** A disabled client is refused like an unknown one, and never served by a shared secret. */
	disabled: boolean;
	/** ISO 8601. */
	createdAt: string;
	/** ISO 8601: the last add, rotate, revoke --old, disable or enable. */
	updatedAt: string;
}

/**
 * The KV key of a client id. Ids are stored in lowercase so that two ids differing only in
 * case share one key: `ALICE` finds `alice`'s record and is refused, never handed to the
 * shared secret (docs/design.md, "Scheme v1": ids that differ only in case).
 */
export function recordKey(clientId: string): string {
	return RECORD_KEY_PREFIX + clientId.toLowerCase();
}

/** `value` as a stored record, or null when it is not one (a record of a later format is not one). */
export function parseStoredRecord(value: unknown): StoredRecord | null {
	if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
	const record = value as Record<string, unknown>;
	if (record.v !== RECORD_VERSION) return null;
	if (typeof record.id !== "string" || !CLIENT_ID_PATTERN.test(record.id)) return null;
	if (typeof record.secrets !== "string" || record.secrets === "") return null;
	if (typeof record.disabled !== "boolean") return null;
	if (typeof record.createdAt !== "string" || typeof record.updatedAt !== "string") return null;
	const limits = record.limits;
	if (limits !== undefined && (typeof limits !== "object" || limits === null || Array.isArray(limits))) return null;
	return {
		v: RECORD_VERSION,
		id: record.id,
		secrets: record.secrets,
		...(limits === undefined ? {} : { limits: limits as Record<string, unknown> }),
		disabled: record.disabled,
		createdAt: record.createdAt,
		updatedAt: record.updatedAt,
	};
}
