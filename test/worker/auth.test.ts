import { describe, expect, it } from "vitest";
import { canonicalString, hmacSha256Hex, importHmacKey, sha256Hex } from "../../src/auth/crypto.ts";
import { expectRejected, NOW, withHeaders } from "./auth-harness.ts";
import { CLIENT_ID, errorBody, harness, sampleValue, scrape, SECRET, signedRequest } from "./harness.ts";

describe("scheme v1: every failure, in order, with its answer", () => {
	it.each(["X-Client-Id", "X-Timestamp", "X-Signature"])("401 missing_headers without %s, naming it", async (name) => {
		const h = harness();
		await expectRejected(h, withHeaders(await signedRequest(), (headers) => headers.delete(name)), 401, "missing_headers", {
			detail: `${name} is missing`,
		});
	});

	it.each(["X-Client-Id", "X-Timestamp", "X-Signature"])("401 missing_headers when %s is empty or only whitespace", async (name) => {
		const h = harness();
		await expectRejected(h, withHeaders(await signedRequest(), (headers) => headers.set(name, "   ")), 401, "missing_headers", {
			detail: `${name} is missing`,
		});
	});

	it("names the first missing header of a request that sends none", async () => {
		const h = harness();
		const bare = new Request("https://gateway.test/agent/chat", { method: "POST", body: "{}" });
		await expectRejected(h, bare, 401, "missing_headers", { detail: "X-Client-Id is missing" });
	});

	it.each([["a".repeat(65)], ["has space"], ["semi;colon"], ["ünïcode"], ["slash/id"]])(
		"401 invalid_client_id for %j, logged by length only",
		async (clientId) => {
			const h = harness();
			const request = withHeaders(await signedRequest(), (headers) => headers.set("x-client-id", clientId));
			await expectRejected(h, request, 401, "invalid_client_id", { detail: "X-Client-Id must be 1 to 64 characters of A-Z a-z 0-9 . _ -" });
			expect(JSON.stringify(h.logs)).not.toContain(clientId);
			expect(h.logs).toEqual([{ level: "warn", message: "invalid client id", fields: { scheme: "v1", length: clientId.length } }]);
		},
	);

	it.each([
		["1763000000000.5", "a float"],
		["-1763000000000", "a negative"],
		["1.763e12", "an exponent"],
		["0x19a5b6e3c00", "hex"],
		["17630000000000000", "17 digits"],
		["１７６３０００００００００", "non-ASCII digits"],
		["1763000 000000", "an inner space"],
		["+1763000000000", "a plus sign"],
	])("401 invalid_timestamp for %j (%s)", async (timestamp) => {
		const h = harness();
		await expectRejected(h, withHeaders(await signedRequest(), (headers) => headers.set("x-timestamp", timestamp)), 401, "invalid_timestamp", {
			detail: "X-Timestamp must be integer milliseconds since the epoch (1 to 16 digits)",
		});
	});

	it.each(["/agent/chat%2F..", "/agent//chat", "/agent/ch@t", "/agent/%63hat"])("400 invalid_path for %s", async (path) => {
		const h = harness();
		await expectRejected(h, await signedRequest({ path }), 400, "invalid_path", {
			detail: "path must be /agent/ then segments of A-Z a-z 0-9 . _ ~ - joined by single slashes (no percent-encoding)",
		});
	});

	it("400 body_not_allowed for a GET with a body", async () => {
		const h = harness();
		const request = await signedRequest({ method: "GET", path: "/agent/stream" });
		const withBody = new Request(request.url, { method: "POST", headers: request.headers, body: "x" });
		// A GET with a body cannot be built with `new Request`; the raw request keeps its method.
		const get = new Proxy(withBody, { get: (target, prop) => (prop === "method" ? "GET" : Reflect.get(target, prop, target)) });
		await expectRejected(h, get as Request, 400, "body_not_allowed", { detail: "body must be empty on a GET" });
	});

	it("accepts a signed GET that declares Content-Length: 0 (no body is no body)", async () => {
		const h = harness();
		const request = await signedRequest({ method: "GET", headers: { "Content-Length": "0" } });
		expect(request.headers.get("content-length")).toBe("0");
		expect((await h.fetch(request)).status).toBe(200);
		expect(h.origin.requests).toHaveLength(1);
	});

	it("refuses a GET that declares a body length, before reading it", async () => {
		const h = harness();
		const request = await signedRequest({ method: "GET", headers: { "Content-Length": "1" } });
		await expectRejected(h, request, 400, "body_not_allowed", { detail: "body must be empty on a GET" });
	});

	it("413 body_too_large by Content-Length, without reading the body", async () => {
		const h = harness({ MAX_BODY_BYTES: "16" });
		const request = await signedRequest({ body: "x".repeat(17) });
		await expectRejected(h, request, 413, "body_too_large", { detail: "body must be at most 16 bytes" });
	});

	it("413 body_too_large by counting a streamed body without Content-Length", async () => {
		const h = harness({ MAX_BODY_BYTES: "1000" });
		const signed = await signedRequest({ body: "y".repeat(1500) });
		const chunks = [new Uint8Array(600).fill(121), new Uint8Array(600).fill(121), new Uint8Array(300).fill(121)];
		const stream = new ReadableStream<Uint8Array>({
			pull(controller) {
				const next = chunks.shift();
				if (next === undefined) controller.close();
				else controller.enqueue(next);
			},
		});
		const request = new Request(signed.url, { method: "POST", headers: signed.headers, body: stream });
		expect(request.headers.has("content-length")).toBe(false);
		await expectRejected(h, request, 413, "body_too_large");
	});

	it("500 config_error when no secret is configured at all", async () => {
		const h = harness({ HMAC_SECRET: "" });
		const response = await expectRejected(h, await signedRequest(), 500, "config_error", { detail: "The gateway has no signing secret configured." });
		expect((await response.json()) as object).not.toHaveProperty("stack");
	});

	it.each([
		["A".repeat(64), "uppercase hex"],
		["a".repeat(63), "63 characters"],
		["a".repeat(65), "65 characters"],
		["g".repeat(64), "not hex"],
	])("403 bad_signature for a signature that is %s, saying it is outside the grammar", async (signature) => {
		const h = harness();
		await expectRejected(h, withHeaders(await signedRequest(), (headers) => headers.set("x-signature", signature)), 403, "bad_signature", {
			detail: "X-Signature must be 64 lowercase hex characters",
		});
	});

	it("403 bad_signature for the uppercase copy of a valid signature: one request cannot have two replay keys", async () => {
		const h = harness();
		const request = await signedRequest();
		const upper = withHeaders(request, (headers) => headers.set("x-signature", request.headers.get("x-signature")!.toUpperCase()));
		await expectRejected(h, upper, 403, "bad_signature", { detail: "X-Signature must be 64 lowercase hex characters" });
	});

	it("403 bad_signature for a wrong secret, and the same answer byte for byte for an unknown client", async () => {
		const h = harness({ HMAC_SECRET: "", HMAC_CLIENTS: JSON.stringify({ [CLIENT_ID]: SECRET }) });
		const wrong = await h.fetch(await signedRequest({ secret: "not-the-secret" }));
		const unknown = await h.fetch(await signedRequest({ clientId: "stranger" }));
		expect(wrong.status).toBe(403);
		expect(unknown.status).toBe(403);
		const wrongText = await wrong.text();
		expect(wrongText).toBe(JSON.stringify({ detail: "The request signature is not valid.", code: "bad_signature" }));
		expect(await unknown.text()).toBe(wrongText);
		expect([...unknown.headers]).toEqual([...wrong.headers]);
		const text = await scrape(h);
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "fail", mode: "bad_signature" })).toBe(1);
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "fail", mode: "unknown_client" })).toBe(1);
		expect(h.redis.calls).toHaveLength(0);
		expect(h.origin.requests).toHaveLength(0);
	});

	it("408 clock_skew outside the window, with X-Server-Time, and no Upstash call", async () => {
		const h = harness({ HMAC_MAX_SKEW_MS: "1000" });
		const detail = "X-Timestamp must be within 1000 ms of the server time (see X-Server-Time)";
		const response = await expectRejected(h, await signedRequest({ timestamp: NOW - 1001 }), 408, "clock_skew", { detail });
		expect(response.headers.get("x-server-time")).toBe(String(NOW));
		const early = await h.fetch(await signedRequest({ timestamp: NOW + 1001 }));
		expect(early.status).toBe(408);
		expect((await errorBody(early)).detail).toBe(detail);
		expect(sampleValue(await scrape(h), "agent_auth_skew_milliseconds_count")).toBe(2);
	});

	it("408 clock_skew for a timestamp in seconds, telling the client it looks like seconds", async () => {
		const h = harness();
		await expectRejected(h, await signedRequest({ timestamp: NOW / 1000 }), 408, "clock_skew", {
			detail: "X-Timestamp must be milliseconds since the epoch, and this one looks like seconds (see X-Server-Time)",
		});
	});

	it("accepts at the edge of the window", async () => {
		const h = harness({ HMAC_MAX_SKEW_MS: "1000" });
		expect((await h.fetch(await signedRequest({ timestamp: NOW - 1000 }))).status).toBe(200);
		expect((await h.fetch(await signedRequest({ timestamp: NOW + 1000 }))).status).toBe(200);
	});

	it("409 replay for the same signed request, with X-Server-Time", async () => {
		const h = harness();
		const request = await signedRequest();
		const first = await h.fetch(request.clone());
		expect(first.status).toBe(200);
		expect(first.headers.get("x-auth-mode")).toBe("hmac");
		const second = await h.fetch(request);
		expect(second.status).toBe(409);
		expect((await errorBody(second)).code).toBe("replay");
		expect(second.headers.get("x-server-time")).toBe(String(NOW));
		expect(h.origin.requests).toHaveLength(1);
		const text = await scrape(h);
		expect(sampleValue(text, "agent_chat_replay_attempts_total")).toBe(1);
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "fail", mode: "replay" })).toBe(1);
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "ok", mode: "real" })).toBe(1);
	});

	it("503 replay_store_unavailable when Upstash fails and REPLAY_FAIL_MODE=closed", async () => {
		const h = harness({ REPLAY_FAIL_MODE: "closed" });
		h.redis.answer = async () => {
			throw new Error("connection refused");
		};
		const response = await h.fetch(await signedRequest());
		expect(response.status).toBe(503);
		expect((await errorBody(response)).code).toBe("replay_store_unavailable");
		expect(h.origin.requests).toHaveLength(0);
	});

	it("a request resent under another client id with a shared secret is still a replay (the key is the signature)", async () => {
		const h = harness();
		const request = await signedRequest();
		expect((await h.fetch(request.clone())).status).toBe(200);
		const renamed = withHeaders(request, (headers) => headers.set("x-client-id", "someone-else"));
		expect((await h.fetch(renamed)).status).toBe(409);
	});
});

