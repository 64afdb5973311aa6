import { describe, expect, it } from "vitest";
import { CLIENT_ID, errorBody, harness, sampleValue, scrape, SECRET, signedRequest } from "./harness.ts";

const NOW = 1_763_000_000_000;

async function expectRejected(
	h: ReturnType<typeof harness>,
	request: Request,
	status: number,
	code: string,
	metricsMode = code,
): Promise<Response> {
	const response = await h.fetch(request);
	expect(response.status).toBe(status);
	expect((await errorBody(response.clone())).code).toBe(code);
	// A rejected request never reaches the origin, and costs no Upstash call.
	expect(h.origin.requests).toHaveLength(0);
	expect(h.redis.calls).toHaveLength(0);
	expect(sampleValue(await scrape(h), "agent_chat_requests_total", { auth: "fail", mode: metricsMode })).toBe(1);
	return response;
}

function withHeaders(request: Request, change: (headers: Headers) => void): Request {
	const headers = new Headers(request.headers);
	change(headers);
	return new Request(request, { headers });
}

describe("SPEC section 2: every failure, in order, with its answer", () => {
	it.each(["x-client-id", "x-timestamp", "x-signature"])("401 missing_headers without %s", async (name) => {
		const h = harness();
		await expectRejected(h, withHeaders(await signedRequest(), (headers) => headers.delete(name)), 401, "missing_headers");
	});

	it.each(["x-client-id", "x-timestamp", "x-signature"])("401 missing_headers when %s is empty or only whitespace", async (name) => {
		const h = harness();
		await expectRejected(h, withHeaders(await signedRequest(), (headers) => headers.set(name, "   ")), 401, "missing_headers");
	});

	it.each([["a".repeat(65)], ["has space"], ["semi;colon"], ["ünïcode"], ["slash/id"]])(
		"401 invalid_client_id for %j, logged by length only",
		async (clientId) => {
			const h = harness();
			const request = withHeaders(await signedRequest(), (headers) => headers.set("x-client-id", clientId));
			await expectRejected(h, request, 401, "invalid_client_id");
			expect(JSON.stringify(h.logs)).not.toContain(clientId);
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
		await expectRejected(h, withHeaders(await signedRequest(), (headers) => headers.set("x-timestamp", timestamp)), 401, "invalid_timestamp");
	});

	it.each(["/agent/chat%2F..", "/agent//chat", "/agent/ch@t", "/agent/%63hat"])("400 invalid_path for %s", async (path) => {
		const h = harness();
		await expectRejected(h, await signedRequest({ path }), 400, "invalid_path");
	});

	it("400 body_not_allowed for a GET with a body", async () => {
		const h = harness();
		const request = await signedRequest({ method: "GET", path: "/agent/stream" });
		const withBody = new Request(request.url, { method: "POST", headers: request.headers, body: "x" });
		// A GET with a body cannot be built with `new Request`; the raw request keeps its method.
		const get = new Proxy(withBody, { get: (target, prop) => (prop === "method" ? "GET" : Reflect.get(target, prop, target)) });
		await expectRejected(h, get as Request, 400, "body_not_allowed");
	});

	it("413 body_too_large by Content-Length, without reading the body", async () => {
		const h = harness({ MAX_BODY_BYTES: "16" });
		const request = await signedRequest({ body: "x".repeat(17) });
		await expectRejected(h, request, 413, "body_too_large");
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
		const response = await expectRejected(h, await signedRequest(), 500, "config_error");
		expect((await response.json()) as object).not.toHaveProperty("stack");
	});

	it.each([
		["A".repeat(64), "uppercase hex"],
		["abc", "too short"],
		["g".repeat(64), "not hex"],
	])("403 bad_signature for a signature that is %s", async (signature) => {
		const h = harness();
		await expectRejected(h, withHeaders(await signedRequest(), (headers) => headers.set("x-signature", signature)), 403, "bad_signature");
	});

	it("403 bad_signature for a wrong secret, and the same answer byte for byte for an unknown client", async () => {
		const h = harness({ HMAC_SECRET: "", HMAC_CLIENTS: JSON.stringify({ [CLIENT_ID]: SECRET }) });
		const wrong = await h.fetch(await signedRequest({ secret: "not-the-secret" }));
		const unknown = await h.fetch(await signedRequest({ clientId: "stranger" }));
		expect(wrong.status).toBe(403);
		expect(unknown.status).toBe(403);
		expect(await unknown.text()).toBe(await wrong.text());
		expect([...unknown.headers]).toEqual([...wrong.headers]);
		const text = await scrape(h);
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "fail", mode: "bad_signature" })).toBe(1);
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "fail", mode: "unknown_client" })).toBe(1);
		expect(h.redis.calls).toHaveLength(0);
		expect(h.origin.requests).toHaveLength(0);
	});

	it("408 clock_skew outside the window, with X-Server-Time, and no Upstash call", async () => {
		const h = harness({ HMAC_MAX_SKEW_MS: "1000" });
		const response = await expectRejected(h, await signedRequest({ timestamp: NOW - 1001 }), 408, "clock_skew");
		expect(response.headers.get("x-server-time")).toBe(String(NOW));
		const early = await h.fetch(await signedRequest({ timestamp: NOW + 1001 }));
		expect(early.status).toBe(408);
		expect(sampleValue(await scrape(h), "agent_auth_skew_milliseconds_count")).toBe(2);
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
		const response = await h.fetch(await signedRequest({ path: "/api/agent/chat" }));
		expect(response.status).toBe(403);
	});
});
