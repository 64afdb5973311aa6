import type { MiddlewareHandler } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { GatewayEnv } from "../context.ts";
import { gatewayError, type AuthFailureCode } from "../errors.ts";
import type { Logger } from "../log.ts";
import { LogThrottle } from "../log.ts";
import type { ReplayGuard } from "../replay/guard.ts";
import { readBodyWithLimit } from "./body.ts";
import { canonicalString, sha256Hex } from "./crypto.ts";
import type { AuthEvents } from "./events.ts";
import { AGENT_PATH_PATTERN, CLIENT_ID_PATTERN, SIGNATURE_PATTERN, TIMESTAMP_PATTERN } from "./grammar.ts";
import type { Keyring } from "./keyring.ts";

export interface HmacAuthOptions {
	keyring: Keyring;
	/** Largest accepted `abs(now - X-Timestamp)`. @default 300000 (`HMAC_MAX_SKEW_MS`) */
	maxSkewMs: number;
	/** Largest accepted body. @default 1048576 (`MAX_BODY_BYTES`) */
	maxBodyBytes: number;
	replay: Pick<ReplayGuard, "claim">;
	events: AuthEvents;
	log: Logger;
	now?: () => number;
}

const DETAILS: Record<AuthFailureCode, string> = {
	missing_headers: "X-Client-Id, X-Timestamp and X-Signature are required.",
	invalid_client_id: "X-Client-Id must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'.",
	invalid_timestamp: "X-Timestamp must be integer milliseconds since the epoch (1 to 16 digits).",
	invalid_path: "The path is not an agent path this gateway signs.",
	body_not_allowed: "A GET request must not have a body.",
	body_too_large: "The request body is larger than this gateway accepts.",
	invalid_body: "The request body could not be read completely.",
	config_error: "The gateway has no signing secret configured.",
	bad_signature: "The request signature is not valid.",
	clock_skew: "X-Timestamp is too far from the server time; see X-Server-Time.",
	replay: "This signed request was already accepted; sign every request and retry anew.",
	replay_store_unavailable: "Replay protection is unavailable; try again shortly.",
};

const STATUS: Record<AuthFailureCode, ContentfulStatusCode> = {
	missing_headers: 401,
	invalid_client_id: 401,
	invalid_timestamp: 401,
	invalid_path: 400,
	body_not_allowed: 400,
	body_too_large: 413,
	invalid_body: 400,
	config_error: 500,
	bad_signature: 403,
	clock_skew: 408,
	replay: 409,
	replay_store_unavailable: 503,
};

/**
 * Verifies scheme v1 HMAC signatures (SPEC section 2), in the contract's order, then
 * claims the replay key. The path must be set on the context (`c.set("path", ...)`)
 * after the `/api` alias; a passing request gets `c.var.signed`.
 *
 * @example
 * ```ts
 * app.use("/agent/*", hmacAuth({ keyring, maxSkewMs: 300_000, maxBodyBytes: 1_048_576, replay, events, log }));
 * ```
 */
export const hmacAuth = (options: HmacAuthOptions): MiddlewareHandler<GatewayEnv> => {
	if (!(options.maxSkewMs > 0)) throw new Error("hmacAuth: maxSkewMs must be positive");
	if (!(options.maxBodyBytes > 0)) throw new Error("hmacAuth: maxBodyBytes must be positive");
	const { keyring, replay, events, log } = options;
	const now = options.now ?? Date.now;
	const throttle = new LogThrottle(10_000, now);

	const reject = (code: AuthFailureCode, metricsMode: string = code, headers?: Record<string, string>) => {
		events.outcome("fail", metricsMode);
		return gatewayError(STATUS[code], code, DETAILS[code], headers);
	};

	return async function hmacAuth(c, next) {
		const request = c.req.raw;
		const clientId = request.headers.get("x-client-id") ?? "";
		const timestamp = request.headers.get("x-timestamp") ?? "";
		const signature = request.headers.get("x-signature") ?? "";

		if (clientId === "" || timestamp === "" || signature === "") throw reject("missing_headers");
		if (!CLIENT_ID_PATTERN.test(clientId)) {
			if (throttle.admit("invalid_client_id") !== null) {
				log.warn("invalid client id", { length: clientId.length });
			}
			throw reject("invalid_client_id");
		}
		if (!TIMESTAMP_PATTERN.test(timestamp)) throw reject("invalid_timestamp");
		const path = c.var.path;
		if (!AGENT_PATH_PATTERN.test(path)) throw reject("invalid_path");

		const method = request.method;
		if (method === "GET" && declaresBody(request)) throw reject("body_not_allowed");
		const body = await readBodyWithLimit(request, options.maxBodyBytes);
		if (!body.ok) throw reject(body.reason === "too_large" ? "body_too_large" : "invalid_body");
		if (method === "GET" && body.bytes.byteLength > 0) throw reject("body_not_allowed");

		if (!keyring.configured) throw reject("config_error");
		if (!SIGNATURE_PATTERN.test(signature)) throw reject("bad_signature");
		const canonical = canonicalString({ method, path, timestamp, bodySha256: await sha256Hex(body.bytes) });
		const verified = await keyring.verify(clientId, signature, canonical);
		if (!verified.ok) throw reject("bad_signature", verified.reason);
		events.secretSlot(verified.slot);

		// Skew after the signature: only signed requests reach the histogram, and a
		// request outside the window costs no Upstash call.
		const serverTime = now();
		const skew = Math.abs(serverTime - Number(timestamp));
		events.skew(skew);
		if (skew > options.maxSkewMs) throw reject("clock_skew", "clock_skew", { "X-Server-Time": String(serverTime) });

		const decision = await replay.claim(signature, clientId, timestamp, { colo: coloOf(request) });
		if (decision.status === "replay") {
			events.replayAttempt();
			throw reject("replay", "replay", { "X-Server-Time": String(now()) });
		}
		if (decision.status === "unavailable") throw reject("replay_store_unavailable");

		events.outcome("ok", "real");
		c.set("signed", { clientId, path, body: body.bytes });
		await next();
	};
};

function declaresBody(request: Request): boolean {
	const length = request.headers.get("content-length");
	return request.headers.has("transfer-encoding") || (length !== null && length !== "0");
}

function coloOf(request: Request): string | undefined {
	const colo = (request as { cf?: { colo?: unknown } }).cf?.colo;
	return typeof colo === "string" ? colo : undefined;
}
