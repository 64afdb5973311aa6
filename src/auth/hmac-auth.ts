import type { MiddlewareHandler } from "hono";
import type { AuthEvents } from "../events.ts";
import type { Logger } from "../log.ts";
import { LogThrottle } from "../log.ts";
import { authFailures } from "./failures.ts";
import { readBodyWithLimit } from "./body.ts";
import { canonicalString, sha256Hex } from "./crypto.ts";
import { AGENT_PATH_PATTERN, CLIENT_ID_PATTERN, SIGNATURE_PATTERN, signedPath, TIMESTAMP_PATTERN } from "./grammar.ts";
import type { Keyring } from "./keyring.ts";
import type { VerifiedVariables } from "./verified.ts";

export type { VerifiedRequest, VerifiedVariables } from "./verified.ts";

export interface HmacAuthOptions {
	/** The secrets, imported once per isolate. */
	keyring: Pick<Keyring, "configured" | "verify">;
	/** Largest accepted `abs(now - X-Timestamp)`. @default 300000 (`HMAC_MAX_SKEW_MS`) */
	maxSkewMs: number;
	/** Largest accepted body. @default 1048576 (`MAX_BODY_BYTES`) */
	maxBodyBytes: number;
	events: AuthEvents;
	log: Logger;
	/** @default Date.now */
	now?: () => number;
}

/**
 * Verifies scheme v1 HMAC signatures (SPEC section 2) in the contract's order: headers,
 * grammars, body, secret, signature, clock skew. It claims no replay key (that is
 * `replayProtection()`, after it); a passing request gets `c.var.verified`.
 *
 * @example
 * ```ts
 * const app = new Hono<{ Variables: VerifiedVariables }>();
 * app.post("/agent/*", hmacAuth({ keyring: new Keyring(config.auth), maxSkewMs: 300_000, maxBodyBytes: 1_048_576, events, log }), (c) =>
 *   c.json({ client: c.var.verified.clientId }),
 * );
 * ```
 */
export const hmacAuth = (options: HmacAuthOptions): MiddlewareHandler<{ Variables: VerifiedVariables }> => {
	if (!(options.maxSkewMs > 0)) throw new Error("hmacAuth: maxSkewMs must be positive");
	if (!(options.maxBodyBytes > 0)) throw new Error("hmacAuth: maxBodyBytes must be positive");
	const { keyring, events, log } = options;
	const now = options.now ?? Date.now;
	const throttle = new LogThrottle(10_000, now);

	const { reject, fail } = authFailures(events);

	return async function hmacAuth(c, next) {
		const request = c.req.raw;
		const clientId = request.headers.get("x-client-id") ?? "";
		const timestamp = request.headers.get("x-timestamp") ?? "";
		const signature = request.headers.get("x-signature") ?? "";

		if (clientId === "" || timestamp === "" || signature === "") throw fail("missing_headers");
		if (!CLIENT_ID_PATTERN.test(clientId)) {
			if (throttle.admit("invalid_client_id") !== null) log.warn("invalid client id", { length: clientId.length });
			throw fail("invalid_client_id");
		}
		if (!TIMESTAMP_PATTERN.test(timestamp)) throw fail("invalid_timestamp");
		const { pathname, search } = new URL(request.url);
		const path = signedPath(pathname);
		if (!AGENT_PATH_PATTERN.test(path)) throw fail("invalid_path");

		const method = request.method;
		if (method === "GET" && declaresBody(request)) throw fail("body_not_allowed");
		const body = await readBodyWithLimit(request, options.maxBodyBytes);
		if (!body.ok) throw fail(body.reason === "too_large" ? "body_too_large" : "invalid_body");
		if (method === "GET" && body.bytes.byteLength > 0) throw fail("body_not_allowed");

		if (!keyring.configured) throw fail("config_error");
		if (!SIGNATURE_PATTERN.test(signature)) throw fail("bad_signature");
		const canonical = canonicalString({ method, path, timestamp, bodySha256: await sha256Hex(body.bytes) });
		const verified = await keyring.verify(clientId, signature, canonical);
		// An unknown client gets the same answer as a bad signature; only the metrics tell them apart.
		if (!verified.ok) throw reject(verified.reason, ["bad_signature"]);
		events.secretSlot(verified.slot);

		// Skew after the signature: only signed requests reach the histogram, and a
		// request outside the window costs no replay claim.
		const serverTime = now();
		const skew = Math.abs(serverTime - Number(timestamp));
		events.skew(skew);
		if (skew > options.maxSkewMs) {
			const detail = looksLikeSeconds(timestamp, serverTime, options.maxSkewMs)
				? "X-Timestamp is milliseconds since the epoch, and this one looks like seconds; see X-Server-Time."
				: undefined;
			throw reject("clock_skew", ["clock_skew", { detail, headers: { "X-Server-Time": String(serverTime) } }]);
		}

		c.set("verified", {
			scheme: "v1",
			clientId,
			path,
			query: search,
			body: body.bytes,
			replay: { id: signature, signedAt: timestamp },
		});
		await next();
	};
};

function declaresBody(request: Request): boolean {
	const length = request.headers.get("content-length");
	return request.headers.has("transfer-encoding") || (length !== null && length !== "0");
}

/** A timestamp that would be inside the window if it were seconds: the client's most common mistake. */
function looksLikeSeconds(timestamp: string, serverTime: number, maxSkewMs: number): boolean {
	return Math.abs(serverTime - Number(timestamp) * 1000) <= maxSkewMs;
}
