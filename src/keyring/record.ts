/**
 * The keyring's record format (docs/design.md, "Keyring"): one KV value per client id, JSON
 * `{"v": 2, "id": ..., "sealed": ...}`. Everything a record says of its client (secrets,
 * limits, `disabled`, `revoked`, timestamps) is in `sealed`, one AES-256-GCM ciphertext under
 * `KEYRING_KEY` with the id as additional data: no field can be changed without the key.
 */
import { CLIENT_ID_PATTERN } from "../auth/grammar.ts";

/** Format version of a stored record: any other (the first format sealed only the secrets) is refused, not misread. */
export const RECORD_VERSION = 2;
/** Secrets per client: the newest, and up to two still honoured during a rotation. */
export const MAX_SECRETS_PER_CLIENT = 3;
/** Every keyring entry's KV key starts with this; the rest is the client id in lowercase. */
export const RECORD_KEY_PREFIX = "client:";

/** A record as KV holds it. */
export interface StoredRecord {
	v: typeof RECORD_VERSION;
	/** The client id exactly as registered (the KV key holds it in lowercase). */
	id: string;
	/** `base64(iv || AES-256-GCM ciphertext || tag)` of the JSON of its `RecordContent`; the id is the additional data. */
	sealed: string;
}

/** What a sealed record holds. */
export interface RecordContent {
	/** Newest first, 1 to 3; none in a tombstone. */
	secrets: string[];
	/** The client's limits (the `CLIENT_LIMITS` entry format), kept as given. */
	limits?: Record<string, unknown>;
	/** A disabled client is refused like an unknown one, and never served by a shared secret. */
	disabled: boolean;
	/** A tombstone (`keys revoke`): the id is refused whatever signs it, until `keys forget`. */
	revoked: boolean;
	/** ISO 8601. */
	createdAt: string;
	/** ISO 8601: the last change. */
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

/**
 * `value` as a stored record, or null when it is not exactly one: another format version, or
 * any field added, missing or of another type (an edit made without the key).
 */
export function parseStoredRecord(value: unknown): StoredRecord | null {
	if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
	const record = value as Record<string, unknown>;
	if (Object.keys(record).length !== 3 || record.v !== RECORD_VERSION) return null;
	if (typeof record.id !== "string" || !CLIENT_ID_PATTERN.test(record.id)) return null;
	if (typeof record.sealed !== "string" || record.sealed === "") return null;
	return { v: RECORD_VERSION, id: record.id, sealed: record.sealed };
}

/** What a record opened to, as record content, or null when it is not (never trusted for being sealed). */
export function parseRecordContent(value: unknown): RecordContent | null {
	if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
	const content = value as Record<string, unknown>;
	const { secrets, limits, disabled, revoked, createdAt, updatedAt } = content;
	if (typeof disabled !== "boolean" || typeof revoked !== "boolean") return null;
	if (typeof createdAt !== "string" || typeof updatedAt !== "string") return null;
	if (!Array.isArray(secrets) || !secrets.every((s) => typeof s === "string" && s !== "")) return null;
	if (revoked ? secrets.length !== 0 : secrets.length < 1 || secrets.length > MAX_SECRETS_PER_CLIENT) return null;
	if (limits !== undefined && (typeof limits !== "object" || limits === null || Array.isArray(limits))) return null;
	return {
		secrets: secrets as string[],
		...(limits === undefined ? {} : { limits: limits as Record<string, unknown> }),
		disabled,
		revoked,
		createdAt,
		updatedAt,
	};
}
