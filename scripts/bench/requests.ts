import { createHash, createHmac } from "node:crypto";

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

/** Scheme v1 headers (SPEC section 2) for a request on `path` (without the query). */
export function signHeaders(method: string, path: string, payload: string, timestamp: number, secret = SECRET): Record<string, string> {
	const bodyHash = createHash("sha256").update(payload).digest("hex");
	const signature = createHmac("sha256", secret).update(`${method}\n${path}\n${timestamp}\n${bodyHash}`).digest("hex");
	return { "x-client-id": "bench", "x-timestamp": String(timestamp), "x-signature": signature, "content-type": "application/json" };
}
