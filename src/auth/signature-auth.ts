import type { MiddlewareHandler } from "hono";
import { gatewayError } from "../errors.ts";
import type { AuthEvents, SignatureScheme } from "../events.ts";
import type { VerifiedVariables } from "./verified.ts";

type SignatureMiddleware = MiddlewareHandler<{ Variables: VerifiedVariables }>;

export interface SignatureAuthOptions {
	/** The schemes accepted. @default ["v1", "v2"] (`SIGNATURE_SCHEMES`) */
	schemes: readonly SignatureScheme[];
	/** Verifies scheme v1 (`hmacAuth()`). */
	v1: SignatureMiddleware;
	/** Verifies scheme v2 (`httpSignatureAuth()`). */
	v2: SignatureMiddleware;
	events: Pick<AuthEvents, "outcome" | "scheme">;
}

/**
 * Chooses the signature scheme of a request (SPEC section 2b): v2 when it carries
 * `Signature-Input`, v1 otherwise. A scheme left out of `schemes` answers 401
 * `scheme_not_allowed`; a request its scheme verified is counted by scheme.
 *
 * @example
 * ```ts
 * app.use("/agent/*", signatureAuth({ schemes: ["v1", "v2"], v1: hmacAuth({ ... }), v2: httpSignatureAuth({ ... }), events }));
 * ```
 */
export const signatureAuth = (options: SignatureAuthOptions): SignatureMiddleware => {
	if (options.schemes.length === 0) throw new Error("signatureAuth: schemes must name at least one scheme");
	const allowed = new Set(options.schemes);
	const { v1, v2, events } = options;

	return async function signatureAuth(c, next) {
		const scheme: SignatureScheme = c.req.raw.headers.has("signature-input") ? "v2" : "v1";
		if (!allowed.has(scheme)) {
			events.outcome("fail", "scheme_not_allowed");
			throw gatewayError("scheme_not_allowed");
		}
		return (scheme === "v2" ? v2 : v1)(c, async () => {
			events.scheme(scheme);
			await next();
		});
	};
};
