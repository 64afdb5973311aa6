import { importHmacKey, hmacVerify } from "./crypto.ts";

/** A client's keys as a `KeySource` finds them. */
export type KeyLookup =
	/** Its HMAC keys, imported for `verify`, newest first (at most 3). */
	| { status: "found"; keys: readonly CryptoKey[] }
	/** No such client, or one that is disabled: verified against a dummy key, then refused like a bad signature. */
	| { status: "unknown" }
	/** The lookup itself failed (a key store that cannot be reached): 503, never a guess. */
	| { status: "unavailable" };

/**
 * Where the signature schemes get a client's keys (docs/design.md, "Keyring"). The in-memory
 * `Keyring` below serves `HMAC_SECRET` and `HMAC_CLIENTS`; a Workers KV keyring implements the
 * same interface. A source:
 * - answers `found` with the keys that may verify this exact client id, newest first;
 * - answers `unknown` for an id it does not serve, including one that equals a registered id
 *   except for letter case (the shared secret never serves it);
 * - answers `unavailable` instead of throwing when it cannot tell (the request gets 503
 *   `keyring_unavailable`);
 * - keeps imported `CryptoKey`s and lookups cached as it sees fit: it is asked once per request.
 *
 * @example
 * ```ts
 * const keys: KeySource = new Keyring({ sharedSecrets: ["..."], clientSecrets: new Map() });
 * const verdict = await verifySignature(keys, "alice", signatureBytes, messageBytes);
 * ```
 */
export interface KeySource {
	/** False when no secret is configured at all: every signed request answers 500 `config_error`. */
	readonly configured: boolean;
	keysFor(clientId: string): Promise<KeyLookup>;
}

export type KeyVerdict = { ok: true; /** Position of the key that verified: 0 is the newest. */ slot: number } | { ok: false; reason: "bad_signature" | "unknown_client" | "unavailable" };

let dummyKey: Promise<CryptoKey> | undefined;

/**
 * Verifies `signature` over `data` with the client's keys (`crypto.subtle.verify`, constant
 * time). An unknown client is verified once against a random key, so it takes the same time
 * as a known client whose signature does not verify.
 */
export async function verifySignature(source: KeySource, clientId: string, signature: BufferSource, data: BufferSource): Promise<KeyVerdict> {
	const lookup = await source.keysFor(clientId);
	if (lookup.status === "unavailable") return { ok: false, reason: "unavailable" };
	if (lookup.status === "unknown" || lookup.keys.length === 0) {
		dummyKey ??= crypto.subtle.importKey("raw", crypto.getRandomValues(new Uint8Array(32)), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
		await hmacVerify(await dummyKey, signature, data);
		return { ok: false, reason: "unknown_client" };
	}
	for (let slot = 0; slot < lookup.keys.length; slot++) {
		if (await hmacVerify(lookup.keys[slot]!, signature, data)) return { ok: true, slot };
	}
	return { ok: false, reason: "bad_signature" };
}

export interface KeyringSecrets {
	/** Secrets for any client not listed in `clientSecrets`, newest first (`HMAC_SECRET`). */
	sharedSecrets: readonly string[];
	/** Per-client secrets, newest first (`HMAC_CLIENTS`); ids are compared exactly. */
	clientSecrets: ReadonlyMap<string, readonly string[]>;
}

/**
 * The keys of `HMAC_SECRET` and `HMAC_CLIENTS`, held in the isolate's memory. Each list is
 * imported once, on first use, and the promise is kept, so concurrent first requests share one
 * import (a failed import is not kept: the next request tries again).
 */
export class Keyring implements KeySource {
	private readonly imported = new Map<string, Promise<CryptoKey[]>>();
	private readonly secrets: KeyringSecrets;
	/** The registered ids in lowercase: another spelling of one is never served by the shared secret. */
	private readonly registeredLowercase: ReadonlySet<string>;

	constructor(secrets: KeyringSecrets) {
		this.secrets = secrets;
		this.registeredLowercase = new Set([...secrets.clientSecrets.keys()].map((id) => id.toLowerCase()));
	}

	get configured(): boolean {
		return this.secrets.sharedSecrets.length > 0 || this.secrets.clientSecrets.size > 0;
	}

	async keysFor(clientId: string): Promise<KeyLookup> {
		const own = this.secrets.clientSecrets.get(clientId);
		if (own === undefined && this.registeredLowercase.has(clientId.toLowerCase())) return { status: "unknown" };
		const secrets = own ?? this.secrets.sharedSecrets;
		if (secrets.length === 0) return { status: "unknown" };
		const cacheKey = own === undefined ? "shared" : `client:${clientId}`;
		let keys = this.imported.get(cacheKey);
		if (keys === undefined) {
			keys = Promise.all(secrets.map((secret) => importHmacKey(secret, "verify")));
			keys.catch(() => this.imported.delete(cacheKey));
			this.imported.set(cacheKey, keys);
		}
		return { status: "found", keys: await keys };
	}
}
