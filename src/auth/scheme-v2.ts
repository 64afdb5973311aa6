import { signedPath, utf8, verifySignature } from "./crypto.ts";
import { signatureBase } from "./http-signature-base.ts";
import { equalBytes, sha256 } from "./http-signature-crypto.ts";
import { parseSignatureFields } from "./http-signature-fields.ts";
import { AGENT_PATH_PATTERN, PATH_RULE } from "./grammar.ts";
import { bodyRefusal, declaredLength, declaresBody, keyRefusal, readBodyWithLimit, refuse, type SchemeLimits, type SignatureScheme, skewRefusal } from "./signature-auth.ts";

const HMAC_SHA256_BYTES = 32;

/**
 * Scheme v2 (docs/design.md, "Scheme v2"): RFC 9421 HTTP Message Signatures, hmac-sha256,
 * with RFC 9530 `Content-Digest`. Checked in the contract's order: fields and profile, path,
 * declared body, secret, signature, clock, and only then the body against its digest, so a
 * forged request is refused before its body is read.
 *
 * @example
 * ```ts
 * const v2 = schemeV2({ maxSkewMs: 300_000, maxBodyBytes: 1_048_576 });
 * const result = await v2(request, keyring, Date.now());
 * ```
 */
export const schemeV2 = (limits: SchemeLimits): SignatureScheme =>
	async function verifyV2(request, keys, now) {
		const { method, headers } = request;
		const parsed = parseSignatureFields(request);
		if (!parsed.ok) return parsed;
		const { input, signature, digest } = parsed.fields;
		const url = new URL(request.url);
		const path = signedPath(url.pathname);
		if (!AGENT_PATH_PATTERN.test(path)) return refuse("invalid_path", "path", PATH_RULE);

		// What the body declares; it is not read yet.
		if (method === "GET" && declaresBody(headers)) return bodyRefusal("not_allowed", limits.maxBodyBytes);
		if ((declaredLength(headers) ?? 0) > limits.maxBodyBytes) return bodyRefusal("too_large", limits.maxBodyBytes);

		// The signature over the base, before any byte of the body.
		if (!keys.configured) return refuse("config_error");
		if (signature.byteLength !== HMAC_SHA256_BYTES) return refuse("bad_signature", "Signature", "must be 32 bytes (an HMAC-SHA256)");
		const base = signatureBase(input.components, input.params, {
			method,
			authority: url.host,
			// v2 signs the path as sent: `/api/agent/...` with its `/api`.
			path: url.pathname,
			query: url.search,
			header: (name) => headers.get(name),
		});
		const verdict = await verifySignature(keys, input.keyid, signature, utf8(base));
		if (!verdict.ok) return keyRefusal(verdict);

		// The clock, after the signature (as v1), so only signed requests reach the histogram.
		const skewMs = Math.abs(now - input.created * 1000);
		const signed = { slot: verdict.slot, skewMs, clientId: input.keyid };
		if (skewMs > limits.maxSkewMs) {
			const looksLikeMilliseconds = Math.abs(now - input.created) <= limits.maxSkewMs;
			const rule = looksLikeMilliseconds
				? "must be seconds since the epoch, and this one looks like milliseconds (see X-Server-Time)"
				: `must be within ${limits.maxSkewMs / 1000} s of the server time (see X-Server-Time)`;
			return skewRefusal("created", rule, now, signed);
		}
		if (input.expires !== null && now > input.expires * 1000) return skewRefusal("expires", "has passed (see X-Server-Time)", now, signed);

		// The body, within the limit, against the signed digest (an empty body too: one stripped in transit).
		const body = await readBodyWithLimit(request, limits.maxBodyBytes);
		if (!body.ok) return { ...bodyRefusal(body.reason, limits.maxBodyBytes), signed };
		if (method === "GET" && body.bytes.byteLength > 0) return { ...bodyRefusal("not_allowed", limits.maxBodyBytes), signed };
		if (digest !== null && !equalBytes(await sha256(body.bytes), digest)) {
			return { ...refuse("digest_mismatch", "Content-Digest", "must hold the sha-256 of the body as received"), signed };
		}

		return {
			ok: true,
			request: {
				scheme: "v2",
				clientId: input.keyid,
				path,
				query: url.search,
				body: body.bytes,
				coveredHeaders: input.components.filter((component) => !component.startsWith("@")),
				replay: { id: `v2:${input.keyid}:${input.nonce}`, signedAt: String(input.created * 1000) },
			},
			signed,
		};
	};
