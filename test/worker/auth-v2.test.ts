import { parseDictionary, serializeDictionary } from "structured-headers";
import { describe, expect, it } from "vitest";
import { signRequest, type SignRequestV2Input } from "../../src/client/sign.ts";
import { CLIENT_ID, errorBody, harness, type Harness, sampleValue, scrape, SECRET, signedRequest } from "./harness.ts";

const NOW = 1_763_000_000_000;
const NONCE = "worker-v2-nonce-000001";
const BODY = '{"messages":[{"role":"user","content":"v2"}]}';

type V2Init = Partial<Omit<SignRequestV2Input, "scheme">> & { url?: string };

/** A v2 request signed at the harness's clock with its secret; `url` is where it goes when that differs. */
async function v2Request(init: V2Init = {}): Promise<Request> {
	const method = init.method ?? "POST";
	const path = init.path ?? "/agent/chat";
	const { headers, body } = await signRequest({
		scheme: "v2",
		clientId: CLIENT_ID,
		secret: SECRET,
		created: NOW / 1000,
		nonce: NONCE,
		...init,
		method,
		path,
		body: method === "POST" ? (init.body ?? BODY) : undefined,
	});
	return new Request(init.url ?? `https://gateway.test${path}${init.query ?? ""}`, {
		method,
		headers: { ...(headers as Record<string, string>), ...(method === "POST" ? { "Content-Type": "application/json" } : {}) },
		body: method === "POST" ? body : undefined,
	});
}

function withHeaders(request: Request, change: (headers: Headers) => void, body?: string): Request {
	const headers = new Headers(request.headers);
	change(headers);
	return new Request(request.url, { method: request.method, headers, body: body ?? (request.method === "POST" ? request.body : undefined) });
}

async function expectRejected(h: Harness, request: Request, status: number, code: string, metricsMode = code): Promise<Response> {
	const response = await h.fetch(request);
	expect(response.status).toBe(status);
	expect((await errorBody(response.clone())).code).toBe(code);
	expect(h.origin.requests).toHaveLength(0);
	expect(h.redis.calls).toHaveLength(0);
	expect(sampleValue(await scrape(h), "agent_chat_requests_total", { auth: "fail", mode: metricsMode })).toBe(1);
	return response;
}

