import type { MiddlewareHandler } from "hono";
import type { AuthEvents } from "../events.ts";
import type { Logger } from "../log.ts";
import { LogThrottle } from "../log.ts";
import { authFailures } from "./failures.ts";
import { readBodyWithLimit } from "./body.ts";
import { utf8 } from "./crypto.ts";
import { signatureBase } from "./http-signature-base.ts";
import { equalBytes, sha256 } from "./http-signature-crypto.ts";
import { parseSignatureFields } from "./http-signature-fields.ts";
import { AGENT_PATH_PATTERN, signedPath } from "./grammar.ts";
import type { Keyring } from "./keyring.ts";
import type { VerifiedVariables } from "./verified.ts";

export interface HttpSignatureAuthOptions {
	/** The secrets, imported once per isolate (the same keyring as scheme v1). */
	keyring: Pick<Keyring, "configured" | "verifyBytes">;
	/** Largest accepted `abs(now - created)`. @default 300000 (`HMAC_MAX_SKEW_MS`) */
	maxSkewMs: number;
	/** Largest accepted body. @default 1048576 (`MAX_BODY_BYTES`) */
	maxBodyBytes: number;
	events: AuthEvents;
	log: Logger;
	/** @default Date.now */
	now?: () => number;
}

const HMAC_SHA256_BYTES = 32;

/**
 * Verifies scheme v2 signatures (SPEC section 2b: RFC 9421 HTTP Message Signatures,
 * hmac-sha256, with RFC 9530 `Content-Digest`) in the contract's order: fields and profile,
 * path, declared body, secret, signature, clock, and only then the body against its digest.
 * A forged request is refused before its body is read. It claims no replay key (that is
 * `replayProtection()`, after it); a passing request gets `c.var.verified`.
 *
 * @example
 * ```ts
 * app.post("/agent/*", httpSignatureAuth({ keyring, maxSkewMs: 300_000, maxBodyBytes: 1_048_576, events, log }), (c) =>
 *   c.json({ client: c.var.verified.clientId }),
 * );
 * ```
 */
export const httpSignatureAuth = (options: HttpSignatureAuthOptions): MiddlewareHandler<{ Variables: VerifiedVariables }> => {
	if (!(options.maxSkewMs > 0)) throw new Error("httpSignatureAuth: maxSkewMs must be positive");
	if (!(options.maxBodyBytes > 0)) throw new Error("httpSignatureAuth: maxBodyBytes must be positive");
	const { keyring, events, log } = options;
	const now = options.now ?? Date.now;
	const throttle = new LogThrottle(10_000, now);

	const { reject, fail } = authFailures(events);

	return async function httpSignatureAuth(c, next) {
		const request = c.req.raw;
		const method = request.method;

		// Steps 1 and 2: the fields, the profile, the keyid's grammar, then the path.
		const parsed = parseSignatureFields(request);
		if (!parsed.ok) {
			if (parsed.reason === "invalid_client_id" && throttle.admit("invalid_client_id") !== null) {
				log.warn("invalid client id", { scheme: "v2" });
			}
			throw fail(parsed.reason);
		}
		const { input, signature, digest } = parsed.fields;
		const url = new URL(request.url);
		const path = signedPath(url.pathname);
		if (!AGENT_PATH_PATTERN.test(path)) throw fail("invalid_path");

		// Step 3: what the body declares; it is not read yet.
		if (method === "GET" && declaresBody(request)) throw fail("body_not_allowed");
		if (declaredLength(request) > options.maxBodyBytes) throw fail("body_too_large");

		// Steps 4 and 5: the signature over the base, before any byte of the body.
		if (!keyring.configured) throw fail("config_error");
		if (signature.byteLength !== HMAC_SHA256_BYTES) throw fail("bad_signature");
		const base = signatureBase(input.components, input.params, {
			method,
			authority: url.host,
			// v2 signs the path as sent: `/api/agent/...` with its `/api`.
			path: url.pathname,
			query: url.search,
			header: (name) => request.headers.get(name),
		});
		const verified = await keyring.verifyBytes(input.keyid, signature, utf8(base));
		// An unknown keyid gets the same answer as a bad signature; only the metrics tell them apart.
		if (!verified.ok) throw reject(verified.reason, ["bad_signature"]);
		events.secretSlot(verified.slot);

		// Step 6: the clock, after the signature (as v1), so only signed requests reach the histogram.
		const serverTime = now();
		const skew = Math.abs(serverTime - input.created * 1000);
		events.skew(skew);
		if (skew > options.maxSkewMs || (input.expires !== null && serverTime > input.expires * 1000)) {
			throw reject("clock_skew", ["clock_skew", { detail: SKEW_DETAIL, headers: { "X-Server-Time": String(serverTime) } }]);
		}

		// Step 7: the body, within the limit, against the signed digest.
		const body = await readBodyWithLimit(request, options.maxBodyBytes);
		if (!body.ok) throw fail(body.reason === "too_large" ? "body_too_large" : "invalid_body");
		if (method === "GET" && body.bytes.byteLength > 0) throw fail("body_not_allowed");
		if (digest !== null && !equalBytes(await sha256(body.bytes), digest)) throw fail("digest_mismatch");

		c.set("verified", {
			scheme: "v2",
			clientId: input.keyid,
			path,
			query: url.search,
			body: body.bytes,
			replay: { id: `v2:${input.keyid}:${input.nonce}`, signedAt: String(input.created * 1000) },
		});
		await next();
	};
};

const SKEW_DETAIL = "The signature's created time is too far from the server time, or its expires time has passed; see X-Server-Time.";

function declaresBody(request: Request): boolean {
	const length = request.headers.get("content-length");
	return request.headers.has("transfer-encoding") || (length !== null && length !== "0");
}

/** The declared Content-Length (trusted only without Transfer-Encoding, as `readBodyWithLimit` does), else 0. */
function declaredLength(request: Request): number {
	const declared = request.headers.get("content-length");
	if (declared === null || request.headers.has("transfer-encoding")) return 0;
	const length = Number(declared);
	return Number.isFinite(length) ? length : 0;
}
