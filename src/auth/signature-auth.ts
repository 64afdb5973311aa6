import type { MiddlewareHandler } from "hono";
import { gatewayError } from "../errors.ts";
import type { AuthEvents, SignatureScheme as SchemeName } from "../events.ts";
import { type Logger, LogThrottle } from "../log.ts";
import type { KeySource } from "./keyring.ts";
import { refusalDetail, type SignatureScheme, type VerifiedVariables } from "./scheme.ts";
import { schemeV1 } from "./scheme-v1.ts";
import { schemeV2 } from "./scheme-v2.ts";

export interface SignatureAuthOptions {
	/** Where each client's keys come from: the `Keyring` of `HMAC_SECRET`/`HMAC_CLIENTS`, or another `KeySource`. */
	keys: KeySource;
	/** The schemes accepted (`SIGNATURE_SCHEMES`); a request in another gets 401 `scheme_not_allowed`. */
	schemes: readonly SchemeName[];
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
 *   signatureAuth({ keys: new Keyring(config.auth), schemes: ["v1", "v2"], maxSkewMs: 300_000, maxBodyBytes: 1_048_576, events, log }),
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
	const verifiers: Record<SchemeName, SignatureScheme> = { v1: schemeV1(limits), v2: schemeV2(limits) };
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
			events.secretSlot(result.signed.slot);
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
