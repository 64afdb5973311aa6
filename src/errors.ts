import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** Machine codes of error answers; the auth ones are also the metrics `mode` label (SPEC section 2). */
export type AuthFailureCode =
	| "missing_headers"
	| "invalid_client_id"
	| "invalid_timestamp"
	| "invalid_path"
	| "body_not_allowed"
	| "body_too_large"
	| "invalid_body"
	| "config_error"
	| "bad_signature"
	| "clock_skew"
	| "replay"
	| "replay_store_unavailable";

export type ErrorCode =
	| AuthFailureCode
	| "not_found"
	| "method_not_allowed"
	| "unauthorized"
	| "origin_timeout"
	| "origin_unreachable"
	| "internal_error";

/** Every error answer: `{"detail", "code"}` as JSON (SPEC section 1). */
export function errorResponse(
	status: ContentfulStatusCode,
	code: ErrorCode,
	detail: string,
	headers?: Record<string, string>,
): Response {
	return new Response(JSON.stringify({ detail, code }), {
		status,
		headers: { "Content-Type": "application/json", ...headers },
	});
}

/** An `HTTPException` carrying a ready error answer, for middleware to throw. */
export function gatewayError(
	status: ContentfulStatusCode,
	code: ErrorCode,
	detail: string,
	headers?: Record<string, string>,
): HTTPException {
	return new HTTPException(status, { res: errorResponse(status, code, detail, headers), message: code });
}