describe("scheme v2 through the whole Worker", () => {
	it("accepts a v2 request once: forwarded with the verified keyid as X-Client-Id, the replay key from keyid and nonce", async () => {
		const h = harness();
		const request = withHeaders(await v2Request({ query: "?month=2026-11" }), (headers) => headers.set("X-Client-Id", "someone-else"));
		const response = await h.fetch(request.clone());
		expect(response.status).toBe(200);
		expect(response.headers.get("x-auth-mode")).toBe("hmac");
		expect(h.origin.requests).toHaveLength(1);
		const [forwarded] = h.origin.requests;
		expect(forwarded!.url).toBe("https://origin.test/agent/chat?month=2026-11");
		expect(forwarded!.headers.get("x-client-id")).toBe(CLIENT_ID);
		expect(new TextDecoder().decode(forwarded!.body)).toBe(BODY);
		expect(h.redis.calls.map((call) => call.key)).toEqual([`hmac:replay:v2:${CLIENT_ID}:${NONCE}`]);
		expect(h.redis.calls[0]!.value.startsWith(`${CLIENT_ID}:${NOW}`)).toBe(true);

		const again = await h.fetch(request.clone());
		expect(again.status).toBe(409);
		expect((await errorBody(again)).code).toBe("replay");
		expect(again.headers.get("x-server-time")).toBe(String(NOW));
		expect(h.origin.requests).toHaveLength(1);

		const text = await scrape(h);
		expect(sampleValue(text, "agent_auth_scheme_total", { scheme: "v2" })).toBe(2);
		expect(sampleValue(text, "agent_auth_scheme_total", { scheme: "v1" })).toBe(0);
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "ok", mode: "real" })).toBe(1);
	});

	it("another request under the same keyid and nonce is a replay; the same nonce under another keyid is not", async () => {
		const h = harness({ HMAC_CLIENTS: JSON.stringify({ [CLIENT_ID]: SECRET, other: SECRET }) });
		expect((await h.fetch(await v2Request())).status).toBe(200);
		expect((await h.fetch(await v2Request({ body: '{"messages":[]}', created: NOW / 1000 + 1 }))).status).toBe(409);
		expect((await h.fetch(await v2Request({ clientId: "other" }))).status).toBe(200);
	});

	it("a GET with its query, and the /api alias signed with its /api, are forwarded as sent", async () => {
		const h = harness();
		expect((await h.fetch(await v2Request({ method: "GET", path: "/agent/stream", query: "?prompt=hello%20world" }))).status).toBe(200);
		expect((await h.fetch(await v2Request({ path: "/api/agent/chat", nonce: "another-nonce-0000000" }))).status).toBe(200);
		expect(h.origin.requests.map((r) => r.url)).toEqual(["https://origin.test/agent/stream?prompt=hello%20world", "https://origin.test/agent/chat"]);
	});

	it("v1 and v2 side by side by default, each counted by scheme", async () => {
		const h = harness();
		expect((await h.fetch(await signedRequest({}, NOW))).status).toBe(200);
		expect((await h.fetch(await v2Request())).status).toBe(200);
		const text = await scrape(h);
		expect(sampleValue(text, "agent_auth_scheme_total", { scheme: "v1" })).toBe(1);
		expect(sampleValue(text, "agent_auth_scheme_total", { scheme: "v2" })).toBe(1);
	});

	it("SIGNATURE_SCHEMES=v2 refuses v1 with 401 scheme_not_allowed, before any other check", async () => {
		const h = harness({ SIGNATURE_SCHEMES: "v2" });
		await expectRejected(h, await signedRequest({}, NOW), 401, "scheme_not_allowed");
		await expectRejected(harness({ SIGNATURE_SCHEMES: "v2" }), new Request("https://gateway.test/agent/chat", { method: "POST" }), 401, "scheme_not_allowed");
		expect((await h.fetch(await v2Request())).status).toBe(200);
	});

	it("SIGNATURE_SCHEMES=v1 refuses a request carrying Signature-Input", async () => {
		const h = harness({ SIGNATURE_SCHEMES: "v1" });
		await expectRejected(h, await v2Request(), 401, "scheme_not_allowed");
		expect((await h.fetch(await signedRequest({}, NOW))).status).toBe(200);
	});

	it.each(["v3", "v1,v1", "", " , ", "V2", "v1;v2"])("SIGNATURE_SCHEMES=%j: a configuration error unless empty", async (value) => {
		const response = await harness({ SIGNATURE_SCHEMES: value }).fetch(await v2Request());
		// Empty (or only spaces) means unset: the default.
		if (value.trim() === "") expect(response.status).toBe(200);
		else {
			expect(response.status).toBe(500);
			const body = await errorBody(response);
			expect(body.code).toBe("config_error");
		}
	});

	it("primes the new modes and both scheme series at 0", async () => {
		const text = await scrape(harness());
		for (const mode of ["scheme_not_allowed", "invalid_signature_input", "digest_mismatch"]) {
			expect(sampleValue(text, "agent_chat_requests_total", { auth: "fail", mode }), mode).toBe(0);
		}
		for (const scheme of ["v1", "v2"]) expect(sampleValue(text, "agent_auth_scheme_total", { scheme })).toBe(0);
	});
});

