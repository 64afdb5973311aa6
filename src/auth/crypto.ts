/**
 * The cryptography of signatures, on WebCrypto only: the primitives, which the verifier (in
 * the Worker) and the signer (in Node 22, browsers and Workers) share, and the keys a
 * signature is verified with (`KeySource`, `verifySignature`, the `Keyring` of `HMAC_SECRET`
 * and `HMAC_CLIENTS`).
 */

const encoder = new TextEncoder();
const HEX_BYTES = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

export function toHex(bytes: ArrayBuffer | Uint8Array): string {
	const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
	let hex = "";
	for (let i = 0; i < view.length; i++) hex += HEX_BYTES[view[i]!];
	return hex;
}

/** The value of each hex digit by its character code (either case); other codes are never looked up. */
const HEX_VALUES = new Uint8Array(128);
for (let digit = 0; digit < 16; digit++) {
	HEX_VALUES[digit.toString(16).charCodeAt(0)] = digit;
	HEX_VALUES[digit.toString(16).toUpperCase().charCodeAt(0)] = digit;
}

/** Bytes of a hex string already checked against its grammar (even length, hex digits): a table, no substring per byte. */
export function fromHex(hex: string): Uint8Array<ArrayBuffer> {
	const bytes = new Uint8Array(hex.length / 2);
	for (let i = 0; i < bytes.length; i++) bytes[i] = (HEX_VALUES[hex.charCodeAt(i * 2)]! << 4) | HEX_VALUES[hex.charCodeAt(i * 2 + 1)]!;
	return bytes;
}

export function utf8(text: string): Uint8Array<ArrayBuffer> {
	return encoder.encode(text) as Uint8Array<ArrayBuffer>;
}

/** SHA-256 of no bytes: every GET's body hash, known without a digest. */
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export async function sha256Hex(bytes: BufferSource): Promise<string> {
	if (bytes.byteLength === 0) return EMPTY_SHA256;
	return toHex(await crypto.subtle.digest("SHA-256", bytes));
}

export interface CanonicalParts {
	method: string;
	path: string;
	/** `X-Timestamp` exactly as sent. */
	timestamp: string;
	/** Lowercase hex SHA-256 of the raw body bytes. */
	bodySha256: string;
}

const API_ALIAS_PREFIX = "/api/agent/";

/**
 * The path that is signed and forwarded, by both schemes and the signer: the URL's pathname
 * byte for byte (percent-encoding kept), with exactly the leading `/api` removed from
 * `/api/agent/...`.
 */
export function signedPath(pathname: string): string {
	return pathname.startsWith(API_ALIAS_PREFIX) ? pathname.slice("/api".length) : pathname;
}

export function canonicalString(parts: CanonicalParts): string {
	return `${parts.method.toUpperCase()}\n${parts.path}\n${parts.timestamp}\n${parts.bodySha256}`;
}

export function importHmacKey(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
	return crypto.subtle.importKey("raw", utf8(secret), { name: "HMAC", hash: "SHA-256" }, false, [usage]);
}

export async function hmacSha256Hex(key: CryptoKey, message: string): Promise<string> {
	return toHex(await crypto.subtle.sign("HMAC", key, utf8(message)));
}

/** Constant-time HMAC check by the runtime (`crypto.subtle.verify`). */
export function hmacVerify(key: CryptoKey, signature: BufferSource, message: BufferSource): Promise<boolean> {
	return crypto.subtle.verify("HMAC", key, signature, message);
}

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
 * - keeps imported `CryptoKey`s and lookups cached as it sees fit: it is asked once per request,
 *   and, where it caches, may offer `keysAgain` for a signature that failed against its cache.
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
	/**
	 * After a signature failed against `keysFor`'s answer: the client's keys read anew when the
	 * source may hold newer ones than it cached (a secret rotated or added since), or null when
	 * it has nothing newer (or may not read now). A new secret then works at once.
	 */
	keysAgain?(clientId: string): Promise<KeyLookup | null>;
}

export type KeyVerdict = { ok: true; /** Position of the key that verified: 0 is the newest. */ slot: number } | { ok: false; reason: "bad_signature" | "unknown_client" | "unavailable" };

let dummyKey: Promise<CryptoKey> | undefined;

/**
 * Verifies `signature` over `data` with the client's keys (`crypto.subtle.verify`, constant
 * time). An unknown client is verified once against a random key, so it takes the same time
 * as a known client whose signature does not verify. A failure is checked once more against
 * the source's newer keys, when it has some (`keysAgain`).
 */
export async function verifySignature(source: KeySource, clientId: string, signature: BufferSource, data: BufferSource): Promise<KeyVerdict> {
	const lookup = await source.keysFor(clientId);
	if (lookup.status === "unavailable") return { ok: false, reason: "unavailable" };
	const verdict = await verifyWith(lookup, signature, data);
	if (verdict.ok || source.keysAgain === undefined) return verdict;
	const again = await source.keysAgain(clientId);
	// Only keys that may verify change the answer: anything else keeps the first refusal.
	return again?.status === "found" ? verifyWith(again, signature, data) : verdict;
}

async function verifyWith(lookup: Exclude<KeyLookup, { status: "unavailable" }>, signature: BufferSource, data: BufferSource): Promise<KeyVerdict> {
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
