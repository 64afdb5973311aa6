/**
 * The signature check (docs/design.md, "A signed request's way"): the middleware, and what
 * every scheme shares. A scheme is a plain function from a request, the keys and the clock to
 * `Verified` or `Refusal`, with no framework in it; `signatureAuth()` picks one, counts its
 * outcome and renders a refusal as the answer. The schemes (scheme-v1.ts, scheme-v2.ts) build
 * their refusals and read the body with the helpers below, so the middleware is handed them
 * (`verifiers`) rather than importing them: no import circle.
 */
import type { MiddlewareHandler } from "hono";
import { type ErrorCode, gatewayError } from "../errors.ts";
import type { AuthEvents, AuthFailure, SignatureScheme as SchemeName } from "../events.ts";
import { type Logger, LogThrottle } from "../log.ts";
import type { KeySource, KeyVerdict } from "./crypto.ts";
import type { VerifiedRequest, VerifiedVariables } from "./verified.ts";

export type { VerifiedRequest, VerifiedVariables } from "./verified.ts";

export interface SignatureAuthOptions {
	/** Where each client's keys come from: the `Keyring` of `HMAC_SECRET`/`HMAC_CLIENTS`, or another `KeySource`. */
	keys: KeySource;
	/** The schemes accepted (`SIGNATURE_SCHEMES`); a request in another gets 401 `scheme_not_allowed`. */
	schemes: readonly SchemeName[];
	/** Each scheme's verifier, made with the limits below: `{ v1: schemeV1, v2: schemeV2 }`. */
	verifiers: Record<SchemeName, (limits: SchemeLimits) => SignatureScheme>;
	/** Largest accepted `abs(now - signed time)` in milliseconds (`HMAC_MAX_SKEW_MS`). */
	maxSkewMs: number;
	/** Largest accepted body in bytes (`MAX_BODY_BYTES`). */
	maxBodyBytes: number;
	events: AuthEvents;
	log: Logger;
	/** @default Date.now */
	now?: () => number;
}

/**
 * Verifies a request's signature (docs/design.md, "A signed request's way"): scheme v2 when
 * it carries `Signature-Input`, v1 otherwise. It counts the outcome once (a refusal by its
 * `mode`, a verified request by scheme, the secret slot and the clock skew of every signed
 * one), answers a refusal with its code and a detail naming the field and the rule, and hands
 * a verified request on as `c.var.verified`. It claims no replay key: that is
 * `replayProtection()`, after it.
 *
 * @example
 * ```ts
 * const app = new Hono<{ Variables: VerifiedVariables }>();
 * app.post(
 *   "/agent/*",
 *   signatureAuth({ keys: new Keyring(config.auth), schemes: ["v1", "v2"], verifiers: { v1: schemeV1, v2: schemeV2 }, maxSkewMs: 300_000, maxBodyBytes: 1_048_576, events, log }),
 *   (c) => c.json({ client: c.var.verified.clientId }),
 * );
 * ```
 */
export const signatureAuth = (options: SignatureAuthOptions): MiddlewareHandler<{ Variables: VerifiedVariables }> => {
	if (options.schemes.length === 0) throw new Error("signatureAuth: schemes must name at least one scheme");
	if (!(options.maxSkewMs > 0)) throw new Error("signatureAuth: maxSkewMs must be positive");
	if (!(options.maxBodyBytes > 0)) throw new Error("signatureAuth: maxBodyBytes must be positive");
	const { keys, events, log } = options;
	const now = options.now ?? Date.now;
	const limits = { maxSkewMs: options.maxSkewMs, maxBodyBytes: options.maxBodyBytes };
	const verifiers: Record<SchemeName, SignatureScheme> = { v1: options.verifiers.v1(limits), v2: options.verifiers.v2(limits) };
	const allowed = new Set(options.schemes);
	const throttle = new LogThrottle(10_000, now);

	return async function signatureAuth(c, next) {
		const request = c.req.raw;
		const scheme: SchemeName = request.headers.has("signature-input") ? "v2" : "v1";
		if (!allowed.has(scheme)) {
			events.outcome("fail", "scheme_not_allowed");
			const other = scheme === "v1" ? "v2 (Signature-Input)" : "v1 (X-Signature)";
			throw gatewayError("scheme_not_allowed", { detail: `scheme ${scheme} is not accepted here: sign with scheme ${other}` });
		}

		const result = await verifiers[scheme](request, keys, now());
		if (result.signed !== undefined) {
			events.secretSlot(result.signed.slot, result.signed.clientId);
			events.skew(result.signed.skewMs);
		}
		if (!result.ok) {
			events.outcome("fail", result.mode ?? result.code);
			if (result.code === "invalid_client_id" && throttle.admit("invalid_client_id") !== null) {
				// v1's id is logged by its length only; v2's keyid is not even that.
				log.warn("invalid client id", scheme === "v1" ? { scheme, length: request.headers.get("x-client-id")?.length } : { scheme });
			}
			throw gatewayError(result.code, { detail: refusalDetail(result), headers: result.headers });
		}
		events.scheme(scheme);
		c.set("verified", result.request);
		await next();
	};
};

/** What the metrics learn once a signature verified: which secret did it, and the clock skew. */
export interface SignedFacts {
	/** Position of the secret that verified: 0 is the newest. */
	slot: number;
	/** `abs(now - signed time)` in milliseconds. */
	skewMs: number;
	/** The client id the signature verified for. */
	clientId: string;
}

export interface Verified {
	ok: true;
	request: VerifiedRequest;
	signed: SignedFacts;
}