describe("SPEC section 2b: every failure, in order, with its answer", () => {
	it.each([
		["signature", "no Signature"],
		["content-digest", "a POST without Content-Digest"],
	])("401 missing_headers without %s (%s)", async (name) => {
		const h = harness();
		await expectRejected(h, withHeaders(await v2Request(), (headers) => headers.delete(name)), 401, "missing_headers");
	});

	it.each([
		["signature-input", "sig1=("],
		["signature-input", 'sig1=("@method" "@path" "@query" "content-digest");created=1;keyid=x;nonce="worker-v2-nonce-000001"'],
		["signature", "sig1=not-bytes"],
		["signature", "sig1=:AAAA:;p=1"],
		["content-digest", "sha-512=:AAAA:"],
		["content-digest", "sha-256=:AAAA:"],
		["content-digest", "sha-256=("],
	])("400 invalid_signature_input for %s: %s", async (name, value) => {
		const h = harness();
		await expectRejected(h, withHeaders(await v2Request(), (headers) => headers.set(name, value)), 400, "invalid_signature_input");
	});

	it("401 invalid_client_id for a keyid outside the grammar, logged without it", async () => {
		const h = harness();
		await expectRejected(h, await v2Request({ clientId: "has space" }), 401, "invalid_client_id");
		expect(JSON.stringify(h.logs)).not.toContain("has space");
	});

	it.each(["/agent/chat%2F..", "/agent//chat", "/agent/%63hat"])("400 invalid_path for %s", async (path) => {
		const h = harness();
		await expectRejected(h, await v2Request({ path }), 400, "invalid_path");
	});

	it("413 body_too_large by Content-Length, before the signature is checked", async () => {
		const h = harness({ MAX_BODY_BYTES: "16" });
		const forged = await v2Request({ body: "x".repeat(17), secret: "not-the-secret" });
		await expectRejected(h, withHeaders(forged, (headers) => headers.set("content-length", "17"), "x".repeat(17)), 413, "body_too_large");
	});

	it("500 config_error when no secret is configured", async () => {
		const h = harness({ HMAC_SECRET: "" });
		await expectRejected(h, await v2Request(), 500, "config_error");
	});

	it("403 bad_signature, the same bytes as v1's, for a forged signature and an unknown keyid", async () => {
		const v1 = await harness().fetch(await signedRequest({ secret: "wrong" }, NOW));
		const v1Text = await v1.text();
		const forged = harness();
		const response = await expectRejected(forged, await v2Request({ secret: "wrong" }), 403, "bad_signature");
		expect(await response.text()).toBe(v1Text);
		const unknown = harness({ HMAC_SECRET: "", HMAC_CLIENTS: JSON.stringify({ other: SECRET }) });
		const unknownResponse = await expectRejected(unknown, await v2Request(), 403, "bad_signature", "unknown_client");
		expect(await unknownResponse.text()).toBe(v1Text);
	});

	it("408 clock_skew for an old created or a past expires, with X-Server-Time", async () => {
		const h = harness();
		const response = await expectRejected(h, await v2Request({ created: NOW / 1000 - 301 }), 408, "clock_skew");
		expect(response.headers.get("x-server-time")).toBe(String(NOW));
		await expectRejected(harness(), await v2Request({ expires: NOW / 1000 - 1 }), 408, "clock_skew");
	});

	it("400 digest_mismatch for a body that is not the digested one, after the signature", async () => {
		const h = harness();
		await expectRejected(h, withHeaders(await v2Request(), () => {}, '{"messages":[{"role":"user","content":"changed"}]}'), 400, "digest_mismatch");
	});

	it("503 replay_store_unavailable when Upstash fails and REPLAY_FAIL_MODE=closed", async () => {
		const h = harness({ REPLAY_FAIL_MODE: "closed" });
		h.redis.answer = async () => {
			throw new Error("connection refused");
		};
		const response = await h.fetch(await v2Request());
		expect(response.status).toBe(503);
		expect((await errorBody(response)).code).toBe("replay_store_unavailable");
		expect(h.origin.requests).toHaveLength(0);
	});
});

