import { afterEach, describe, expect, it, vi } from "vitest";
import vectors from "../../test/vectors/hmac-v1.json";
import type { HmacVector } from "../../test/fixtures/hmac-vectors.ts";
import { signRequest } from "../client/sign.ts";
import { canonicalString, fromHex, hmacSha256Hex, importHmacKey, Keyring, type KeySource, sha256Hex, utf8, verifySignature } from "./crypto.ts";

const cases = (vectors as { cases: HmacVector[] }).cases;

describe("hex and the body hash", () => {
	it("fromHex reads every byte value, in either case", () => {
		const all = Uint8Array.from({ length: 256 }, (_, byte) => byte);
		const hex = Array.from(all, (byte) => byte.toString(16).padStart(2, "0")).join("");
		expect(fromHex(hex)).toEqual(all);
		expect(fromHex(hex.toUpperCase())).toEqual(all);
		expect(fromHex("")).toEqual(new Uint8Array(0));
	});

	it("sha256Hex of no bytes is the digest's, whatever holds them; of one byte, not that", async () => {
		const digest = async (bytes: BufferSource) => Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
		const empty = await digest(new Uint8Array(0));
		expect(await sha256Hex(new ArrayBuffer(0))).toBe(empty);
		expect(await sha256Hex(new Uint8Array(0))).toBe(empty);
		expect(await sha256Hex(new Uint8Array(8).subarray(4, 4))).toBe(empty);
		expect(await sha256Hex(new Uint8Array([0]))).toBe(await digest(new Uint8Array([0])));
		expect(await sha256Hex(new Uint8Array([0]))).not.toBe(empty);
	});
});

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

const MESSAGE = "POST\n/agent/chat\n1763000000000\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

async function sign(secret: string, message = MESSAGE): Promise<string> {
	return hmacSha256Hex(await importHmacKey(secret, "sign"), message);
}

const verify = (keys: KeySource, clientId: string, signatureHex: string, message = MESSAGE) =>
	verifySignature(keys, clientId, fromHex(signatureHex), utf8(message));

describe("Keyring", () => {
	afterEach(() => {
		vi.restoreAllMocks();
	});

	it("keeps each client's own secrets apart, whichever client is verified first", async () => {
		const keyring = new Keyring({
			sharedSecrets: ["shared-secret"],
			clientSecrets: new Map([
				["alpha", ["alpha-secret"]],
				["beta", ["beta-new", "beta-old"]],
			]),
		});
		expect(await verify(keyring, "alpha", await sign("alpha-secret"))).toEqual({ ok: true, slot: 0 });
		// Beta's keys must not be alpha's (already imported) keys.
		expect(await verify(keyring, "beta", await sign("beta-old"))).toEqual({ ok: true, slot: 1 });
		expect(await verify(keyring, "beta", await sign("beta-new"))).toEqual({ ok: true, slot: 0 });
		expect(await verify(keyring, "beta", await sign("alpha-secret"))).toEqual({ ok: false, reason: "bad_signature" });
		expect(await verify(keyring, "alpha", await sign("beta-new"))).toEqual({ ok: false, reason: "bad_signature" });
		// A listed client does not fall back to the shared secret; an unlisted one uses it.
		expect(await verify(keyring, "alpha", await sign("shared-secret"))).toEqual({ ok: false, reason: "bad_signature" });
		expect(await verify(keyring, "gamma", await sign("shared-secret"))).toEqual({ ok: true, slot: 0 });
	});

	it("a client whose id is a word the cache could use (shared) keeps its own keys, apart from the shared secret's", async () => {
		const keyring = new Keyring({ sharedSecrets: ["shared-secret"], clientSecrets: new Map([["shared", ["own-secret"]]]) });
		expect(await verify(keyring, "anyone", await sign("shared-secret"))).toEqual({ ok: true, slot: 0 });
		expect(await verify(keyring, "shared", await sign("own-secret"))).toEqual({ ok: true, slot: 0 });
		expect(await verify(keyring, "shared", await sign("shared-secret"))).toEqual({ ok: false, reason: "bad_signature" });
	});

	it("never serves another letter case of a registered id with the shared secret: unknown, as an unlisted id without a shared secret", async () => {
		const keyring = new Keyring({ sharedSecrets: ["shared-secret"], clientSecrets: new Map([["alice", ["alice-secret"]]]) });
		const shared = await sign("shared-secret");
		for (const borrowed of ["ALICE", "Alice", "aLiCe"]) {
			expect(await keyring.keysFor(borrowed)).toEqual({ status: "unknown" });
			expect(await verify(keyring, borrowed, shared)).toEqual({ ok: false, reason: "unknown_client" });
			expect(await verify(keyring, borrowed, await sign("alice-secret"))).toEqual({ ok: false, reason: "unknown_client" });
		}
		// The registered spelling keeps its own secret; an unrelated id keeps the shared one.
		expect(await verify(keyring, "alice", await sign("alice-secret"))).toEqual({ ok: true, slot: 0 });
		expect(await verify(keyring, "alicia", shared)).toEqual({ ok: true, slot: 0 });
	});

	it("never serves the lowercase of a registered id that has capitals with the shared secret either", async () => {
		const keyring = new Keyring({ sharedSecrets: ["shared-secret"], clientSecrets: new Map([["Alice", ["alice-secret"]]]) });
		for (const borrowed of ["alice", "ALICE", "aLICE"]) {
			expect(await keyring.keysFor(borrowed), borrowed).toEqual({ status: "unknown" });
			expect(await verify(keyring, borrowed, await sign("shared-secret"))).toEqual({ ok: false, reason: "unknown_client" });
		}
		expect(await verify(keyring, "Alice", await sign("alice-secret"))).toEqual({ ok: true, slot: 0 });
	});

	it("answers unknown for a client with no secret at all, and is configured by either kind of secret", async () => {
		const onlyClients = new Keyring({ sharedSecrets: [], clientSecrets: new Map([["alpha", ["alpha-secret"]]]) });
		expect(onlyClients.configured).toBe(true);
		for (const id of ["beta", "__proto__", "constructor"]) {
			expect(await verify(onlyClients, id, await sign("alpha-secret"))).toEqual({ ok: false, reason: "unknown_client" });
		}
		expect(new Keyring({ sharedSecrets: ["s"], clientSecrets: new Map() }).configured).toBe(true);
		expect(new Keyring({ sharedSecrets: [], clientSecrets: new Map() }).configured).toBe(false);
	});

	it("verifies over the exact message: one changed byte is a bad signature", async () => {
		const keyring = new Keyring({ sharedSecrets: ["shared-secret"], clientSecrets: new Map() });
		const signature = await sign("shared-secret");
		expect(await verify(keyring, "any", signature, `${MESSAGE} `)).toEqual({ ok: false, reason: "bad_signature" });
		expect(await verify(keyring, "any", signature)).toEqual({ ok: true, slot: 0 });
	});

	it("imports each list once per isolate, however many requests verify at once", async () => {
		const keyring = new Keyring({ sharedSecrets: ["a", "b"], clientSecrets: new Map() });
		const signature = await sign("b");
		const importKey = vi.spyOn(crypto.subtle, "importKey");
		const verdicts = await Promise.all(Array.from({ length: 20 }, () => verify(keyring, "x", signature)));
		expect(verdicts.every((verdict) => verdict.ok && verdict.slot === 1)).toBe(true);
		expect(importKey).toHaveBeenCalledTimes(2);
	});

	it("does not keep a failed key import: the next request imports again", async () => {
		const keyring = new Keyring({ sharedSecrets: ["shared-secret"], clientSecrets: new Map() });
		const signature = await sign("shared-secret");
		vi.spyOn(crypto.subtle, "importKey").mockRejectedValueOnce(new Error("import failed"));
		await expect(verify(keyring, "any", signature)).rejects.toThrow("import failed");
		expect(await verify(keyring, "any", signature)).toEqual({ ok: true, slot: 0 });
	});
});

