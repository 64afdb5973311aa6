import { parseDictionary, serializeDictionary } from "structured-headers";
import { describe, expect, it } from "vitest";
import { expectRejected, NONCE, NOW, v2Request, withHeaders } from "./auth-harness.ts";
import { CLIENT_ID, errorBody, harness, sampleValue, scrape, SECRET, signedRequest } from "./harness.ts";

const BODY = '{"messages":[{"role":"user","content":"v2"}]}';
const CREATED = NOW / 1000;

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
		const detail = "scheme v1 is not accepted here: sign with scheme v2 (Signature-Input)";
		await expectRejected(h, await signedRequest({}, NOW), 401, "scheme_not_allowed", { detail });
		await expectRejected(harness({ SIGNATURE_SCHEMES: "v2" }), new Request("https://gateway.test/agent/chat", { method: "POST" }), 401, "scheme_not_allowed", { detail });
		expect((await h.fetch(await v2Request())).status).toBe(200);
	});

	it("SIGNATURE_SCHEMES=v1 refuses a request carrying Signature-Input", async () => {
		const h = harness({ SIGNATURE_SCHEMES: "v1" });
		await expectRejected(h, await v2Request(), 401, "scheme_not_allowed", { detail: "scheme v2 is not accepted here: sign with scheme v1 (X-Signature)" });
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
		for (const mode of ["scheme_not_allowed", "invalid_signature_input", "digest_mismatch", "keyring_unavailable"]) {
			expect(sampleValue(text, "agent_chat_requests_total", { auth: "fail", mode }), mode).toBe(0);
		}
		for (const scheme of ["v1", "v2"]) expect(sampleValue(text, "agent_auth_scheme_total", { scheme })).toBe(0);
	});
});