describe("replay keys", () => {
	it("a claim made in memory during an outage is written back after the next accepted request, never after an anonymous /healthz", async () => {
		const h = harness({ REPLAY_BREAKER_FAILURES: "1", REPLAY_BREAKER_COOLDOWN_MS: "1000" });
		h.redis.answer = () => Promise.reject(new TypeError("fetch failed"));
		const during = await signedRequest();
		expect((await h.fetch(during)).status).toBe(200);
		h.redis.answer = null;
		h.clock.now += 1_000;
		await h.fetch(new Request("https://gateway.test/healthz"));
		expect(h.redis.calls).toHaveLength(1);
		expect((await h.fetch(await signedRequest({ timestamp: NOW + 1 }, NOW + 1))).status).toBe(200);
		const writeBack = h.redis.calls[2];
		expect(writeBack?.key).toBe(`hmac:replay:${during.headers.get("x-signature")}`);
		expect(writeBack?.opts).toEqual({ nx: true, px: 300_001 - 1_000, get: true });
		expect(h.redis.calls).toHaveLength(3);
	});

	it("a forged request does not burn the replay key of a later valid one", async () => {
		const h = harness();
		const valid = await signedRequest();
		const forged = withHeaders(valid.clone(), (headers) => headers.set("x-signature", "0".repeat(64)));
		expect((await h.fetch(forged)).status).toBe(403);
		const forgedSameSignature = new Request(valid.url, { method: "POST", headers: valid.headers, body: '{"tampered":true}' });
		expect((await h.fetch(forgedSameSignature)).status).toBe(403);
		expect(h.redis.calls).toHaveLength(0);
		expect((await h.fetch(valid)).status).toBe(200);
	});

	it("claims prefix + signature with value client:timestamp, and an expiry that outlives the skew window", async () => {
		const h = harness({ HMAC_MAX_SKEW_MS: "300000", REDIS_REPLAY_TTL: "300", REDIS_REPLAY_PREFIX: "test:replay:" });
		const request = await signedRequest({ timestamp: NOW + 299_000 });
		expect((await h.fetch(request)).status).toBe(200);
		expect(h.redis.calls).toEqual([
			{
				key: `test:replay:${request.headers.get("x-signature")}`,
				// Client id and timestamp, then the claim's own id (isolate and counter).
				value: expect.stringMatching(new RegExp(`^${CLIENT_ID}:${NOW + 299_000}:[0-9a-f-]{36}:1$`)),
				opts: { nx: true, px: 599_001 },
			},
		]);
	});

	it("keeps a replay key for REDIS_REPLAY_TTL when that outlives the skew window", async () => {
		const h = harness({ HMAC_MAX_SKEW_MS: "300000", REDIS_REPLAY_TTL: "900" });
		expect((await h.fetch(await signedRequest({}, h.clock.now))).status).toBe(200);
		expect(h.redis.calls.map((call) => call.opts)).toEqual([{ nx: true, px: 900_000 }]);
	});

	it("never keeps a key for less than REDIS_REPLAY_TTL", async () => {
		const h = harness({ HMAC_MAX_SKEW_MS: "300000", REDIS_REPLAY_TTL: "300" });
		expect((await h.fetch(await signedRequest({ timestamp: NOW - 299_000 })))).toHaveProperty("status", 200);
		expect(h.redis.calls[0]?.opts).toEqual({ nx: true, px: 300_000 });
	});
});

