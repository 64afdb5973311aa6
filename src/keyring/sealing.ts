/**
 * The keyring's encryption at rest (docs/design.md, "Keyring"): a client's whole record is one
 * AES-256-GCM ciphertext under `KEYRING_KEY`, with the client id as additional data, so a
 * record copied to another id, a changed byte or another key does not decrypt. `KEYRING_KEY`
 * may hold two keys during its own rotation (new first): a record opens under either. WebCrypto
 * only: the Worker opens records, the admin CLI (Node) seals them, with the same code.
 */
import { parseRecordContent, type RecordContent } from "./record.ts";

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

/** Keys in one `KEYRING_KEY`: the key itself, and the old one after a comma while it is rotated. */
export const MAX_KEYRING_KEYS = 2;

/**
 * The keys of a `KEYRING_KEY` (one, or `new,old` during its rotation), each 32 bytes; null
 * when one of them is not base64 of 32 bytes, or there are more than two. Never says which.
 */
export function decodeKeyringKeys(text: string): Uint8Array<ArrayBuffer>[] | null {
	const parts = text.split(",").map((part) => part.trim());
	if (parts.length > MAX_KEYRING_KEYS) return null;
	const keys = parts.map(decodeKeyringKey);
	return keys.every((key) => key !== null) ? (keys as Uint8Array<ArrayBuffer>[]) : null;
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

/** `base64(iv || ciphertext || tag)` of the JSON of a record's `content`, bound to `clientId`. */
export async function sealRecord(key: CryptoKey, clientId: string, content: RecordContent): Promise<string> {
	const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
	const plaintext = encoder.encode(JSON.stringify(content));
	const ciphertext = new Uint8Array(
		await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(clientId) }, key, plaintext),
	);
	const sealed = new Uint8Array(IV_BYTES + ciphertext.byteLength);
	sealed.set(iv);
	sealed.set(ciphertext, IV_BYTES);
	return toBase64(sealed);
}

/**
 * The content sealed for `clientId`, and which of `keys` opened it (0: the first, the one new
 * records are sealed with). Throws `KeyringDecryptError` for anything that does not open under
 * one of them to record content; never a parser's message (it could quote a secret).
 */
export async function openRecord(keys: readonly CryptoKey[], clientId: string, sealed: string): Promise<{ content: RecordContent; keyIndex: number }> {
	const { plaintext, keyIndex } = await openSealed(keys, clientId, sealed);
	let value: unknown;
	try {
		value = JSON.parse(plaintext);
	} catch {
		throw new KeyringDecryptError("the sealed record is not JSON");
	}
	const content = parseRecordContent(value);
	if (content === null) throw new KeyringDecryptError("the sealed record is not a record's content");
	return { content, keyIndex };
}

/** The UTF-8 text sealed for `clientId` under one of `keys` (tried in order), or `KeyringDecryptError`. */
export async function openSealed(keys: readonly CryptoKey[], clientId: string, sealed: string): Promise<{ plaintext: string; keyIndex: number }> {
	const bytes = fromBase64(sealed);
	// 16 bytes of GCM tag, at least.
	if (bytes === null || bytes.byteLength < IV_BYTES + 16) throw new KeyringDecryptError("the sealed text is malformed");
	const additionalData = encoder.encode(clientId);
	for (const [keyIndex, key] of keys.entries()) {
		try {
			const opened = await crypto.subtle.decrypt({ name: "AES-GCM", iv: bytes.subarray(0, IV_BYTES), additionalData }, key, bytes.subarray(IV_BYTES));
			return { plaintext: decoder.decode(opened), keyIndex };
		} catch {
			// Another key, or changed bytes: the next key, if any.
		}
	}
	throw new KeyringDecryptError("the sealed text does not decrypt for this client id under these keys");
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
