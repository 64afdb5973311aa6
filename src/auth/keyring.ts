import { fromHex, hmacVerify, importHmacKey, utf8 } from "./crypto.ts";

export type VerifyResult =
	| { ok: true; /** Position of the secret that verified: 0 is the newest. */ slot: number }
	| { ok: false; reason: "bad_signature" | "unknown_client" };

export interface KeyringSecrets {
	/** Secrets for any client not listed in `clientSecrets`, newest first. */
	sharedSecrets: readonly string[];
	clientSecrets: ReadonlyMap<string, readonly string[]>;
}

/**
 * The HMAC keys of one isolate. Each secret is imported once, on first use, and the
 * promise is kept, so concurrent first requests share one import.
 */
export class Keyring {
	private readonly imported = new Map<string, Promise<CryptoKey[]>>();
	private dummyKey: Promise<CryptoKey> | undefined;

	private readonly secrets: KeyringSecrets;

	constructor(secrets: KeyringSecrets) {
		this.secrets = secrets;
	}

	/** False when no secret is configured at all (SPEC step 4). */
	get configured(): boolean {
		return this.secrets.sharedSecrets.length > 0 || this.secrets.clientSecrets.size > 0;
	}

	/**
	 * Verifies `signatureHex` (already checked against its grammar) over `message`.
	 * An unknown client is verified against a random key so it costs the same time.
	 */
	verify(clientId: string, signatureHex: string, message: string): Promise<VerifyResult> {
		return this.verifyBytes(clientId, fromHex(signatureHex), utf8(message));
	}

	/**
	 * Verifies a signature given as bytes over `data` (scheme v2: the signature base's UTF-8).
	 * Same keys, same dummy key for an unknown client, as `verify`.
	 */
	async verifyBytes(clientId: string, signature: BufferSource, data: BufferSource): Promise<VerifyResult> {
		const keys = this.keysFor(clientId);
		if (keys === undefined) {
			await hmacVerify(await this.dummy(), signature, data);
			return { ok: false, reason: "unknown_client" };
		}
		const candidates = await keys;
		for (let slot = 0; slot < candidates.length; slot++) {
			if (await hmacVerify(candidates[slot]!, signature, data)) return { ok: true, slot };
		}
		return { ok: false, reason: "bad_signature" };
	}

	private keysFor(clientId: string): Promise<CryptoKey[]> | undefined {
		const own = this.secrets.clientSecrets.get(clientId);
		const cacheKey = own ? `client:${clientId}` : "shared";
		const secrets = own ?? this.secrets.sharedSecrets;
		if (secrets.length === 0) return undefined;
		let keys = this.imported.get(cacheKey);
		if (keys === undefined) {
			keys = Promise.all(secrets.map((secret) => importHmacKey(secret, "verify")));
			// A failed import is not cached: the next request tries again.
			keys.catch(() => this.imported.delete(cacheKey));
			this.imported.set(cacheKey, keys);
		}
		return keys;
	}

	private dummy(): Promise<CryptoKey> {
		this.dummyKey ??= crypto.subtle.importKey(
			"raw",
			crypto.getRandomValues(new Uint8Array(32)),
			{ name: "HMAC", hash: "SHA-256" },
			false,
			["verify"],
		);
		return this.dummyKey;
	}
}
