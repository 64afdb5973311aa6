import { serializeDictionary } from "structured-headers";
import { importHmacKey, utf8 } from "../auth/crypto.ts";
import { signatureBase, signatureInputMember, signatureParams } from "../auth/http-signature-base.ts";
import { contentDigest, signBase } from "../auth/http-signature-crypto.ts";
import { pathWithoutQuery } from "./path.ts";
import { TOKEN_LIMIT_HEADER, tokenLimitValue } from "./token-limit.ts";

export interface SignRequestV2Input {
	scheme: "v2";
	/** The client id, sent as the signed `keyid`. */
	clientId: string;
	secret: string;
	method: string;
	/** The URL path exactly as it is sent (`/agent/...`, or `/api/agent/...` signed with its `/api`). */
	path: string;
	/** The query exactly as it is sent, with or without its `?`; empty or absent for none. */
	query?: string;
	/** The exact body to send; a string is sent as its UTF-8 bytes. */
	body?: string | Uint8Array;
	/** Integer seconds since the epoch. @default now: sign anew for every request and every retry */
	created?: number;
	/** 16 to 64 of `A-Za-z0-9_-`, unique per request. @default 22 random base64url characters */
	nonce?: string;
	/** Integer seconds since the epoch after which the gateway refuses the request. */
	expires?: number;
	/** Sends `alg="hmac-sha256"` (optional in the profile). @default false */
	alg?: boolean;
	/** The host (and port) the request is sent to: covers `@authority` too when given. */
	authority?: string;
	/** More headers to send and cover, lowercase names (e.g. `{ "content-type": "application/json" }`). */
	coveredHeaders?: Record<string, string>;
	/** The signature's label. @default "sig1" */
	label?: string;
	/**
	 * The most this request may spend of the client's token budget (a whole number from 1),
	 * sent as `X-Token-Limit` and covered by the signature.
	 */
	tokenLimit?: number;
}

export interface SignedHeadersV2 {
	"Signature-Input": string;
	Signature: string;
	/** Sent on a POST (the digest of `body`). */
	"Content-Digest"?: string;
	[covered: string]: string | undefined;
}

export interface SignedRequestPartsV2 {
	/** Every header to send: the signature fields and the covered headers. */
	headers: SignedHeadersV2;
	/** The bytes that were digested: send exactly these. */
	body: Uint8Array<ArrayBuffer>;
}

/**
 * Signs a request with scheme v2 (docs/design.md, "Scheme v2"): RFC 9421 HTTP Message Signatures with
 * hmac-sha256, covering `@method`, `@path`, `@query` and, on a POST, `content-digest`.
 */
export async function signRequestV2(input: SignRequestV2Input): Promise<SignedRequestPartsV2> {
	if (input.secret === "") throw new Error("signRequest: secret is empty");
	const method = input.method.toUpperCase();
	const body = typeof input.body === "string" ? utf8(input.body) : new Uint8Array(input.body ?? new Uint8Array(0));
	const query = input.query === undefined || input.query === "" || input.query === "?" ? "" : input.query.startsWith("?") ? input.query : `?${input.query}`;
	const covered = new Map<string, string>();
	for (const [name, value] of Object.entries(input.coveredHeaders ?? {})) {
		if (name.toLowerCase() === "signature") throw new Error("signRequest: coveredHeaders cannot cover Signature (its value is the signature being made)");
		covered.set(name.toLowerCase(), value.trim());
	}
	if (input.tokenLimit !== undefined) {
		const name = TOKEN_LIMIT_HEADER.toLowerCase();
		if (covered.has(name)) throw new Error("signRequest: give tokenLimit or an x-token-limit covered header, not both");
		covered.set(name, tokenLimitValue(input.tokenLimit));
	}
	const headers: SignedHeadersV2 = { "Signature-Input": "", Signature: "" };
	for (const [name, value] of covered) headers[name] = value;
	if (method === "POST") {
		const digest = await contentDigest(body);
		covered.set("content-digest", digest);
		headers["Content-Digest"] = digest;
	}

	const components = ["@method", ...(input.authority === undefined ? [] : ["@authority"]), "@path", "@query", ...covered.keys()];
	const params: [string, string | number][] = [
		["created", input.created ?? Math.floor(Date.now() / 1000)],
		["keyid", input.clientId],
		["nonce", input.nonce ?? randomNonce()],
	];
	if (input.alg === true) params.push(["alg", "hmac-sha256"]);
	if (input.expires !== undefined) params.push(["expires", input.expires]);
	const label = input.label ?? "sig1";
	const member = signatureInputMember(components, params);
	const base = signatureBase(components, signatureParams(member), {
		method,
		authority: input.authority ?? "",
		path: pathWithoutQuery(input.path),
		query,
		header: (name) => covered.get(name) ?? null,
	});
	const signature = await signBase(await importHmacKey(input.secret, "sign"), base);
	headers["Signature-Input"] = serializeDictionary(new Map([[label, member]]));
	headers.Signature = serializeDictionary({ [label]: signature });
	return { headers, body };
}

/** 16 random bytes as base64url: 22 characters of the nonce grammar. */
function randomNonce(): string {
	const bytes = crypto.getRandomValues(new Uint8Array(16));
	return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
