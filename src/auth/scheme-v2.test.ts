import { describe, expect, it } from "vitest";
import { signedV2Init, type SignedV2Init } from "../../test/fixtures/signed.ts";
import { Keyring } from "./crypto.ts";
import { schemeV2 } from "./scheme-v2.ts";

const SECRET = "v2-scheme-test-secret-0123456789ab";
const NOW = 1_764_158_400_000;
const CREATED = NOW / 1000;
const BODY = '{"messages":[]}';
const keyring = new Keyring({ sharedSecrets: [SECRET], clientSecrets: new Map() });
const v2 = schemeV2({ maxSkewMs: 300_000, maxBodyBytes: 1_048_576 });

/** A v2 request signed at NOW; `url` is where it is sent when that differs from what was signed. */
async function signed(init: SignedV2Init & { url?: string } = {}): Promise<Request> {
	const { url, ...signing } = init;
	const { target, init: requestInit } = await signedV2Init(
		{ body: BODY, ...signing },
		{ clientId: "web-app", secret: SECRET, created: CREATED, nonce: "nonce-0123456789abcdef" },
	);
	return new Request(url ?? `https://gateway.test${target}`, requestInit);
}

describe("schemeV2: a plain verifier", () => {
	it("accepts a signed POST and returns what it verified, with the slot and the skew", async () => {
		expect(await v2(await signed(), keyring, NOW + 1500)).toEqual({
			ok: true,
			request: {
				scheme: "v2",
				clientId: "web-app",
				path: "/agent/chat",
				query: "",
				body: new TextEncoder().encode(BODY),
				coveredHeaders: ["content-digest"],
				replay: { id: "v2:web-app:nonce-0123456789abcdef", signedAt: String(NOW) },
			},
			signed: { slot: 0, skewMs: 1500, clientId: "web-app" },
		});
	});

	it("accepts a GET with a query, and the /api alias signed as sent", async () => {
		const get = await v2(await signed({ method: "GET", path: "/agent/stream", query: "?prompt=a%20b&x=1" }), keyring, NOW);
		expect(get).toMatchObject({ ok: true, request: { path: "/agent/stream", query: "?prompt=a%20b&x=1" } });
		expect(await v2(await signed({ path: "/api/agent/chat" }), keyring, NOW)).toMatchObject({ ok: true, request: { path: "/agent/chat" } });
	});

	it("@authority is the host with its port: signed for gateway.test:8443 and sent there, accepted; sent to another port, 403", async () => {
		const authority = "gateway.test:8443";
		expect(await v2(await signed({ authority, url: "https://gateway.test:8443/agent/chat" }), keyring, NOW)).toMatchObject({ ok: true });
		expect(await v2(await signed({ authority, url: "https://gateway.test:9443/agent/chat" }), keyring, NOW)).toMatchObject({ ok: false, code: "bad_signature" });
	});

	it("400 digest_mismatch for a GET whose covered Content-Digest is not the empty body's", async () => {
		const digest = `sha-256=:${"A".repeat(43)}=:`;
		const result = await v2(await signed({ method: "GET", path: "/agent/stream", coveredHeaders: { "content-digest": digest } }), keyring, NOW);
		expect(result).toMatchObject({ ok: false, code: "digest_mismatch" });
	});

	it("403 for the /api alias signed without its /api (v2 signs the path as sent)", async () => {
		expect(await v2(await signed({ url: "https://gateway.test/api/agent/chat" }), keyring, NOW)).toMatchObject({ ok: false, code: "bad_signature" });
	});

	it.each([
		["no Signature", { signature: null }, "Signature is missing"],
		["an empty Signature", { signature: "" }, "Signature is missing"],
		["an empty Signature-Input", { "signature-input": "" }, "Signature-Input is missing"],
		["a POST without Content-Digest", { "content-digest": null }, "Content-Digest is missing (required on a POST)"],
	])("401 missing_headers for %s", async (_name, headers, detail) => {
		const result = await v2(await signed({ headers }), keyring, NOW);
		expect(result).toMatchObject({ ok: false, code: "missing_headers" });
		expect(!result.ok && `${result.field} ${result.rule}`).toBe(detail);
	});

	it("400 invalid_signature_input before 401 invalid_client_id, and that before invalid_path", async () => {
		const codeOf = async (init: SignedV2Init) => {
			const result = await v2(await signed(init), keyring, NOW);
			return result.ok ? "ok" : result.code;
		};
		expect(await codeOf({ clientId: "bad id", path: "/agent/x%2F", headers: { signature: "sig1=x" } })).toBe("invalid_signature_input");
		expect(await codeOf({ clientId: "bad id", path: "/agent/x%2F" })).toBe("invalid_client_id");
		expect(await codeOf({ path: "/agent/x%2F" })).toBe("invalid_path");
		expect(await codeOf({ path: "/agent" })).toBe("invalid_path");
	});

	it("400 body_not_allowed for a GET declaring a body, before the signature", async () => {
		const request = await signed({ method: "GET", path: "/agent/stream", headers: { signature: "sig1=:AAAA:", "content-length": "1" } });
		const withBody = new Request(request.url, { method: "POST", headers: request.headers, body: "x" });
		const get = new Proxy(withBody, { get: (target, prop) => (prop === "method" ? "GET" : Reflect.get(target, prop, target)) });
		expect(await v2(get as Request, keyring, NOW)).toEqual({ ok: false, code: "body_not_allowed", field: "body", rule: "must be empty on a GET" });
	});

	it("413 body_too_large by Content-Length before the signature is checked: nothing signed to count", async () => {
		const small = schemeV2({ maxSkewMs: 300_000, maxBodyBytes: 16 });
		const request = await signed({ body: "x".repeat(17), headers: { signature: "sig1=:AAAA:", "content-length": "17" } });
		expect(await small(request, keyring, NOW)).toEqual({ ok: false, code: "body_too_large", field: "body", rule: "must be at most 16 bytes" });
	});

	it("accepts a body whose Content-Length is exactly the limit", async () => {
		const small = schemeV2({ maxSkewMs: 300_000, maxBodyBytes: 16 });
		const request = await signed({ body: "x".repeat(16), headers: { "content-length": "16" } });
		expect(await small(request, keyring, NOW)).toMatchObject({ ok: true, request: { body: new TextEncoder().encode("x".repeat(16)) } });
	});

	it("400 body_not_allowed for a signed GET whose body declares no length: one byte is one too many", async () => {
		const request = await signed({ method: "GET", path: "/agent/stream" });
		const oneByte = new ReadableStream<Uint8Array>({
			start(controller) {
				controller.enqueue(new Uint8Array([120]));
				controller.close();
			},
		});
		const withBody = new Request(request.url, { method: "POST", headers: request.headers, body: oneByte });
		expect(withBody.headers.has("content-length") || withBody.headers.has("transfer-encoding")).toBe(false);
		// A GET with a body cannot be built with `new Request`; the raw request keeps its method.
		const get = new Proxy(withBody, { get: (target, prop) => (prop === "method" ? "GET" : Reflect.get(target, prop, target)) });
		expect(await v2(get as Request, keyring, NOW)).toEqual({
			ok: false,
			code: "body_not_allowed",
			field: "body",
			rule: "must be empty on a GET",
			signed: { slot: 0, skewMs: 0, clientId: "web-app" },
		});
	});

	it("500 config_error with no secret at all", async () => {
		expect(await v2(await signed(), new Keyring({ sharedSecrets: [], clientSecrets: new Map() }), NOW)).toMatchObject({ ok: false, code: "config_error" });
	});

	it("403 bad_signature: a wrong signature and an unknown keyid alike (the mode tells them apart); a wrong length says so", async () => {
		expect(await v2(await signed({ secret: "another-secret-of-the-same-size-00" }), keyring, NOW)).toEqual({ ok: false, code: "bad_signature" });
		const perClient = new Keyring({ sharedSecrets: [], clientSecrets: new Map([["other", [SECRET]]]) });
		expect(await v2(await signed(), perClient, NOW)).toEqual({ ok: false, code: "bad_signature", mode: "unknown_client" });
		expect(await v2(await signed({ headers: { signature: "sig1=:AAAA:" } }), keyring, NOW)).toEqual({
			ok: false,
			code: "bad_signature",
			field: "Signature",
			rule: "must be 32 bytes (an HMAC-SHA256)",
		});
	});

	it("408 clock_skew after the signature, in both directions, with the slot and the skew", async () => {
		const skewRefusal = (skewMs: number) => ({
			ok: false,
			code: "clock_skew",
			field: "created",
			rule: "must be within 300 s of the server time (see X-Server-Time)",
			headers: { "X-Server-Time": String(NOW) },
			signed: { slot: 0, skewMs, clientId: "web-app" },
		});
		expect(await v2(await signed({ created: CREATED - 301 }), keyring, NOW)).toEqual(skewRefusal(301_000));
		expect(await v2(await signed({ created: CREATED + 301 }), keyring, NOW)).toEqual(skewRefusal(301_000));
		expect((await v2(await signed({ created: CREATED - 300 }), keyring, NOW)).ok).toBe(true);
		expect((await v2(await signed({ created: CREATED + 300 }), keyring, NOW)).ok).toBe(true);
		// A forged request is refused by its signature first, whatever its clock.
		expect(await v2(await signed({ created: CREATED - 301, secret: "x".repeat(36) }), keyring, NOW)).toMatchObject({ code: "bad_signature" });
	});

	it("408 clock_skew for an expires past by the clock, though after created; accepted until it passes", async () => {
		const expired = await v2(await signed({ created: CREATED - 100, expires: CREATED - 1 }), keyring, NOW);
		expect(expired).toEqual({
			ok: false,
			code: "clock_skew",
			field: "expires",
			rule: "has passed (see X-Server-Time)",
			headers: { "X-Server-Time": String(NOW) },
			signed: { slot: 0, skewMs: 100_000, clientId: "web-app" },
		});
		expect((await v2(await signed({ created: CREATED - 100, expires: CREATED }), keyring, NOW)).ok).toBe(true);
		expect((await v2(await signed({ created: CREATED - 100, expires: CREATED }), keyring, NOW + 1)).ok).toBe(false);
	});

	it("a created in milliseconds gets the hint v1 gives a timestamp in seconds", async () => {
		expect(await v2(await signed({ created: NOW }), keyring, NOW)).toMatchObject({
			code: "clock_skew",
			field: "created",
			rule: "must be seconds since the epoch, and this one looks like milliseconds (see X-Server-Time)",
		});
	});

	it("gives the milliseconds hint to a created within the window as milliseconds (its edge included), not beyond", async () => {
		const ruleFor = async (created: number) => {
			const result = await v2(await signed({ created }), keyring, NOW);
			return !result.ok && result.rule;
		};
		expect(await ruleFor(NOW - 300_000)).toBe("must be seconds since the epoch, and this one looks like milliseconds (see X-Server-Time)");
		expect(await ruleFor(NOW - 300_001)).toBe("must be within 300 s of the server time (see X-Server-Time)");
	});

	it("400 digest_mismatch for another body under the signed digest, or none; 403 when the digest changed too", async () => {
		const original = await signed();
		const mismatch = {
			ok: false,
			code: "digest_mismatch",
			field: "Content-Digest",
			rule: "must hold the sha-256 of the body as received",
			signed: { slot: 0, skewMs: 0, clientId: "web-app" },
		};
		expect(await v2(new Request(original.url, { method: "POST", headers: original.headers, body: '{"messages":[1]}' }), keyring, NOW)).toEqual(mismatch);
		// The body stripped in transit: an empty body is checked against the digest too.
		const headers = new Headers(original.headers);
		headers.delete("content-length");
		expect(await v2(new Request(original.url, { method: "POST", headers }), keyring, NOW)).toEqual(mismatch);
		expect(await v2(new Request(original.url, { method: "POST", headers, body: "" }), keyring, NOW)).toEqual(mismatch);
		const other = await signed({ body: '{"messages":[1]}' });
		const both = new Request(original.url, {
			method: "POST",
			headers: { ...Object.fromEntries(original.headers), "content-digest": other.headers.get("content-digest")! },
			body: '{"messages":[1]}',
		});
		expect(await v2(both, keyring, NOW)).toMatchObject({ code: "bad_signature" });
	});

	it("accepts a signed POST with an empty body under the empty body's digest", async () => {
		expect(await v2(await signed({ body: "" }), keyring, NOW)).toMatchObject({ ok: true, request: { body: new Uint8Array(0) } });
	});

	it("never reads the body of a forged request", async () => {
		let pulled = 0;
		const stream = new ReadableStream<Uint8Array>(
			{
				pull(controller) {
					pulled++;
					controller.enqueue(new Uint8Array(1024));
				},
			},
			{ highWaterMark: 0 },
		);
		const forged = await signed({ secret: "not-the-secret-but-long-enough-0000" });
		const result = await v2(new Request(forged.url, { method: "POST", headers: forged.headers, body: stream }), keyring, NOW);
		expect(result).toMatchObject({ code: "bad_signature" });
		expect(pulled).toBe(0);
	});

	it("413 body_too_large by counting a streamed body after the signature verified: the slot is counted", async () => {
		const small = schemeV2({ maxSkewMs: 300_000, maxBodyBytes: 1000 });
		const good = await signed({ body: "y".repeat(1500) });
		const chunks = [new Uint8Array(600).fill(121), new Uint8Array(600).fill(121), new Uint8Array(300).fill(121)];
		const stream = new ReadableStream<Uint8Array>({
			pull(controller) {
				const next = chunks.shift();
				if (next === undefined) controller.close();
				else controller.enqueue(next);
			},
		});
		const headers = new Headers(good.headers);
		headers.delete("content-length");
		const result = await small(new Request(good.url, { method: "POST", headers, body: stream }), keyring, NOW);
		expect(result).toEqual({ ok: false, code: "body_too_large", field: "body", rule: "must be at most 1000 bytes", signed: { slot: 0, skewMs: 0, clientId: "web-app" } });
	});
});
