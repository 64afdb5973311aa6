/**
 * `X-Token-Limit` (docs/design.md, "Token budgets"): a client's own ceiling on what one request
 * may spend of its token budget. The gateway holds the smallest of it, the client's `token_hold`
 * and what is left, and tells the origin that number; it can lower a hold, never raise one.
 */
export const TOKEN_LIMIT_HEADER = "X-Token-Limit";

/** The header's value, or an error a caller sees before anything is signed. */
export function tokenLimitValue(limit: number): string {
	if (!Number.isSafeInteger(limit) || limit < 1) throw new Error("signRequest: tokenLimit must be a whole number from 1");
	return String(limit);
}
