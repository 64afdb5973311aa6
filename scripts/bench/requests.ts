import { createHash, createHmac, randomBytes } from "node:crypto";
import { serializeDictionary, serializeInnerList, type InnerList } from "structured-headers";

/** The shared HMAC secret of every benchmarked gateway. */
export const SECRET = "bench-secret-of-at-least-32-characters";

/** What one request of a scenario sends. */
export interface BenchRequest {
	method: "GET" | "POST";
	/** Path and query. */
	path: string;
	headers: Record<string, string>;
	body?: string;
}

/** A chat body of `size` bytes, unique per `counter` (every signature differs, so no replay). */
export function chatBody(size: number, counter: number): string {
	const prefix = `{"messages":[{"role":"user","content":"${counter} `;
	const suffix = '"}]}';
	return prefix + "x".repeat(Math.max(0, size - prefix.length - suffix.length)) + suffix;
}

/** Scheme v1 headers (docs/design.md, "Scheme v1") for a request on `path` (without the query). */
export function signHeaders(method: string, path: string, payload: string, timestamp: number, secret = SECRET): Record<string, string> {
	const bodyHash = createHash("sha256").update(payload).digest("hex");
	const signature = createHmac("sha256", secret).update(`${method}\n${path}\n${timestamp}\n${bodyHash}`).digest("hex");
	return { "x-client-id": "bench", "x-timestamp": String(timestamp), "x-signature": signature, "content-type": "application/json" };
}

/**
 * Scheme v2 headers (RFC 9421, hmac-sha256) for a POST to /agent/chat, signed with Node's
 * crypto: the load generator signs each request synchronously as it sends it.
 */
export function signV2Headers(payload: string, timestamp: number, secret = SECRET): Record<string, string> {
	const digest = serializeDictionary({ "sha-256": new Uint8Array(createHash("sha256").update(payload).digest()) });
	const member: InnerList = [
		["@method", "@path", "@query", "content-digest"].map((name) => [name, new Map()]),
		new Map<string, string | number>([
			["created", Math.floor(timestamp / 1000)],
			["keyid", "bench"],
			["nonce", randomBytes(16).toString("base64url")],
		]),
	];
	const base = `"@method": POST\n"@path": /agent/chat\n"@query": ?\n"content-digest": ${digest}\n"@signature-params": ${serializeInnerList(member)}`;
	const signature = new Uint8Array(createHmac("sha256", secret).update(base).digest());
	return {
		"content-digest": digest,
		"signature-input": serializeDictionary(new Map([["sig1", member]])),
		signature: serializeDictionary({ sig1: signature }),
		"content-type": "application/json",
	};
}
