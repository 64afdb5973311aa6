/**
 * What a signature scheme is: a plain function from a request, the keys and the clock to
 * `Verified` or `Refusal`, with no framework in it (docs/design.md, "A signed request's way").
 * `signatureAuth()` picks one, counts its outcome and renders a refusal as the answer.
 */
import type { ErrorCode } from "../errors.ts";
import type { AuthFailure } from "../events.ts";
import type { KeySource, KeyVerdict } from "./keyring.ts";
import type { VerifiedRequest } from "./verified.ts";

export type { VerifiedRequest, VerifiedVariables } from "./verified.ts";

/** What the metrics learn once a signature verified: which secret did it, and the clock skew. */
export interface SignedFacts {
	/** Position of the secret that verified: 0 is the newest. */
	slot: number;
	/** `abs(now - signed time)` in milliseconds. */
	skewMs: number;
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
