const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bytes of SHA-256 kept: 128 bits, so two live keys never share a digest by chance. */
const DIGEST_BYTES = 16;

/**
 * A fixed-size name for a replay key, for the structures that only need to recognise it
 * (the memory store, the decisions): 16 bytes of its SHA-256 as a one-byte string, about
 * 28 bytes of heap where a maximum-length v2 key (prefix, keyid and nonce) takes about 160.
 * A cryptographic hash, because a client that signs its own requests chooses their nonces:
 * it must not be able to make two keys collide and have another's request refused.
 */
export async function keyDigest(key: string): Promise<string> {
	const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(key)), 0, DIGEST_BYTES);
	return String.fromCharCode(...hash);
}

/**
 * A copy of `text` that holds nothing else alive. A substring of a header (a v2 keyid or
 * nonce) can share the whole header's memory; a string kept for minutes must not.
 */
export function ownCopy(text: string): string {
	return decoder.decode(encoder.encode(text));
}
