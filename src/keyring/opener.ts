import { LogThrottle, type Logger } from "../log.ts";
import type { StoredRecord } from "./record.ts";
import { KeyringDecryptError, openRecord } from "./sealing.ts";
import type { StoreRead } from "./store.ts";

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

/**
 * Why a named id must not verify: refused like an unknown client, never served by a shared
 * secret. `revoked`: a tombstone (`keys revoke`).
 */
export type KeyringRefusal = "disabled" | "revoked" | "case_variant" | "undecryptable";

export type KeyringLookupResult =
	| { kind: "found"; client: KeyringClient }
	/** The keyring does not name this id: the secrets of the environment decide. */
	| { kind: "absent" }
	| { kind: "refused"; reason: KeyringRefusal }
	/**
	 * 503, never a pass: nothing known of this id and KV cannot answer now (`kv_error`), too many
	 * unknown ids (`throttled`), or a record and no `KEYRING_KEY` to open it (`no_key`).
	 */
	| { kind: "unavailable"; reason: "kv_error" | "throttled" | "no_key" };

/** What a read of KV decides for a while: cached, and served again while KV fails. */
export type Decided = Exclude<KeyringLookupResult, { kind: "unavailable"; reason: "kv_error" | "throttled" }>;

export const ABSENT: Decided = Object.freeze({ kind: "absent" });
const UNDECRYPTABLE: Decided = Object.freeze({ kind: "refused", reason: "undecryptable" });
const NO_KEY: Decided = Object.freeze({ kind: "unavailable", reason: "no_key" });

/**
 * Decides what a KV read of one id means (docs/design.md, "Keyring"): the record's client, or
 * why it is refused. Everything a record says is sealed: it is decided only once it opened
 * under `KEYRING_KEY` for this exact id. Without a key, any record refuses its id (503): a lost
 * key never hands keyring ids to the shared secret.
 */
export class RecordOpener {
	private readonly keys: Promise<readonly CryptoKey[]> | null;
	private readonly log: Logger;
	private readonly unreadableLog: LogThrottle;
	private readonly noKeyLog: LogThrottle;

	/** `keys`: `KEYRING_KEY`'s keys (new first), or null when it is not set. */
	constructor(keys: Promise<readonly CryptoKey[]> | null, log: Logger, now: () => number) {
		this.keys = keys;
		this.log = log;
		this.unreadableLog = new LogThrottle(10_000, now);
		this.noKeyLog = new LogThrottle(60_000, now);
	}

	async decide(clientId: string, read: StoreRead): Promise<Decided> {
		if (read.kind === "absent") return ABSENT;
		if (this.keys === null) {
			const suppressed = this.noKeyLog.admit("no_key");
			if (suppressed !== null) {
				this.log.error("keyring record refused: the KEYRING binding is set but KEYRING_KEY is not (configuration fault; 503 keyring_unavailable)", { clientId, suppressed });
			}
			return NO_KEY;
		}
		if (read.kind === "malformed") return this.unreadable(clientId, read.why);
		return this.open(clientId, read.record);
	}

	private async open(clientId: string, record: StoredRecord): Promise<Decided> {
		// One KV key holds every case of an id; only the exact id is this record's client.
		if (record.id !== clientId) {
			if (record.id.toLowerCase() === clientId.toLowerCase()) return { kind: "refused", reason: "case_variant" };
			return this.unreadable(clientId, "moved");
		}
		let opened;
		try {
			opened = await openRecord(await this.keys!, clientId, record.sealed);
		} catch (error) {
			if (error instanceof KeyringDecryptError) return this.unreadable(clientId, "decrypt");
			throw error;
		}
		const { content } = opened;
		if (content.revoked) return { kind: "refused", reason: "revoked" };
		if (content.disabled) return { kind: "refused", reason: "disabled" };
		const keys = Promise.all(content.secrets.map(importVerifyKey));
		return {
			kind: "found",
			client: { clientId, secrets: content.secrets, keys, ...(content.limits === undefined ? {} : { limits: content.limits }) },
		};
	}

	/** A record that does not open (another key, moved, edited, or not a record): logged, refused as unknown. */
	private unreadable(clientId: string, why: "malformed" | "old_format" | "moved" | "decrypt"): Decided {
		if (this.unreadableLog.admit(`unreadable:${clientId}`) !== null) {
			const hint = why === "old_format" ? " (a record of the first format: npm run keys -- rekey re-seals it)" : "";
			this.log.error(`keyring record refused: it does not open for its id under KEYRING_KEY${hint}`, { clientId, why });
		}
		return UNDECRYPTABLE;
	}
}

function importVerifyKey(secret: string): Promise<CryptoKey> {
	return crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
}
