import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * Every error answer of the gateway: its status and the sentence for a person (docs/design.md,
 * "Routes"). The auth codes are also the metrics `mode` label. A signature refusal replaces
 * the sentence with one naming its field and rule; these are for the answers that name none.
 */
export const ERRORS = {
	missing_headers: { status: 401, detail: "X-Client-Id, X-Timestamp and X-Signature are required." },
	scheme_not_allowed: { status: 401, detail: "This gateway does not accept this signature scheme." },
	invalid_signature_input: {
		status: 400,
		detail: "Signature-Input, Signature or Content-Digest cannot be parsed or is outside this gateway's profile of RFC 9421.",
	},
	invalid_client_id: { status: 401, detail: "X-Client-Id must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'." },
	invalid_timestamp: { status: 401, detail: "X-Timestamp must be integer milliseconds since the epoch (1 to 16 digits)." },
	invalid_path: { status: 400, detail: "The path is not an agent path this gateway signs." },
	body_not_allowed: { status: 400, detail: "A GET request must not have a body." },
	body_too_large: { status: 413, detail: "The request body is larger than this gateway accepts." },
	invalid_body: { status: 400, detail: "The request body could not be read completely." },
	config_error: { status: 500, detail: "The gateway has no signing secret configured." },
	keyring_unavailable: { status: 503, detail: "The gateway cannot reach its keyring; try again shortly." },
	bad_signature: { status: 403, detail: "The request signature is not valid." },
	clock_skew: { status: 408, detail: "X-Timestamp is too far from the server time; see X-Server-Time." },
	digest_mismatch: { status: 400, detail: "The request body does not match its Content-Digest." },
	replay: { status: 409, detail: "This signed request was already received (and answered once); sign every request anew, retries too." },
	replay_store_unavailable: { status: 503, detail: "Replay protection is unavailable; try again shortly." },
	rate_limited: { status: 429, detail: "This client sent more requests in the last 60 seconds than it may; sign anew after Retry-After." },
	daily_quota_exhausted: { status: 429, detail: "This client used its requests for this UTC day; sign anew after Retry-After." },
	too_many_in_flight: { status: 429, detail: "This client has as many requests in flight as it may; sign anew after Retry-After." },
	token_budget_exhausted: { status: 429, detail: "This client used its token budget for this window; sign anew after Retry-After." },
	budget_unavailable: { status: 503, detail: "Token budgets cannot be checked right now; try again shortly." },
	invalid_token_limit: { status: 400, detail: "X-Token-Limit must be a whole number of tokens from 1." },
	invalid_usage_report: { status: 400, detail: "A usage report is a JSON object: {\"reservation\": \"<X-Token-Reservation>\", \"tokens\": <whole number>}." },
	reservation_unknown: { status: 404, detail: "No such token reservation: unknown, another's, or its lease ended and it was charged." },
	reservation_settled: { status: 409, detail: "This token reservation was settled already: the first report counts." },
	reservation_expired: { status: 410, detail: "This token reservation's lease ended: it is charged its whole hold." },
	not_found: { status: 404, detail: "No such route." },
	method_not_allowed: { status: 405, detail: "Agent routes take GET or POST." },
	unauthorized: { status: 401, detail: "A valid metrics bearer token is required." },
	origin_timeout: { status: 504, detail: "The agent backend did not answer in time." },
	origin_unreachable: { status: 502, detail: "The agent backend could not be reached." },
	internal_error: { status: 500, detail: "The gateway failed to handle this request." },
} as const satisfies Record<string, { status: ContentfulStatusCode; detail: string }>;

export type ErrorCode = keyof typeof ERRORS;

export interface ErrorOptions {
	/** Replaces the catalogue's sentence where the answer can say more (never a secret). */
	detail?: string;
	headers?: Record<string, string>;
}

/** Every error answer: `{"detail", "code"}` as JSON (docs/design.md, "Routes"). */
export function errorResponse(code: ErrorCode, options: ErrorOptions = {}): Response {
	const { status, detail } = ERRORS[code];
	return new Response(JSON.stringify({ detail: options.detail ?? detail, code }), {
		status,
		headers: { "Content-Type": "application/json", ...options.headers },
	});
}

/** An `HTTPException` carrying a ready error answer: the one way a route or middleware fails a request. */
export function gatewayError(code: ErrorCode, options: ErrorOptions = {}): HTTPException {
	return new HTTPException(ERRORS[code].status, { res: errorResponse(code, options), message: code });
}
