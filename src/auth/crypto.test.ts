import { describe, expect, it } from "vitest";
import vectors from "../../test/vectors/hmac-v1.json";
import type { HmacVector } from "../../test/fixtures/hmac-vectors.ts";
import { signRequest } from "../client/sign.ts";
import { canonicalString, sha256Hex, utf8 } from "./crypto.ts";
import { Keyring } from "./keyring.ts";

const cases = (vectors as { cases: HmacVector[] }).cases;

describe("scheme v1 test vectors (independent implementation)", () => {
	it("has cases to check", () => {
		expect(cases.length).toBeGreaterThanOrEqual(8);
	});

	it.each(cases.map((c) => [c.name, c] as const))("%s: body hash and canonical string", async (_name, vector) => {
		const bodySha256 = await sha256Hex(utf8(vector.body));
		expect(bodySha256).toBe(vector.body_sha256);
		expect(canonicalString({ method: vector.method, path: vector.path, timestamp: vector.timestamp, bodySha256 })).toBe(vector.canonical);
	});

	it.each(cases.map((c) => [c.name, c] as const))("%s: the signer reproduces the signature", async (_name, vector) => {
		const { headers, body } = await signRequest({
			clientId: "vector-client",
			secret: vector.secret,
			method: vector.method,
			path: vector.path,
			body: vector.body,
			timestamp: Number(vector.timestamp),
		});
		expect(headers["X-Signature"]).toBe(vector.signature);
		expect(headers["X-Timestamp"]).toBe(vector.timestamp);
		expect(new TextDecoder().decode(body)).toBe(vector.body);
	});

	it.each(cases.map((c) => [c.name, c] as const))("%s: the verifier accepts it, and refuses it with one bit changed", async (_name, vector) => {
		const keyring = new Keyring({ sharedSecrets: [vector.secret], clientSecrets: new Map() });
		expect(await keyring.verify("any", vector.signature, vector.canonical)).toEqual({ ok: true, slot: 0 });
		const flipped = (vector.signature[0] === "0" ? "1" : "0") + vector.signature.slice(1);
		expect(await keyring.verify("any", flipped, vector.canonical)).toEqual({ ok: false, reason: "bad_signature" });
	});
});

describe("Keyring", () => {
	const canonical = "POST\n/agent/chat\n1\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

	async function signature(secret: string): Promise<string> {
		const { headers } = await signRequest({ clientId: "c", secret, method: "POST", path: "/agent/chat", timestamp: 1 });
		return headers["X-Signature"];
	}

	it("verifies with any secret of a rotation list and reports its slot", async () => {
		const keyring = new Keyring({ sharedSecrets: [], clientSecrets: new Map([["svc", ["new", "old"]]]) });
		expect(await keyring.verify("svc", await signature("new"), canonical)).toEqual({ ok: true, slot: 0 });
		expect(await keyring.verify("svc", await signature("old"), canonical)).toEqual({ ok: true, slot: 1 });
		expect(await keyring.verify("svc", await signature("other"), canonical)).toEqual({ ok: false, reason: "bad_signature" });
	});

	it("calls an unlisted client unknown when there is no shared secret, even if its signature matches another's secret", async () => {
		const keyring = new Keyring({ sharedSecrets: [], clientSecrets: new Map([["svc", ["s"]]]) });
		expect(await keyring.verify("someone", await signature("s"), canonical)).toEqual({ ok: false, reason: "unknown_client" });
		expect(await keyring.verify("__proto__", await signature("s"), canonical)).toEqual({ ok: false, reason: "unknown_client" });
		expect(await keyring.verify("constructor", await signature("s"), canonical)).toEqual({ ok: false, reason: "unknown_client" });
	});

	it("verifies unlisted clients with the shared secrets, and listed ones only with their own", async () => {
		const keyring = new Keyring({ sharedSecrets: ["shared"], clientSecrets: new Map([["svc", ["own"]]]) });
		expect(await keyring.verify("other", await signature("shared"), canonical)).toEqual({ ok: true, slot: 0 });
		expect(await keyring.verify("svc", await signature("shared"), canonical)).toEqual({ ok: false, reason: "bad_signature" });
	});

	it("imports each secret once per isolate, however many requests verify", async () => {
		const keyring = new Keyring({ sharedSecrets: ["a", "b"], clientSecrets: new Map() });
		const original = crypto.subtle.importKey.bind(crypto.subtle);
		let imports = 0;
		crypto.subtle.importKey = ((...args: Parameters<typeof original>) => {
			imports++;
			return original(...args);
		}) as typeof crypto.subtle.importKey;
		try {
			const sig = await signature("b");
			imports = 0;
			await Promise.all(Array.from({ length: 20 }, () => keyring.verify("x", sig, canonical)));
			expect(imports).toBe(2);
		} finally {
			crypto.subtle.importKey = original;
		}
	});
});
