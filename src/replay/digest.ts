const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bytes of SHA-256 kept: 128 bits, so two live keys never share a digest by chance. */
const DIGEST_BYTES = 16;

/** 32 + 20 = 52 bits: under 2^53, an exact integer. */
const OWNER_LOW_BITS = 20;
const OWNER_LOW_SPACE = 2 ** OWNER_LOW_BITS;

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
 * A 52-bit number naming a client id for the memory store's per-client count: a number, not
 * the id, so an outage whose claims each name another 64-character id keeps no id at all.
 * SHA-256 over a secret salt and the id: without the salt no one can choose an id whose
 * number equals another's (and take from its half of the store); 52 bits (an exact integer)
 * so that two of 100,000 ids share one by chance about once in 10^6 fills.
 */
export async function ownerKey(owner: string, salt: Uint8Array): Promise<number> {
	const text = encoder.encode(owner);
	const salted = new Uint8Array(salt.length + text.length);
	salted.set(salt);
	salted.set(text, salt.length);
	const hash = new DataView(await crypto.subtle.digest("SHA-256", salted));
	return hash.getUint32(0) * OWNER_LOW_SPACE + (hash.getUint32(4) >>> (32 - OWNER_LOW_BITS));
}

/**
 * A copy of `text` that holds nothing else alive. A substring of a header (a v2 keyid or
 * nonce) can share the whole header's memory; a string kept for minutes must not.
 */
export function ownCopy(text: string): string {
	return decoder.decode(encoder.encode(text));
}