describe("per-client secrets and rotation", () => {
	// Production takes secrets of 32 characters or more.
	const NEW_SECRET = "new-secret-of-at-least-32-characters";
	const OLD_SECRET = "old-secret-of-at-least-32-characters";
	it("accepts old and new secrets and counts the slot that verified", async () => {
		const h = harness({ HMAC_SECRET: "", HMAC_CLIENTS: JSON.stringify({ [CLIENT_ID]: [NEW_SECRET, OLD_SECRET] }) });
		expect((await h.fetch(await signedRequest({ secret: NEW_SECRET }))).status).toBe(200);
		expect((await h.fetch(await signedRequest({ secret: OLD_SECRET, timestamp: NOW + 1 }))).status).toBe(200);
		expect((await h.fetch(await signedRequest({ secret: OLD_SECRET, timestamp: NOW + 2 }))).status).toBe(200);
		const text = await scrape(h);
		expect(sampleValue(text, "agent_auth_secret_slot_total", { slot: "0" })).toBe(1);
		expect(sampleValue(text, "agent_auth_secret_slot_total", { slot: "1" })).toBe(2);
	});

	it("never serves another letter case of a registered id with the shared secret: 403, the same bytes as an unknown client", async () => {
		const h = harness({ HMAC_SECRET: SECRET, HMAC_CLIENTS: JSON.stringify({ alice: NEW_SECRET }) });
		const badHmac = await h.fetch(await signedRequest({ clientId: "alice", secret: SECRET }));
		const expected = await badHmac.text();
		for (const [i, borrowed] of ["ALICE", "Alice", "aLiCe"].entries()) {
			const response = await h.fetch(await signedRequest({ clientId: borrowed, secret: SECRET, timestamp: NOW + i }));
			expect(response.status).toBe(403);
			expect(await response.text()).toBe(expected);
		}
		// The shared secret still serves an id that is not registered in any case.
		expect((await h.fetch(await signedRequest({ clientId: "alicia", secret: SECRET }))).status).toBe(200);
		expect(h.origin.requests.map((r) => r.headers.get("x-client-id"))).toEqual(["alicia"]);
		const text = await scrape(h);
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "fail", mode: "unknown_client" })).toBe(3);
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "fail", mode: "bad_signature" })).toBe(1);
	});

	it("never serves the lowercase of a registered id that has capitals with the shared secret: 403, as any other spelling", async () => {
		const h = harness({ HMAC_SECRET: SECRET, HMAC_CLIENTS: JSON.stringify({ Alice: NEW_SECRET }) });
		for (const [i, borrowed] of ["alice", "ALICE"].entries()) {
			expect((await h.fetch(await signedRequest({ clientId: borrowed, secret: SECRET, timestamp: NOW + i }))).status, borrowed).toBe(403);
		}
		expect((await h.fetch(await signedRequest({ clientId: "Alice", secret: NEW_SECRET, timestamp: NOW + 2 }))).status).toBe(200);
		expect(h.origin.requests.map((r) => r.headers.get("x-client-id"))).toEqual(["Alice"]);
	});

	it("accepts E2E_SESSION_HMAC_SECRET as an alias of HMAC_SECRET", async () => {
		const h = harness({ HMAC_SECRET: "", E2E_SESSION_HMAC_SECRET: SECRET });
		expect((await h.fetch(await signedRequest())).status).toBe(200);
	});
});

describe("the /api alias", () => {
	it("removes exactly the leading /api before verifying and forwarding", async () => {
		const h = harness();
		const response = await h.fetch(await signedRequest({ path: "/agent/chat", urlPath: "/api/agent/chat", query: "?x=1" }));
		expect(response.status).toBe(200);
		expect(h.origin.requests[0]?.url).toBe("https://origin.test/agent/chat?x=1");
	});

	it("does not verify a signature made over the /api path", async () => {
		const h = harness();
		// Made by hand: signRequest() signs the alias without /api, as the gateway verifies it.
		const request = await signedRequest({ path: "/agent/chat", urlPath: "/api/agent/chat" });
		const canonical = canonicalString({ method: "POST", path: "/api/agent/chat", timestamp: request.headers.get("x-timestamp")!, bodySha256: await sha256Hex(new Uint8Array(await request.clone().arrayBuffer())) });
		const overApi = await hmacSha256Hex(await importHmacKey(SECRET, "sign"), canonical);
		expect(overApi).not.toBe(request.headers.get("x-signature"));
		expect((await h.fetch(withHeaders(request, (headers) => headers.set("x-signature", overApi)))).status).toBe(403);
	});
});
