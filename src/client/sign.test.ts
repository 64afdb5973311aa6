import { afterEach, describe, expect, it, vi } from "vitest";
import { canonicalString, hmacSha256Hex, importHmacKey, sha256Hex } from "../auth/crypto.ts";
import { signRequest } from "./sign.ts";

describe("signRequest", () => {
	it("refuses an empty secret", async () => {
		await expect(signRequest({ clientId: "svc", secret: "", method: "POST", path: "/agent/chat" })).rejects.toThrow(/secret is empty/);
	});

	it("sends the client id as given, and signs the bytes it returns", async () => {
		const body = new Uint8Array([0x7b, 0x7d, 0xff]);
		const { headers, body: sent } = await signRequest({ clientId: "Svc.A_1", secret: "k", method: "post", path: "/agent/x", body, timestamp: 42 });
		expect(headers["X-Client-Id"]).toBe("Svc.A_1");
		expect(headers["X-Timestamp"]).toBe("42");
		expect(sent).toEqual(body);
		const expected = await hmacSha256Hex(
			await importHmacKey("k", "sign"),
			canonicalString({ method: "POST", path: "/agent/x", timestamp: "42", bodySha256: await sha256Hex(body) }),
		);
		expect(headers["X-Signature"]).toBe(expected);
	});

	it("v1 signs the path the gateway verifies: a request to the /api alias signs it without /api (docs/protocol.md, The path)", async () => {
		const input = { clientId: "svc", secret: "k", method: "POST", body: "{}", timestamp: 42 };
		const alias = await signRequest({ ...input, path: "/api/agent/chat" });
		const plain = await signRequest({ ...input, path: "/agent/chat" });
		expect(alias.headers["X-Signature"]).toBe(plain.headers["X-Signature"]);
		// Only the alias's prefix goes: a path that merely starts with the letters is signed as it is.
		expect((await signRequest({ ...input, path: "/apix/agent/chat" })).headers["X-Signature"]).not.toBe(plain.headers["X-Signature"]);
	});

	it("refuses a path with a query, which would sign what the gateway never verifies (v1 signs no query; v2 takes it as query)", async () => {
		await expect(signRequest({ clientId: "svc", secret: "k", method: "GET", path: "/agent/stream?tokens=3" })).rejects.toThrow(/path must not hold the query/);
		await expect(signRequest({ scheme: "v2", clientId: "svc", secret: "k", method: "GET", path: "/agent/stream?tokens=3" })).rejects.toThrow(/path must not hold the query/);
	});

	it("v2 refuses to cover the Signature field, which no signature can sign (the gateway answers 400)", async () => {
		await expect(signRequest({ scheme: "v2", clientId: "svc", secret: "k", method: "GET", path: "/agent/stream", coveredHeaders: { Signature: "x" } })).rejects.toThrow(/cannot cover Signature/);
	});

	it("without a timestamp, signs the current time in milliseconds", async () => {
		const before = Date.now();
		const { headers } = await signRequest({ clientId: "svc", secret: "k", method: "GET", path: "/agent/x" });
		const after = Date.now();
		const timestamp = Number(headers["X-Timestamp"]);
		expect(timestamp).toBeGreaterThanOrEqual(before);
		expect(timestamp).toBeLessThanOrEqual(after);
	});
});