/** The answer codes a scheme can refuse with (each also a metrics `mode`). */
export type RefusalCode = Exclude<AuthFailure, "unknown_client" | "scheme_not_allowed" | "replay" | "replay_store_unavailable"> &
	ErrorCode;

/**
 * Why a request was refused. The answer's `detail` is `<field> <rule>` (`Signature-Input must
 * cover "@query"`), in the names of the scheme the request used; without them, the
 * catalogue's sentence. Never a secret, a signature or a value the client sent.
 */
export interface Refusal {
	ok: false;
	code: RefusalCode;
	field?: string;
	rule?: string;
	/** The metrics `mode` when it differs from `code` (an unknown client answers as `bad_signature`). */
	mode?: "unknown_client";
	headers?: Record<string, string>;
	/** Set when the signature verified before the refusal (the clock, the body): still counted. */
	signed?: SignedFacts;
}

/** Verifies one scheme's signature; a scheme never throws for a bad request, it refuses. */
export type SignatureScheme = (request: Request, keys: KeySource, now: number) => Promise<Verified | Refusal>;

/** The limits both schemes apply. */
export interface SchemeLimits {
	/** Largest accepted `abs(now - signed time)` in milliseconds (`HMAC_MAX_SKEW_MS`). */
	maxSkewMs: number;
	/** Largest accepted body in bytes (`MAX_BODY_BYTES`). */
	maxBodyBytes: number;
}

/** A refusal with its code and, where the client can fix something, the field and the rule it broke. */
export function refuse(code: RefusalCode, field?: string, rule?: string): Refusal {
	return { ok: false, code, field, rule };
}

/** A body that cannot be taken: on a GET, over the limit, or cut off while it was read. */
export function bodyRefusal(reason: "not_allowed" | "too_large" | "incomplete", maxBodyBytes: number): Refusal {
	if (reason === "not_allowed") return refuse("body_not_allowed", "body", "must be empty on a GET");
	if (reason === "too_large") return refuse("body_too_large", "body", `must be at most ${maxBodyBytes} bytes`);
	return refuse("invalid_body", "body", "could not be read to its end");
}

/**
 * The refusal of a signature that did not verify. An unknown client and a bad HMAC get the
 * same answer, byte for byte; only the metrics `mode` tells them apart.
 */
export function keyRefusal(verdict: Exclude<KeyVerdict, { ok: true }>): Refusal {
	if (verdict.reason === "unavailable") return refuse("keyring_unavailable");
	return verdict.reason === "unknown_client" ? { ...refuse("bad_signature"), mode: "unknown_client" } : refuse("bad_signature");
}

/** A clock refusal: 408 with the server's time, so the client can correct its clock. */
export function skewRefusal(field: string, rule: string, now: number, signed: SignedFacts): Refusal {
	return { ...refuse("clock_skew", field, rule), headers: { "X-Server-Time": String(now) }, signed };
}

/** `refusal.field refusal.rule` when it names them, else the catalogue's sentence. */
export function refusalDetail(refusal: Pick<Refusal, "field" | "rule">): string | undefined {
	return refusal.field !== undefined && refusal.rule !== undefined ? `${refusal.field} ${refusal.rule}` : undefined;
}

/** A body read within its limit, or why it could not be. */
export type BodyReadResult =
	| { ok: true; bytes: Uint8Array<ArrayBuffer> }
	| { ok: false; reason: "too_large" | "incomplete" };

const EMPTY = new Uint8Array(0);

/**
 * The body length a request declares, or null when it must be counted: Content-Length is
 * trusted only without Transfer-Encoding (as Hono's body-limit does).
 */
export function declaredLength(headers: Pick<Headers, "get" | "has">): number | null {
	const declared = headers.get("content-length");
	if (declared === null || headers.has("transfer-encoding")) return null;
	const length = Number(declared);
	return Number.isFinite(length) && length >= 0 ? length : null;
}

/** True when a request says it carries a body: a Transfer-Encoding, or a Content-Length above 0. */
export function declaresBody(headers: Pick<Headers, "get" | "has">): boolean {
	return headers.has("transfer-encoding") || (declaredLength(headers) ?? 0) > 0;
}

/**
 * Reads a request body to bytes, refusing more than `maxBytes`: a declared length over the
 * limit without reading, otherwise the stream is counted and cancelled as soon as it passes it.
 */
export async function readBodyWithLimit(request: Request, maxBytes: number): Promise<BodyReadResult> {
	const length = declaredLength(request.headers);
	if (length !== null) {
		if (length > maxBytes) return { ok: false, reason: "too_large" };
		// A declared length within the limit: the runtime's framing delivers exactly that many
		// bytes, so one native read is enough (cheaper than pumping the stream in JS).
		if (Number.isInteger(length) && request.body !== null) {
			try {
				return { ok: true, bytes: new Uint8Array(await request.arrayBuffer()) };
			} catch {
				return { ok: false, reason: "incomplete" };
			}
		}
	}
	if (request.body === null) return { ok: true, bytes: EMPTY };

	const chunks: Uint8Array[] = [];
	let total = 0;
	try {
		const reader = request.body.getReader();
		for (;;) {
			const { done, value } = await reader.read();
			if (done) break;
			total += value.byteLength;
			if (total > maxBytes) {
				await reader.cancel().catch(() => {});
				return { ok: false, reason: "too_large" };
			}
			chunks.push(value);
		}
	} catch {
		return { ok: false, reason: "incomplete" };
	}
	if (chunks.length === 1) return { ok: true, bytes: chunks[0] as Uint8Array<ArrayBuffer> };
	const bytes = new Uint8Array(total);
	let offset = 0;
	for (const chunk of chunks) {
		bytes.set(chunk, offset);
		offset += chunk.byteLength;
	}
	return { ok: true, bytes };
}
