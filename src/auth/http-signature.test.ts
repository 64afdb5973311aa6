import { type InnerList, parseDictionary, serializeDictionary, Token } from "structured-headers";
import { describe, expect, it } from "vitest";
import vectors from "../../test/vectors/hmac-v2.json";
import type { HmacV2Vector, HmacV2Vectors } from "../../test/fixtures/hmac-vectors.ts";
import { signRequest } from "../client/sign.ts";
import { importHmacKey, Keyring, toHex, utf8, verifySignature } from "./crypto.ts";
import { signatureBase, signatureParams, type ComponentValues } from "./http-signature-base.ts";
import { contentDigest, equalBytes, signBase } from "./http-signature-crypto.ts";
import { parseSignatureFields, sha256Member } from "./http-signature-fields.ts";

const { cases, rfc9421_b25: rfc } = vectors as HmacV2Vectors;
const named = cases.map((c) => [c.name, c] as const);

function valuesOf(vector: HmacV2Vector): ComponentValues {
	const url = new URL(vector.target, `https://${vector.headers.host ?? "gateway.test"}`);
	return {
		method: vector.method,
		authority: url.host,
		path: url.pathname,
		query: url.search,
		header: (name) => vector.headers[name] ?? null,
	};
}

/** The vector's Signature-Input member, read with the library (not with the code under test). */
function memberOf(field: string): { label: string; member: InnerList } {
	const [label, member] = [...parseDictionary(field)][0]!;
	return { label, member: member as InnerList };
}

describe("structured-headers in workerd", () => {
	it("parses and serializes a dictionary with an inner list, strings, integers, tokens and byte sequences", () => {
		const field = 'sig1=("@method" "@path");created=1;keyid="k", d=:AQID:, t=tok;x=?0';
		const parsed = parseDictionary(field);
		expect([...parsed.keys()]).toEqual(["sig1", "d", "t"]);
		expect(parsed.get("t")![0]).toBeInstanceOf(Token);
		expect(new Uint8Array(parsed.get("d")![0] as ArrayBuffer)).toEqual(new Uint8Array([1, 2, 3]));
		expect(serializeDictionary(parsed)).toBe(field);
	});
});

describe("scheme v2 test vectors (independent implementation)", () => {
	it("has cases to check", () => {
		expect(cases.length).toBeGreaterThanOrEqual(5);
	});

	it.each(named)("%s: the fields parse within the profile", (_name, vector) => {
		const result = parseSignatureFields({ method: vector.method, headers: new Headers(vector.headers) });
		if (!result.ok) throw new Error(`refused: ${result.code} ${result.field} ${result.rule}`);
		const { input, signature, digest } = result.fields;
		const { label, member } = memberOf(vector.headers["signature-input"]!);
		expect(input.label).toBe(label);
		expect(input.components).toEqual(member[0].map(([name]) => name));
		expect(input.keyid).toBe(member[1].get("keyid"));
		expect(input.nonce).toBe(member[1].get("nonce"));
		expect(input.created).toBe(member[1].get("created"));
		expect(input.expires).toBe(member[1].get("expires") ?? null);
		// The serialized member is the base's last line, byte for byte.
		expect(`"@signature-params": ${input.params}`).toBe(vector.signature_base.split("\n").at(-1));
		expect(toHex(signature)).toBe(vector.signature_hex);
		if (vector.headers["content-digest"] === undefined) expect(digest).toBeNull();
		else expect(digest).toEqual(sha256Member(vector.headers["content-digest"]));
	});

	it.each(named)("%s: Content-Digest of the body", async (_name, vector) => {
		const digest = await contentDigest(utf8(vector.body));
		if (vector.headers["content-digest"] !== undefined) expect(digest).toBe(vector.headers["content-digest"]);
		else expect(digest).toBe("sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"); // the empty body: GETs send none
	});

	it.each(named)("%s: the signature base", (_name, vector) => {
		const result = parseSignatureFields({ method: vector.method, headers: new Headers(vector.headers) });
		if (!result.ok) throw new Error(`refused: ${result.code} ${result.field} ${result.rule}`);
		expect(signatureBase(result.fields.input.components, result.fields.input.params, valuesOf(vector))).toBe(vector.signature_base);
	});

	it.each(named)("%s: HMAC-SHA256 of the base", async (_name, vector) => {
		const signature = await signBase(await importHmacKey(vector.secret, "sign"), vector.signature_base);
		expect(toHex(signature)).toBe(vector.signature_hex);
	});

	it.each(named)("%s: the verifier accepts it, and refuses it with one bit changed", async (_name, vector) => {
		const { member } = memberOf(vector.headers["signature-input"]!);
		const keyid = member[1].get("keyid") as string;
		const keyring = new Keyring({ sharedSecrets: [], clientSecrets: new Map([[keyid, ["an-older-secret", vector.secret]]]) });
		const signature = fromHexBytes(vector.signature_hex);
		expect(await verifySignature(keyring, keyid, signature, utf8(vector.signature_base))).toEqual({ ok: true, slot: 1 });
		signature[0]! ^= 1;
		expect(await verifySignature(keyring, keyid, signature, utf8(vector.signature_base))).toEqual({ ok: false, reason: "bad_signature" });
		expect(await verifySignature(keyring, "someone-else", signature, utf8(vector.signature_base))).toEqual({ ok: false, reason: "unknown_client" });
	});

	it.each(named)("%s: the client signer, given the vector's inputs, reproduces the fields", async (_name, vector) => {
		const { covered, keyid, created, nonce, expires, alg } = vector.inputs;
		const url = new URL(vector.target, "https://unused.test");
		const coveredHeaders = Object.fromEntries(
			covered.filter((name) => !name.startsWith("@") && name !== "content-digest").map((name) => [name, vector.headers[name]!]),
		);
		const { headers, body } = await signRequest({
			scheme: "v2",
			clientId: keyid,
			secret: vector.secret,
			method: vector.method,
			path: url.pathname,
			query: url.search,
			body: vector.body,
			created,
			nonce,
			expires,
			alg: alg === "hmac-sha256",
			authority: covered.includes("@authority") ? vector.headers.host : undefined,
			coveredHeaders,
		});
		expect(vector.inputs.label).toBe("sig1");
		expect(headers["Signature-Input"]).toBe(vector.headers["signature-input"]);
		expect(headers.Signature).toBe(vector.headers.signature);
		expect(headers["Content-Digest"]).toBe(vector.headers["content-digest"]);
		for (const [name, value] of Object.entries(coveredHeaders)) expect(headers[name]).toBe(value);
		expect(new TextDecoder().decode(body)).toBe(vector.body);
	});
});

