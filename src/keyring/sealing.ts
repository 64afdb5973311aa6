/**
 * The keyring's encryption at rest (docs/design.md, "Keyring"): a client's secrets are one
 * AES-256-GCM ciphertext under `KEYRING_KEY`, with the client id as additional data, so a
 * record copied to another id, a changed byte or another key does not decrypt. WebCrypto
 * only: the Worker opens records, the admin CLI (Node) seals them, with the same code.
 */

const KEY_BYTES = 32;
const IV_BYTES = 12;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** A record that does not open: wrong key, another client's record, or changed bytes. Says nothing more. */
export class KeyringDecryptError extends Error {
	override readonly name = "KeyringDecryptError";
}

/**
 * The 32 bytes of a `KEYRING_KEY` (standard base64, padding optional), or null when it is
 * not base64 of exactly 32 bytes. Never says why, since the value is a secret.
 */
export function decodeKeyringKey(text: string): Uint8Array<ArrayBuffer> | null {
	const trimmed = text.trim();
	if (!/^[A-Za-z0-9+/]{43}=?$/.test(trimmed)) return null;
	const bytes = fromBase64(trimmed.endsWith("=") ? trimmed : `${trimmed}=`);
	return bytes?.byteLength === KEY_BYTES ? bytes : null;
}

/** A fresh `KEYRING_KEY`: 32 random bytes, base64. */
export function generateKeyringKey(): string {
	return toBase64(crypto.getRandomValues(new Uint8Array(KEY_BYTES)));
}

/** Imports `KEYRING_KEY`'s bytes for AES-256-GCM; the key cannot be exported again. */
export function importKeyringKey(bytes: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
	if (bytes.byteLength !== KEY_BYTES) throw new Error(`importKeyringKey: the key must be ${KEY_BYTES} bytes`);
	return crypto.subtle.importKey("raw", bytes, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
}

/** `base64(iv || ciphertext || tag)` of the JSON list of `secrets`, bound to `clientId`. */
export async function sealSecrets(key: CryptoKey, clientId: string, secrets: readonly string[]): Promise<string> {
	const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
	const plaintext = encoder.encode(JSON.stringify(secrets));
	const ciphertext = new Uint8Array(
		await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(clientId) }, key, plaintext),
	);
	const sealed = new Uint8Array(IV_BYTES + ciphertext.byteLength);
	sealed.set(iv);
	sealed.set(ciphertext, IV_BYTES);
	return toBase64(sealed);
}

/**
 * The secrets sealed for `clientId`. Throws `KeyringDecryptError` for anything that does not
 * open to a list of non-empty strings; never a parser's message (it could quote a secret).
 */
export async function openSecrets(key: CryptoKey, clientId: string, sealed: string): Promise<string[]> {
	const bytes = fromBase64(sealed);
	// 16 bytes of GCM tag, at least.
	if (bytes === null || bytes.byteLength < IV_BYTES + 16) throw new KeyringDecryptError("sealed secrets are malformed");
	let plaintext: string;
	try {
		const opened = await crypto.subtle.decrypt(
			{ name: "AES-GCM", iv: bytes.subarray(0, IV_BYTES), additionalData: encoder.encode(clientId) },
			key,
			bytes.subarray(IV_BYTES),
		);
		plaintext = decoder.decode(opened);
	} catch {
		throw new KeyringDecryptError("sealed secrets do not decrypt for this client id under this key");
	}
	let secrets: unknown;
	try {
		secrets = JSON.parse(plaintext);
	} catch {
		throw new KeyringDecryptError("sealed secrets are not a list");
	}
	if (!Array.isArray(secrets) || secrets.length === 0 || !secrets.every((s) => typeof s === "string" && s !== "")) {
		throw new KeyringDecryptError("sealed secrets are not a list of secrets");
	}
	return secrets as string[];
}

export function toBase64(bytes: Uint8Array): string {
	let binary = "";
	for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]!);
	return btoa(binary);
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> | null {
	if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
	const binary = atob(text);
	const bytes = new Uint8Array(binary.length);
	for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
	return bytes;
}