describe("verifySignature with any KeySource", () => {
	afterEach(() => {
		vi.restoreAllMocks();
	});

	const source = (lookup: Awaited<ReturnType<KeySource["keysFor"]>>): KeySource => ({ configured: true, keysFor: async () => lookup });

	it("verifies an unknown client exactly once, against a dummy key: the same work as a known client with one key", async () => {
		const key = await importHmacKey("secret", "verify");
		const signature = fromHex(await sign("secret"));
		const verifyCalls = vi.spyOn(crypto.subtle, "verify");
		expect(await verifySignature(source({ status: "unknown" }), "x", signature, utf8(MESSAGE))).toEqual({ ok: false, reason: "unknown_client" });
		expect(verifyCalls).toHaveBeenCalledTimes(1);
		verifyCalls.mockClear();
		expect(await verifySignature(source({ status: "found", keys: [key] }), "x", signature, utf8(MESSAGE))).toEqual({ ok: true, slot: 0 });
		expect(verifyCalls).toHaveBeenCalledTimes(1);
	});

	it("a found client with an empty list is unknown, verified against the dummy key too", async () => {
		const verifyCalls = vi.spyOn(crypto.subtle, "verify");
		expect(await verifySignature(source({ status: "found", keys: [] }), "x", new Uint8Array(32), utf8(MESSAGE))).toEqual({ ok: false, reason: "unknown_client" });
		expect(verifyCalls).toHaveBeenCalledTimes(1);
	});

	it("a lookup that failed is unavailable, and costs no verify", async () => {
		const verifyCalls = vi.spyOn(crypto.subtle, "verify");
		expect(await verifySignature(source({ status: "unavailable" }), "x", new Uint8Array(32), utf8(MESSAGE))).toEqual({ ok: false, reason: "unavailable" });
		expect(verifyCalls).not.toHaveBeenCalled();
	});

	it("a failed signature checked again: new keys may verify it; a re-read that finds no keys keeps the first refusal", async () => {
		const old = await importHmacKey("old", "verify");
		const signature = fromHex(await sign("new"));
		const rotated = (again: Awaited<ReturnType<NonNullable<KeySource["keysAgain"]>>>): KeySource => ({
			configured: true,
			keysFor: async () => ({ status: "found", keys: [old] }),
			keysAgain: async () => again,
		});
		expect(await verifySignature(rotated({ status: "found", keys: [await importHmacKey("new", "verify"), old] }), "x", signature, utf8(MESSAGE))).toEqual({ ok: true, slot: 0 });
		// Revoked (or disabled) since the cached read, or the re-read could not tell: the bad signature it was, never a crash.
		for (const again of [{ status: "unknown" }, { status: "unavailable" }, null] as const) {
			expect(await verifySignature(rotated(again), "x", signature, utf8(MESSAGE)), JSON.stringify(again)).toEqual({ ok: false, reason: "bad_signature" });
		}
	});

	it("tries every key of a rotation list in order and reports the slot that verified", async () => {
		const keys = await Promise.all(["newest", "middle", "oldest"].map((secret) => importHmacKey(secret, "verify")));
		for (const [slot, secret] of ["newest", "middle", "oldest"].entries()) {
			expect(await verifySignature(source({ status: "found", keys }), "x", fromHex(await sign(secret)), utf8(MESSAGE))).toEqual({ ok: true, slot });
		}
		expect(await verifySignature(source({ status: "found", keys }), "x", fromHex(await sign("other")), utf8(MESSAGE))).toEqual({ ok: false, reason: "bad_signature" });
	});
});