describe("RFC 9421 Appendix B.2.5 (hmac-sha256)", () => {
	const lines = rfc.request.split("\n");
	const [method, target] = lines[0]!.split(" ") as [string, string];
	const headers = new Headers(lines.slice(1).map((line) => line.split(": ", 2) as [string, string]));
	const url = new URL(target, `https://${headers.get("host")}`);
	const values: ComponentValues = {
		method,
		authority: url.host,
		path: url.pathname,
		query: url.search,
		header: (name) => headers.get(name),
	};

	it("the base builder reproduces the RFC's signature base with the RFC's covered set", () => {
		const { member } = memberOf(rfc.signature_input);
		const components = member[0].map(([name]) => name as string);
		expect(components).toEqual(["date", "@authority", "content-type"]);
		expect(signatureBase(components, signatureParams(member), values)).toBe(rfc.signature_base);
	});

	it("HMAC-SHA256 with the RFC's key gives the RFC's signature", async () => {
		const key = await crypto.subtle.importKey("raw", base64Bytes(rfc.key_base64), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
		const signature = await signBase(key, rfc.signature_base);
		expect(serializeDictionary({ "sig-b25": signature })).toBe(rfc.signature);
	});

	it("the gateway's profile refuses the RFC's covered set", () => {
		headers.set("signature-input", rfc.signature_input);
		headers.set("signature", rfc.signature);
		// The RFC's POST has no Content-Digest: refused at step 1 already.
		expect(parseSignatureFields({ method, headers })).toEqual({ ok: false, code: "missing_headers", field: "Content-Digest", rule: "is missing (required on a POST)" });
		// With one, it reaches the profile: no @method, @path, @query nor content-digest.
		headers.set("content-digest", "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
		expect(parseSignatureFields({ method, headers })).toEqual({ ok: false, code: "invalid_signature_input", field: "Signature-Input", rule: 'must cover "@method"' });
	});
});

describe("equalBytes", () => {
	it("compares length and every byte", () => {
		expect(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
		expect(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
		expect(equalBytes(new Uint8Array([2, 2]), new Uint8Array([1, 2]))).toBe(false);
		expect(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3]))).toBe(false);
	});
});

function fromHexBytes(hex: string): Uint8Array<ArrayBuffer> {
	return new Uint8Array(hex.match(/../g)!.map((byte) => Number.parseInt(byte, 16)));
}

function base64Bytes(text: string): Uint8Array<ArrayBuffer> {
	return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}
