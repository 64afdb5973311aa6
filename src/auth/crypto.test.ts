import { describe, expect, it } from "vitest";
import vectors from "../../test/vectors/hmac-v1.json";
import type { HmacVector } from "../../test/fixtures/hmac-vectors.ts";
import { signRequest } from "../client/sign.ts";
import { canonicalString, fromHex, sha256Hex, utf8 } from "./crypto.ts";
import { Keyring, verifySignature } from "./keyring.ts";

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
		const verify = (hex: string) => verifySignature(keyring, "any", fromHex(hex), utf8(vector.canonical));
		expect(await verify(vector.signature)).toEqual({ ok: true, slot: 0 });
		const flipped = (vector.signature[0] === "0" ? "1" : "0") + vector.signature.slice(1);
		expect(await verify(flipped)).toEqual({ ok: false, reason: "bad_signature" });
	});
});