describe("scheme v2: every failure, in order, with its answer in v2's names", () => {
	it.each([
		["signature", "Signature is missing"],
		["content-digest", "Content-Digest is missing (required on a POST)"],
	])("401 missing_headers without %s", async (name, detail) => {
		const h = harness();
		await expectRejected(h, await v2Request({ headers: { [name]: null } }), 401, "missing_headers", { detail });
	});

	it.each([
		["signature-input", "sig1=(", "Signature-Input must be a Structured Field dictionary (RFC 8941)"],
		["signature-input", 'sig1=("@method" "@path" "@query" "content-digest");created=1;keyid=x;nonce="worker-v2-nonce-000001"', "keyid must be a string: the client id"],
		["signature-input", `sig1=("@method" "@path" "content-digest");created=${CREATED};keyid="${CLIENT_ID}";nonce="${NONCE}"`, 'Signature-Input must cover "@query"'],
		["signature-input", `sig1=("@method" "@path" "@query");created=${CREATED};keyid="${CLIENT_ID}";nonce="${NONCE}"`, 'Signature-Input must cover "content-digest" on a POST'],
		["signature-input", `sig1=("@method" "@path" "@query" "content-digest");created=${CREATED};keyid="${CLIENT_ID}";nonce="short"`, "nonce must be 16 to 64 characters of A-Z a-z 0-9 _ -"],
		["signature", "sig1=not-bytes", "Signature must be a byte sequence without parameters"],
		["signature", "sig1=:AAAA:;p=1", "Signature must be a byte sequence without parameters"],
		["content-digest", "sha-512=:AAAA:", "Content-Digest must hold sha-256"],
		["content-digest", "sha-256=:AAAA:", "Content-Digest sha-256 must be a byte sequence of 32 bytes"],
		["content-digest", "sha-256=(", "Content-Digest must be a Structured Field dictionary (RFC 8941)"],
	])("400 invalid_signature_input for %s: %s", async (name, value, detail) => {
		const h = harness();
		await expectRejected(h, await v2Request({ headers: { [name]: value } }), 400, "invalid_signature_input", { detail });
	});

	it("a signed created rewritten as a whole decimal (N.0) in transit is 400, though the library reads it as N and the signature would verify", async () => {
		const h = harness();
		const signed = await v2Request();
		const rewritten = withHeaders(signed, (headers) => headers.set("signature-input", headers.get("signature-input")!.replace(`created=${CREATED}`, `created=${CREATED}.0`)));
		await expectRejected(h, rewritten, 400, "invalid_signature_input", { detail: "created must be integer seconds since the epoch" });
		expect((await h.fetch(await v2Request())).status).toBe(200);
	});

	it("401 invalid_client_id for a keyid outside the grammar, naming keyid, logged without it", async () => {
		const h = harness();
		await expectRejected(h, await v2Request({ clientId: "has space" }), 401, "invalid_client_id", {
			detail: "keyid must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
		});
		expect(JSON.stringify(h.logs)).not.toContain("has space");
		expect(h.logs).toEqual([{ level: "warn", message: "invalid client id", fields: { scheme: "v2" } }]);
	});

	it.each(["/agent/chat%2F..", "/agent//chat", "/agent/%63hat"])("400 invalid_path for %s", async (path) => {
		const h = harness();
		await expectRejected(h, await v2Request({ path }), 400, "invalid_path", {
			detail: "path must be /agent/ then segments of A-Z a-z 0-9 . _ ~ - joined by single slashes (no percent-encoding)",
		});
	});

	it("413 body_too_large by Content-Length, before the signature is checked", async () => {
		const h = harness({ MAX_BODY_BYTES: "16" });
		const forged = await v2Request({ body: "x".repeat(17), secret: "not-the-secret" });
		await expectRejected(h, withHeaders(forged, (headers) => headers.set("content-length", "17"), "x".repeat(17)), 413, "body_too_large", {
			detail: "body must be at most 16 bytes",
		});
	});

	it("500 config_error when no secret is configured", async () => {
		const h = harness({ HMAC_SECRET: "" });
		await expectRejected(h, await v2Request(), 500, "config_error", { detail: "The gateway has no signing secret configured." });
	});

	it("403 bad_signature, the same bytes as v1's, for a forged signature and an unknown keyid", async () => {
		const v1 = await harness().fetch(await signedRequest({ secret: "wrong" }, NOW));
		const v1Text = await v1.text();
		expect(v1Text).toBe(JSON.stringify({ detail: "The request signature is not valid.", code: "bad_signature" }));
		const forged = harness();
		const response = await expectRejected(forged, await v2Request({ secret: "wrong" }), 403, "bad_signature");
		expect(await response.text()).toBe(v1Text);
		const unknown = harness({ HMAC_SECRET: "", HMAC_CLIENTS: JSON.stringify({ other: SECRET }) });
		const unknownResponse = await expectRejected(unknown, await v2Request(), 403, "bad_signature", { mode: "unknown_client" });
		expect(await unknownResponse.text()).toBe(v1Text);
	});

	it("403 bad_signature for a keyid that borrows a registered id's letter case, signed with the shared secret", async () => {
		const h = harness({ HMAC_SECRET: SECRET, HMAC_CLIENTS: JSON.stringify({ [CLIENT_ID]: "per-client-secret-of-32-characters!" }) });
		const response = await expectRejected(h, await v2Request({ clientId: CLIENT_ID.toUpperCase() }), 403, "bad_signature", { mode: "unknown_client" });
		expect(await response.text()).toBe(JSON.stringify({ detail: "The request signature is not valid.", code: "bad_signature" }));
	});

	it("403 bad_signature for a Signature that is not 32 bytes, saying so", async () => {
		const h = harness();
		await expectRejected(h, await v2Request({ headers: { signature: "sig1=:AAAA:" } }), 403, "bad_signature", {
			detail: "Signature must be 32 bytes (an HMAC-SHA256)",
		});
	});

	it("408 clock_skew for a created too far in the past, with X-Server-Time", async () => {
		const h = harness();
		const response = await expectRejected(h, await v2Request({ created: CREATED - 301 }), 408, "clock_skew", {
			detail: "created must be within 300 s of the server time (see X-Server-Time)",
		});
		expect(response.headers.get("x-server-time")).toBe(String(NOW));
	});

	it("408 clock_skew for a created too far in the future (the skew is absolute)", async () => {
		const h = harness();
		await expectRejected(h, await v2Request({ created: CREATED + 301 }), 408, "clock_skew", {
			detail: "created must be within 300 s of the server time (see X-Server-Time)",
		});
		expect(sampleValue(await scrape(h), "agent_auth_skew_milliseconds_count")).toBe(1);
		expect((await harness().fetch(await v2Request({ created: CREATED + 300 }))).status).toBe(200);
	});

	it("408 clock_skew for a created in milliseconds, telling the client it looks like milliseconds", async () => {
		const h = harness();
		await expectRejected(h, await v2Request({ created: NOW }), 408, "clock_skew", {
			detail: "created must be seconds since the epoch, and this one looks like milliseconds (see X-Server-Time)",
		});
	});

	it("408 clock_skew for an expires that has passed by the clock, though it is after created", async () => {
		const h = harness();
		// created 100 s ago (inside the window), expires 60 s after it: past by the clock, not by created.
		const response = await expectRejected(h, await v2Request({ created: CREATED - 100, expires: CREATED - 40 }), 408, "clock_skew", {
			detail: "expires has passed (see X-Server-Time)",
		});
		expect(response.headers.get("x-server-time")).toBe(String(NOW));
		expect((await harness().fetch(await v2Request({ created: CREATED - 100, expires: CREATED }))).status).toBe(200);
	});

	it("400 digest_mismatch for a body that is not the digested one, after the signature", async () => {
		const h = harness();
		await expectRejected(h, withHeaders(await v2Request(), () => {}, '{"messages":[{"role":"user","content":"changed"}]}'), 400, "digest_mismatch", {
			detail: "Content-Digest must hold the sha-256 of the body as received",
		});
	});

	it("400 digest_mismatch for a signed POST whose body was stripped in transit: never forwarded empty", async () => {
		const signed = await v2Request();
		const headers = new Headers(signed.headers);
		headers.delete("content-length");
		for (const stripped of [new Request(signed.url, { method: "POST", headers }), new Request(signed.url, { method: "POST", headers, body: "" })]) {
			const h = harness();
			await expectRejected(h, stripped, 400, "digest_mismatch", { detail: "Content-Digest must hold the sha-256 of the body as received" });
		}
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
		await expectRejected(harness(), post, 400, "invalid_signature_input", { detail: 'Signature-Input must cover "content-digest" on a POST' });
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
		await expectRejected(harness(), withHeaders(signed, (headers) => headers.set("signature", twoSignatures)), 400, "invalid_signature_input", {
			detail: "Signature must hold exactly one signature",
		});
		const twoInputs = `${signed.headers.get("signature-input")}, sig2=("@method")`;
		await expectRejected(harness(), withHeaders(signed, (headers) => headers.set("signature-input", twoInputs)), 400, "invalid_signature_input", {
			detail: "Signature-Input must hold exactly one signature",
		});
		// Repeated header lines are joined by the runtime into one dictionary: two members too.
		const repeated = new Headers(signed.headers);
		repeated.append("signature", "sig2=:AAAA:");
		await expectRejected(harness(), new Request(signed.url, { method: "POST", headers: repeated, body: BODY }), 400, "invalid_signature_input", {
			detail: "Signature must hold exactly one signature",
		});
	});

	it("a label repeated in Signature, in one line or two: 400, though the library keeps only the last", async () => {
		const signed = await v2Request();
		const valid = signed.headers.get("signature")!;
		const detail = "Signature must not name a label twice";
		await expectRejected(harness(), withHeaders(signed, (headers) => headers.set("signature", "sig1=:AAAA:, sig1=:AAAA:")), 400, "invalid_signature_input", { detail });
		// The issue's own example: ":A:" is not base64 either, so the field does not even parse.
		await expectRejected(harness(), withHeaders(signed, (headers) => headers.set("signature", "sig1=:A:, sig1=:A:")), 400, "invalid_signature_input", {
			detail: "Signature must be a Structured Field dictionary (RFC 8941)",
		});
		// The first member garbage, the last the true signature: the last alone would verify.
		await expectRejected(harness(), withHeaders(signed, (headers) => headers.set("signature", `sig1=:AAAA:, ${valid}`)), 400, "invalid_signature_input", { detail });
		const twoLines = new Headers(signed.headers);
		twoLines.set("signature", "sig1=:AAAA:");
		twoLines.append("signature", valid);
		await expectRejected(harness(), new Request(signed.url, { method: "POST", headers: twoLines, body: BODY }), 400, "invalid_signature_input", { detail });
	});

	it("a label repeated in Signature-Input, in one line or two: 400, whatever keyid the first names", async () => {
		const h = harness({ HMAC_CLIENTS: JSON.stringify({ [CLIENT_ID]: SECRET, other: SECRET }) });
		const signed = await v2Request();
		const valid = signed.headers.get("signature-input")!;
		const other = valid.replace(`keyid="${CLIENT_ID}"`, 'keyid="other"');
		const detail = "Signature-Input must not name a label twice";
		await expectRejected(h, withHeaders(signed, (headers) => headers.set("signature-input", `${other}, ${valid}`)), 400, "invalid_signature_input", { detail });
		const twoLines = new Headers(signed.headers);
		twoLines.set("signature-input", other);
		twoLines.append("signature-input", valid);
		await expectRejected(harness(), new Request(signed.url, { method: "POST", headers: twoLines, body: BODY }), 400, "invalid_signature_input", { detail });
		// The same request with the label once is accepted: the refusal is the repeat's.
		expect((await harness().fetch(signed)).status).toBe(200);
	});

	it("an algorithm repeated in Content-Digest: 400", async () => {
		const signed = await v2Request();
		const digest = signed.headers.get("content-digest")!;
		await expectRejected(harness(), withHeaders(signed, (headers) => headers.set("content-digest", `sha-256=:${btoa("x".repeat(32))}:, ${digest}`)), 400, "invalid_signature_input", {
			detail: "Content-Digest must not name an algorithm twice",
		});
	});

	it("a label mismatch between Signature-Input and Signature: 400", async () => {
		const signed = await v2Request();
		const [, member] = [...parseDictionary(signed.headers.get("signature")!)][0]!;
		const relabelled = serializeDictionary(new Map([["sig2", member]]));
		await expectRejected(harness(), withHeaders(signed, (headers) => headers.set("signature", relabelled)), 400, "invalid_signature_input", {
			detail: "Signature must use the label of Signature-Input",
		});
	});

	it("the covered Content-Type changed: 403", async () => {
		const signed = await v2Request({ coveredHeaders: { "content-type": "application/json" } });
		await expectRejected(harness(), withHeaders(signed, (headers) => headers.set("content-type", "text/plain")), 403, "bad_signature");
		await expectRejected(harness(), withHeaders(signed, (headers) => headers.delete("content-type")), 400, "invalid_signature_input", {
			detail: "Signature-Input must cover only headers the request carries",
		});
	});
});

