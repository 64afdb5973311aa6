import { canonicalString, hmacSha256Hex, importHmacKey, sha256Hex, utf8 } from "../auth/crypto.ts";
import { signRequestV2, type SignedRequestPartsV2, type SignRequestV2Input } from "./sign-v2.ts";
import { v1SignedPath } from "./path.ts";
import { tokenLimitValue } from "./token-limit.ts";

export type { SignedHeadersV2, SignedRequestPartsV2, SignRequestV2Input } from "./sign-v2.ts";

export interface SignRequestInput {
	/** Scheme v1 (docs/design.md, "Scheme v1"), the default until the existing clients have moved to v2. */
	scheme?: "v1";
	clientId: string;
	secret: string;
	method: string;
	/** The URL path, without its query: `/agent/...`, or `/api/agent/...` (signed without `/api`, as the gateway verifies it). */
	path: string;
	/** The exact body to send; a string is sent as its UTF-8 bytes. */
	body?: string | Uint8Array;
	/** Milliseconds since the epoch; sign a fresh one for every request and every retry. */
	timestamp?: number;
	/**
	 * The most this request may spend of the client's token budget, sent as `X-Token-Limit`
	 * (a whole number from 1). v1 signs no header, so this one is sent unsigned: it can only
	 * lower the request's hold.
	 */
	tokenLimit?: number;
}

export interface SignedHeaders {
	"X-Client-Id": string;
	"X-Timestamp": string;
	"X-Signature": string;
	/** Sent when `tokenLimit` is given. */
	"X-Token-Limit"?: string;
}

export interface SignedRequestParts {
	headers: SignedHeaders;
	/** The bytes that were hashed: send exactly these. */
	body: Uint8Array<ArrayBuffer>;
}

/**
 * Signs a request with scheme v1 (docs/design.md, "Scheme v1"). WebCrypto only, so it runs in Node 22,
 * browsers and Workers.
 *
 * @example
 * ```ts
 * const { headers, body } = await signRequest({ clientId: "svc", secret, method: "POST", path: "/agent/chat", body: json });
 * await fetch(`${gateway}/agent/chat`, { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body });
 * ```
 */
export function signRequest(input: SignRequestInput): Promise<SignedRequestParts>;
/** Signs a request with scheme v2 (docs/design.md, "Scheme v2"): a fresh nonce and `created` each call unless given. */
export function signRequest(input: SignRequestV2Input): Promise<SignedRequestPartsV2>;
export function signRequest(input: SignRequestInput | SignRequestV2Input): Promise<SignedRequestParts | SignedRequestPartsV2> {
	return input.scheme === "v2" ? signRequestV2(input) : signRequestV1(input);
}

async function signRequestV1(input: SignRequestInput): Promise<SignedRequestParts> {
	if (input.secret === "") throw new Error("signRequest: secret is empty");
	const tokenLimit = input.tokenLimit === undefined ? undefined : tokenLimitValue(input.tokenLimit);
	const body = typeof input.body === "string" ? utf8(input.body) : new Uint8Array(input.body ?? new Uint8Array(0));
	const timestamp = String(input.timestamp ?? Date.now());
	const canonical = canonicalString({ method: input.method, path: v1SignedPath(input.path), timestamp, bodySha256: await sha256Hex(body) });
	const signature = await hmacSha256Hex(await importHmacKey(input.secret, "sign"), canonical);
	const headers: SignedHeaders = { "X-Client-Id": input.clientId, "X-Timestamp": timestamp, "X-Signature": signature };
	if (tokenLimit !== undefined) headers["X-Token-Limit"] = tokenLimit;
	return { headers, body };
}
