import { canonicalString, fromHex, sha256Hex, signedPath, utf8, verifySignature } from "./crypto.ts";
import { AGENT_PATH_PATTERN, CLIENT_ID_PATTERN, CLIENT_ID_RULE, PATH_RULE, SIGNATURE_PATTERN, TIMESTAMP_PATTERN } from "./grammar.ts";
import { bodyRefusal, declaresBody, keyRefusal, readBodyWithLimit, refuse, type SchemeLimits, type SignatureScheme, skewRefusal } from "./signature-auth.ts";

/** v1 signs no header beside its own. */
const NO_HEADERS: readonly string[] = [];

/**
 * Scheme v1 (docs/design.md, "Scheme v1"): `X-Client-Id`, `X-Timestamp` and `X-Signature`,
 * an HMAC over method, path, timestamp and the body's SHA-256. Checked in the contract's
 * order: headers, grammars, body, secret, signature, clock skew. The skew comes after the
 * signature, so only signed requests reach the skew histogram.
 *
 * @example
 * ```ts
 * const v1 = schemeV1({ maxSkewMs: 300_000, maxBodyBytes: 1_048_576 });
 * const result = await v1(request, keyring, Date.now());
 * ```
 */
export const schemeV1 = (limits: SchemeLimits): SignatureScheme =>
	async function verifyV1(request, keys, now) {
		const { headers } = request;
		const clientId = headers.get("x-client-id") ?? "";
		const timestamp = headers.get("x-timestamp") ?? "";
		const signature = headers.get("x-signature") ?? "";
		if (clientId === "") return refuse("missing_headers", "X-Client-Id", "is missing");
		if (timestamp === "") return refuse("missing_headers", "X-Timestamp", "is missing");
		if (signature === "") return refuse("missing_headers", "X-Signature", "is missing");
		if (!CLIENT_ID_PATTERN.test(clientId)) return refuse("invalid_client_id", "X-Client-Id", CLIENT_ID_RULE);
		if (!TIMESTAMP_PATTERN.test(timestamp)) return refuse("invalid_timestamp", "X-Timestamp", "must be integer milliseconds since the epoch (1 to 16 digits)");
		const { pathname, search } = new URL(request.url);
		const path = signedPath(pathname);
		if (!AGENT_PATH_PATTERN.test(path)) return refuse("invalid_path", "path", PATH_RULE);

		const { method } = request;
		if (method === "GET" && declaresBody(headers)) return bodyRefusal("not_allowed", limits.maxBodyBytes);
		const body = await readBodyWithLimit(request, limits.maxBodyBytes);
		if (!body.ok) return bodyRefusal(body.reason, limits.maxBodyBytes);
		if (method === "GET" && body.bytes.byteLength > 0) return bodyRefusal("not_allowed", limits.maxBodyBytes);

		if (!keys.configured) return refuse("config_error");
		// A value outside the grammar says so: that reveals nothing about the keys.
		if (!SIGNATURE_PATTERN.test(signature)) return refuse("bad_signature", "X-Signature", "must be 64 lowercase hex characters");
		const canonical = canonicalString({ method, path, timestamp, bodySha256: await sha256Hex(body.bytes) });
		const verdict = await verifySignature(keys, clientId, fromHex(signature), utf8(canonical));
		if (!verdict.ok) return keyRefusal(verdict);

		const skewMs = Math.abs(now - Number(timestamp));
		const signed = { slot: verdict.slot, skewMs, clientId };
		if (skewMs > limits.maxSkewMs) {
			// Seconds instead of milliseconds: the most common client mistake, named as such.
			const looksLikeSeconds = Math.abs(now - Number(timestamp) * 1000) <= limits.maxSkewMs;
			const rule = looksLikeSeconds
				? "must be milliseconds since the epoch, and this one looks like seconds (see X-Server-Time)"
				: `must be within ${limits.maxSkewMs} ms of the server time (see X-Server-Time)`;
			return skewRefusal("X-Timestamp", rule, now, signed);
		}
		return {
			ok: true,
			request: { scheme: "v1", clientId, path, query: search, body: body.bytes, coveredHeaders: NO_HEADERS, replay: { id: signature, signedAt: timestamp } },
			signed,
		};
	};