describe("the @signature-params line (docs/protocol.md, 'The signature base')", () => {
	/** `Signature: sig1=:...:` over `base` with the harness's secret. */
	async function signatureOver(base: string): Promise<string> {
		const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(SECRET), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
		const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(base)));
		return `sig1=:${btoa(String.fromCharCode(...mac))}:`;
	}

	/** A POST /agent/chat whose Signature-Input member is `sent`, signed over a base that ends with `signedParams`. */
	async function postWith(sent: string, signedParams: string): Promise<Request> {
		const digest = (await v2Request()).headers.get("content-digest")!;
		const base = ['"@method": POST', '"@path": /agent/chat', '"@query": ?', `"content-digest": ${digest}`, `"@signature-params": ${signedParams}`].join("\n");
		const headers = new Headers({ "content-type": "application/json", "content-digest": digest, "signature-input": `sig1=${sent}`, signature: await signatureOver(base) });
		return new Request("https://gateway.test/agent/chat", { method: "POST", headers, body: BODY });
	}

	const COMPONENTS = '("@method" "@path" "@query" "content-digest")';
	const nonce = (n: number) => `params-line-nonce-${String(n).padStart(4, "0")}`;

	it("is the member serialized anew from what was parsed: spaces the parser tolerates verify against the serialized form, not the text sent", async () => {
		const params = (n: number) => `;created=${CREATED};keyid="${CLIENT_ID}";nonce="${nonce(n)}"`;
		const spaced = (n: number) => `${COMPONENTS.replaceAll('" "', '"  "')}${params(n)}`;
		const h = harness();
		expect((await h.fetch(await postWith(`${COMPONENTS}${params(1)}`, `${COMPONENTS}${params(1)}`))).status).toBe(200);
		expect((await h.fetch(await postWith(spaced(2), `${COMPONENTS}${params(2)}`))).status).toBe(200);
		await expectRejected(harness(), await postWith(spaced(3), spaced(3)), 403, "bad_signature");
	});

	it("keeps the client's order of parameters", async () => {
		const reordered = `${COMPONENTS};nonce="${nonce(4)}";keyid="${CLIENT_ID}";created=${CREATED}`;
		expect((await harness().fetch(await postWith(reordered, reordered))).status).toBe(200);
		const sorted = `${COMPONENTS};created=${CREATED};keyid="${CLIENT_ID}";nonce="${nonce(5)}"`;
		await expectRejected(harness(), await postWith(`${COMPONENTS};nonce="${nonce(5)}";keyid="${CLIENT_ID}";created=${CREATED}`, sorted), 403, "bad_signature");
	});
});
