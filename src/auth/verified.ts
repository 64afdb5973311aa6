/** What a signature middleware hands on once a request's signature verified. */
export interface VerifiedRequest {
	scheme: "v1" | "v2";
	/** The verified client id (v1: `X-Client-Id`; v2: the signed `keyid`). */
	clientId: string;
	/** The path to forward: the URL's pathname after the `/api` alias, percent-encoding kept. */
	path: string;
	/** The query as sent (`?...` or empty), forwarded unchanged. */
	query: string;
	/** The body bytes that were hashed: the ones to forward. */
	body: Uint8Array<ArrayBuffer>;
	/** The request headers the signature covers, lowercase (v2's covered header names; none in v1). */
	coveredHeaders: readonly string[];
	/** What the replay claim is made of (docs/design.md, "Replay protection"). */
	replay: {
		/** Names this signed request among all others: the replay key after its prefix. */
		id: string;
		/** When it was signed, in epoch milliseconds as text: the key lives until this leaves the skew window. */
		signedAt: string;
	};
}

/**
/**
 * The context variables a signature middleware sets (`verified`), and what later steps ask of
 * forwarding: the claim's token reservation for a client with a budget (`reservation`: sent to
 * the origin as `X-Token-Hold` and `X-Token-Reservation`; docs/design.md, "Token budgets"), and
 * `watchAnswerEnd` when the answer's end must be seen (a `concurrent` slot is released then), so
 * the answer is piped with the total deadline (docs/design.md, "Forwarding").
 */
export type VerifiedVariables = { verified: VerifiedRequest; reservation?: { id: string; hold: number }; watchAnswerEnd?: true };