describe("signRequest's tokenLimit (X-Token-Limit)", () => {
	it("v1 sends it beside the signature, which stays that of the request without it", async () => {
		const input = { clientId: "svc", secret: "k", method: "POST", path: "/agent/chat", body: "{}", timestamp: 42 };
		const plain = await signRequest(input);
		const limited = await signRequest({ ...input, tokenLimit: 512 });
		expect(limited.headers["X-Token-Limit"]).toBe("512");
		expect(limited.headers["X-Signature"]).toBe(plain.headers["X-Signature"]);
		expect(plain.headers).not.toHaveProperty("X-Token-Limit");
	});

	it("v2 covers it: the header is sent and listed in Signature-Input", async () => {
		const input = { scheme: "v2" as const, clientId: "svc", secret: "k", method: "POST", path: "/agent/chat", body: "{}", created: 1, nonce: "nonce-0123456789abcdef" };
		const limited = await signRequest({ ...input, tokenLimit: 64 });
		expect(limited.headers["x-token-limit"]).toBe("64");
		expect(limited.headers["Signature-Input"]).toBe('sig1=("@method" "@path" "@query" "x-token-limit" "content-digest");created=1;keyid="svc";nonce="nonce-0123456789abcdef"');
		// The same as covering the header by hand, so the gateway's verifier takes it like any covered header.
		const byHand = await signRequest({ ...input, coveredHeaders: { "x-token-limit": "64" } });
		expect(limited.headers.Signature).toBe(byHand.headers.Signature);
		await expect(signRequest({ ...input, tokenLimit: 64, coveredHeaders: { "X-Token-Limit": "8" } })).rejects.toThrow(/not both/);
	});

	it.each([0, -1, 1.5, Number.NaN, 2 ** 53])("refuses %s before signing anything", async (tokenLimit) => {
		await expect(signRequest({ clientId: "svc", secret: "k", method: "GET", path: "/agent/x", tokenLimit })).rejects.toThrow("tokenLimit must be a whole number from 1");
		await expect(signRequest({ scheme: "v2", clientId: "svc", secret: "k", method: "GET", path: "/agent/x", tokenLimit })).rejects.toThrow("tokenLimit must be a whole number from 1");
	});
});

describe("signRequest v2's defaults and spellings", () => {
	afterEach(() => vi.restoreAllMocks());
	const base = { scheme: "v2" as const, clientId: "svc", secret: "k", path: "/agent/chat", created: 1_700_000_000, nonce: "nonce-0123456789abcdef" };

	it("signs a lowercase method as the gateway sees it: upper case, a post with its Content-Digest", async () => {
		const lower = await signRequest({ ...base, method: "post", body: "{}" });
		const upper = await signRequest({ ...base, method: "POST", body: "{}" });
		expect(lower.headers).toEqual(upper.headers);
		expect(lower.headers["Content-Digest"]).toBeDefined();
	});

	it("signs a query given without its ? as the one given with it", async () => {
		const bare = await signRequest({ ...base, method: "GET", query: "tokens=3" });
		const marked = await signRequest({ ...base, method: "GET", query: "?tokens=3" });
		expect(bare.headers.Signature).toBe(marked.headers.Signature);
		expect(bare.headers.Signature).not.toBe((await signRequest({ ...base, method: "GET" })).headers.Signature);
	});

	it("signs a covered header's value as the gateway reads it, outer whitespace trimmed, and sends that value", async () => {
		const padded = await signRequest({ ...base, method: "GET", coveredHeaders: { "X-Trace": "  abc  " } });
		const plain = await signRequest({ ...base, method: "GET", coveredHeaders: { "x-trace": "abc" } });
		expect(padded.headers["x-trace"]).toBe("abc");
		expect(padded.headers.Signature).toBe(plain.headers.Signature);
	});

	it("names both fields' member by the label given (sig1 by default)", async () => {
		const labelled = await signRequest({ ...base, method: "GET", label: "proxy" });
		expect(labelled.headers["Signature-Input"]).toMatch(/^proxy=\(/);
		expect(labelled.headers.Signature).toMatch(/^proxy=:/);
		expect((await signRequest({ ...base, method: "GET" })).headers.Signature).toMatch(/^sig1=:/);
	});

	it("defaults created to the whole second now (never a second ahead) and the nonce to 22 random base64url characters", async () => {
		vi.spyOn(Date, "now").mockReturnValue(1_700_000_000_999);
		const { headers } = await signRequest({ scheme: "v2", clientId: "svc", secret: "k", method: "GET", path: "/agent/chat" });
		expect(headers["Signature-Input"]).toContain(";created=1700000000;");
		const nonce = /;nonce="([^"]*)"/.exec(headers["Signature-Input"])![1]!;
		expect(nonce).toMatch(/^[A-Za-z0-9_-]{22}$/);
	});
});
