/**
 * The cryptography of scheme v1, on WebCrypto only, so the verifier (in the Worker)
 * and the signer (in Node 22, browsers and Workers) share one implementation.
 */

const encoder = new TextEncoder();
const HEX_BYTES = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

export function toHex(bytes: ArrayBuffer | Uint8Array): string {
	const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
	let hex = "";
	for (let i = 0; i < view.length; i++) hex += HEX_BYTES[view[i]!];
	return hex;
}

/** Bytes of a hex string already checked against its grammar (even length, hex digits). */
export function fromHex(hex: string): Uint8Array<ArrayBuffer> {
	const bytes = new Uint8Array(hex.length / 2);
	for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
	return bytes;
}

export function utf8(text: string): Uint8Array<ArrayBuffer> {
	return encoder.encode(text) as Uint8Array<ArrayBuffer>;
}

export async function sha256Hex(bytes: BufferSource): Promise<string> {
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
