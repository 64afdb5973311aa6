/**
 * The cryptography of scheme v2 (docs/design.md, "Scheme v2") on WebCrypto only, shared by the verifier
 * (in the Worker) and the client signer: HMAC-SHA256 over the signature base, and the
 * `Content-Digest` of a body (RFC 9530).
 */
import { serializeDictionary } from "structured-headers";
import { utf8 } from "./crypto.ts";

export async function sha256(bytes: BufferSource): Promise<Uint8Array<ArrayBuffer>> {
	return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** The `Content-Digest` field of a body: `sha-256=:<base64>:`. */
export async function contentDigest(body: BufferSource): Promise<string> {
	return serializeDictionary({ "sha-256": await sha256(body) });
}

/** HMAC-SHA256 of the signature base's UTF-8 bytes with a key imported for `sign`. */
export async function signBase(key: CryptoKey, base: string): Promise<Uint8Array<ArrayBuffer>> {
	return new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8(base)));
}

/** Byte equality of two digests (public values: no need for constant time). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
	if (a.byteLength !== b.byteLength) return false;
	for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
	return true;
}