describe("tampering with a signed v2 request", () => {
	it("another query: 403", async () => {
		const signed = await v2Request({ query: "?prompt=hello" });
		await expectRejected(harness(), new Request("https://gateway.test/agent/chat?prompt=other", signed), 403, "bad_signature");
	});

	it("a query added to a request signed without one: 403", async () => {
		const signed = await v2Request();
		await expectRejected(harness(), new Request("https://gateway.test/agent/chat?x=1", signed), 403, "bad_signature");
	});

	it("another path: 403", async () => {
		const signed = await v2Request({ path: "/agent/chat" });
		await expectRejected(harness(), new Request("https://gateway.test/agent/stream", signed), 403, "bad_signature");
	});

	it("another method: 403", async () => {
		const signed = await v2Request({ method: "GET", path: "/agent/stream" });
		const post = withHeaders(new Request(signed.url, { method: "POST", headers: signed.headers, body: "" }), (headers) =>
			headers.set("content-digest", "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"),
		);
		// A POST must also cover content-digest: refused by the profile before the signature.
		await expectRejected(harness(), post, 400, "invalid_signature_input");
		const signedPost = await v2Request({ method: "POST" });
		const asGet = new Request(signedPost.url, { method: "GET", headers: signedPost.headers });
		await expectRejected(harness(), asGet, 403, "bad_signature");
	});

	it("another keyid: 403", async () => {
		const h = harness({ HMAC_CLIENTS: JSON.stringify({ [CLIENT_ID]: SECRET, other: SECRET }) });
		const signed = await v2Request();
		const input = signed.headers.get("signature-input")!.replace(`keyid="${CLIENT_ID}"`, 'keyid="other"');
		await expectRejected(h, withHeaders(signed, (headers) => headers.set("signature-input", input)), 403, "bad_signature");
	});

	it("another body and its digest together: 403", async () => {
		const signed = await v2Request();
		const other = '{"messages":[{"role":"user","content":"changed"}]}';
		const otherDigest = (await v2Request({ body: other })).headers.get("content-digest")!;
		await expectRejected(harness(), withHeaders(signed, (headers) => headers.set("content-digest", otherDigest), other), 403, "bad_signature");
	});

	it("a second Signature member, or a second Signature-Input member: 400", async () => {
		const signed = await v2Request();
		const twoSignatures = `${signed.headers.get("signature")}, sig2=:AAAA:`;
		await expectRejected(harness(), withHeaders(signed, (headers) => headers.set("signature", twoSignatures)), 400, "invalid_signature_input");
		const twoInputs = `${signed.headers.get("signature-input")}, sig2=("@method")`;
		await expectRejected(harness(), withHeaders(signed, (headers) => headers.set("signature-input", twoInputs)), 400, "invalid_signature_input");
		// Repeated header lines are joined by the runtime into one dictionary: two members too.
		const repeated = new Headers(signed.headers);
		repeated.append("signature", "sig2=:AAAA:");
		await expectRejected(harness(), new Request(signed.url, { method: "POST", headers: repeated, body: BODY }), 400, "invalid_signature_input");
	});

	it("a label mismatch between Signature-Input and Signature: 400", async () => {
		const signed = await v2Request();
		const [, member] = [...parseDictionary(signed.headers.get("signature")!)][0]!;
		const relabelled = serializeDictionary(new Map([["sig2", member]]));
		await expectRejected(harness(), withHeaders(signed, (headers) => headers.set("signature", relabelled)), 400, "invalid_signature_input");
	});

	it("the covered Content-Type changed: 403", async () => {
		const signed = await v2Request({ coveredHeaders: { "content-type": "application/json" } });
		await expectRejected(harness(), withHeaders(signed, (headers) => headers.set("content-type", "text/plain")), 403, "bad_signature");
		await expectRejected(harness(), withHeaders(signed, (headers) => headers.delete("content-type")), 400, "invalid_signature_input");
	});
});
