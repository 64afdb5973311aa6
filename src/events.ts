/**
 * What the request path reports as it decides: authentication, replay protection and
 * forwarding. The metrics implement these interfaces and know nothing else of the request
 * path; their label values come from the arrays here, so an outcome without a series
 * cannot be written.
 */
import type { ErrorCode } from "./errors.ts";
import type { KeyringEvents } from "./keyring/events.ts";

// The keyring's results live beside its lookup; the metrics read every label value from here.
export { KEYRING_LOOKUP_RESULTS, type KeyringLookupEvent } from "./keyring/events.ts";

/** Failure `mode`s of `agent_chat_requests_total{auth="fail"}`: the answer's code, or `unknown_client`. */
export const AUTH_FAILURES = [
	"missing_headers",
	"scheme_not_allowed",
	"invalid_signature_input",
	"invalid_client_id",
	"invalid_timestamp",
	"invalid_path",
	"body_not_allowed",
	"body_too_large",
	"invalid_body",
	"config_error",
	"keyring_unavailable",
	"bad_signature",
	"unknown_client",
	"clock_skew",
	"digest_mismatch",
	"replay",
	"replay_store_unavailable",
	// docs/design.md, "Per-client limits": a verified request refused by a limit.
	"rate_limited",
	"daily_quota_exhausted",
	"too_many_in_flight",
	// docs/design.md, "Token budgets": a verified request refused by its budget, or while budgets cannot be checked.
	"token_budget_exhausted",
	"budget_unavailable",
	"invalid_token_limit",
] as const satisfies readonly (ErrorCode | "unknown_client")[];
export type AuthFailure = (typeof AUTH_FAILURES)[number];

/** The `scheme` label of `agent_auth_scheme_total`: v1 and v2 (docs/design.md, "Scheme v1", "Scheme v2"). */
export const SIGNATURE_SCHEMES = ["v1", "v2"] as const;
export type SignatureScheme = (typeof SIGNATURE_SCHEMES)[number];

export const TEST_MODES = ["stub", "echo"] as const;
export type TestMode = (typeof TEST_MODES)[number];

/** The `auth` and `mode` labels of one decided request. */
export type AuthOutcome = ["ok", "real"] | ["bypass", TestMode] | ["fail", AuthFailure];

export interface AuthEvents {
	/** One per request that reached a decision. */
	outcome(...outcome: AuthOutcome): void;
	/** Absolute clock skew of a request whose signature verified. */
	skew(milliseconds: number): void;
	/** Which secret of a rotation list verified (0 is the newest). */
	secretSlot(slot: number): void;
	/** A request whose signature, clock and body passed, by scheme (before its replay claim). */
	scheme(scheme: SignatureScheme): void;
}

export const STORE_NAMES = ["upstash", "memory"] as const;
export type StoreName = (typeof STORE_NAMES)[number];
/** Why a store could not answer; never a replay, never a claim. */
export const STORE_FAILURES = ["error", "timeout", "full"] as const;
export type StoreFailureReason = (typeof STORE_FAILURES)[number];
/** `limited`: the limits script refused the request (docs/design.md, "Per-client limits"). */
export const STORE_CALL_OUTCOMES = ["claimed", "duplicate", "limited", ...STORE_FAILURES] as const;
export type StoreCallOutcome = (typeof STORE_CALL_OUTCOMES)[number];
export const FALLBACK_REASONS = ["error", "timeout", "breaker_open"] as const;
export type FallbackReason = (typeof FALLBACK_REASONS)[number];

export interface ReplayEvents {
	storeCall(store: StoreName, outcome: StoreCallOutcome, seconds: number): void;
	fallback(reason: FallbackReason): void;
	breakerOpened(): void;
	/** A signed request refused because its key was already claimed. */
	replayAttempt(): void;
	/**
	 * A claim made in memory during an outage, written back to Upstash, found the key
	 * already claimed by another: a replay that got through during the outage.
	 */
	outageReplay(): void;
}

export const ORIGIN_OUTCOMES = ["ok", "status_5xx", "timeout", "unreachable", "stream_cut", "stream_deadline"] as const;
export type OriginOutcome = (typeof ORIGIN_OUTCOMES)[number];

export interface OriginEvents {
	/** Once per forwarded request, when its response headers arrived or it failed. */
	response(outcome: Exclude<OriginOutcome, "stream_cut" | "stream_deadline">, seconds: number): void;
	/** A streamed answer cut: the origin went quiet for `idleMs` or broke (`idle`), or the total deadline passed. */
	streamCut(reason: "idle" | "deadline"): void;
}

/** docs/design.md, "Per-client limits" and "Token budgets": the limits that can refuse a request. */
export const LIMITS = ["rpm", "rpd", "concurrent", "daily_tokens", "monthly_tokens"] as const;
export type Limit = (typeof LIMITS)[number];

export interface LimitEvents {
	/**
	 * A verified request refused by a limit. `label` is the client id when the operator listed
	 * it as a label (`"label": true` in `CLIENT_LIMITS`), else "": never caller input otherwise.
	 */
	limitRefused(limit: Limit, label: string): void;
}

/**
 * docs/design.md, "Token budgets": tokens `held` when a request is reserved, `settled` (what the
 * origin reported, at most the hold), `expired` (a hold charged whole at its lease's end),
 * `overrun` (reported above the hold).
 */
export const TOKEN_KINDS = ["held", "settled", "expired", "overrun"] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

export interface BudgetEvents {
	/** `count` tokens of `kind` (the `kind` label of `agent_tokens_total`). */
	tokens(kind: TokenKind, count: number): void;
}

/** Every event the request path reports. */
export type GatewayEvents = AuthEvents & ReplayEvents & OriginEvents & KeyringEvents & LimitEvents & BudgetEvents;
