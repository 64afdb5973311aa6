import { describe, expect, it } from "vitest";
import { decodeKeyringKey, decodeKeyringKeys, generateKeyringKey, importKeyringKey, KeyringDecryptError, openRecord, sealRecord } from "./sealing.ts";
import { freshKey, recordContent } from "../../test/fixtures/keyring.ts";

describe("KEYRING_KEY", () => {
	it("is 32 random bytes in base64, and a fresh one each time", () => {
		const a = generateKeyringKey();
		expect(a).toMatch(/^[A-Za-z0-9+/]{43}=$/);
		expect(decodeKeyringKey(a)?.byteLength).toBe(32);
		expect(generateKeyringKey()).not.toBe(a);
	});

	it.each([
		["empty", ""],
		["31 bytes", btoa("x".repeat(31))],
		["33 bytes", btoa("x".repeat(33))],
		["not base64", "!".repeat(44)],
		["base64url", "-".repeat(43) + "="],
		["hex of 32 bytes", "ab".repeat(32)],
	])("refuses %s", (_, text) => {
		expect(decodeKeyringKey(text)).toBeNull();
	});

	it("takes the key without its padding, and with outer whitespace", () => {
		const key = generateKeyringKey();
		expect(decodeKeyringKey(key.slice(0, -1))).toEqual(decodeKeyringKey(key));
		expect(decodeKeyringKey(` ${key}\n`)).toEqual(decodeKeyringKey(key));
	});

	it("imports only 32 bytes, as a key that cannot be exported again", async () => {
		expect(() => importKeyringKey(new Uint8Array(16))).toThrow(/32 bytes/);
		const key = await importKeyringKey(new Uint8Array(32));
		expect(key.extractable).toBe(false);
		await expect(crypto.subtle.exportKey("raw", key)).rejects.toThrow();
	});
});

describe("KEYRING_KEY with two keys (its own rotation)", () => {
	it("takes one key, or two comma-separated (new first), and refuses three or one bad key", () => {
		const [a, b, c] = [generateKeyringKey(), generateKeyringKey(), generateKeyringKey()];
		expect(decodeKeyringKeys(a)).toEqual([decodeKeyringKey(a)]);
		expect(decodeKeyringKeys(`${a}, ${b}`)).toEqual([decodeKeyringKey(a), decodeKeyringKey(b)]);
		expect(decodeKeyringKeys(`${a},${b},${c}`)).toBeNull();
		expect(decodeKeyringKeys(`${a},short`)).toBeNull();
		expect(decodeKeyringKeys(`${a},`)).toBeNull();
	});
});

describe("sealed records", () => {
	const content = recordContent(["new-secret-value", "old-secret-value"], { limits: { rpm: 5 }, disabled: true });

	it("open to the same content, and never show a secret or a field in the sealed text", async () => {
		const key = await freshKey();
		const sealed = await sealRecord(key, "alice", content);
		expect(await openRecord([key], "alice", sealed)).toEqual({ content, keyIndex: 0 });
		expect(sealed).not.toContain("secret-value");
		for (const word of ["secret", "rpm", "disabled"]) expect(atob(sealed)).not.toContain(word);
		// A fresh IV each time: two seals of one content differ.
		expect(await sealRecord(key, "alice", content)).not.toBe(await sealRecord(key, "alice", content));
	});

	it("open under either of two keys, saying which; not under a third", async () => {
		const [fresh, old, other] = [await freshKey(), await freshKey(), await freshKey()];
		expect((await openRecord([fresh, old], "alice", await sealRecord(old, "alice", content))).keyIndex).toBe(1);
		expect((await openRecord([fresh, old], "alice", await sealRecord(fresh, "alice", content))).keyIndex).toBe(0);
		await expect(openRecord([fresh, old], "alice", await sealRecord(other, "alice", content))).rejects.toBeInstanceOf(KeyringDecryptError);
		await expect(openRecord([], "alice", await sealRecord(other, "alice", content))).rejects.toBeInstanceOf(KeyringDecryptError);
	});

	it("do not open for another client id (a record moved to another id), not even another case of it", async () => {
		const key = await freshKey();
		const sealed = await sealRecord(key, "alice", content);
		await expect(openRecord([key], "bob", sealed)).rejects.toBeInstanceOf(KeyringDecryptError);
		await expect(openRecord([key], "ALICE", sealed)).rejects.toBeInstanceOf(KeyringDecryptError);
	});

	it("do not open with any byte changed: IV, ciphertext or tag", async () => {
		const key = await freshKey();
		const sealed = await sealRecord(key, "alice", content);
		const bytes = Uint8Array.from(atob(sealed), (c) => c.charCodeAt(0));
		for (const at of [0, 11, 12, bytes.length - 17, bytes.length - 1]) {
			const changed = bytes.slice();
			changed[at]! ^= 0x01;
			const text = btoa(String.fromCharCode(...changed));
			await expect(openRecord([key], "alice", text), `byte ${at}`).rejects.toBeInstanceOf(KeyringDecryptError);
		}
	});

	it.each([
		["not base64", "%%%%"],
		["too short for IV and tag", btoa("x".repeat(27))],
		["empty", ""],
		["base64 of a length atob cannot read (4n + 1)", "A".repeat(41)],
		["base64 cut short of its padding", btoa("x".repeat(40)).slice(0, -2)],
	])("refuse a sealed value that is %s, with KeyringDecryptError only", async (_, text) => {
		await expect(openRecord([await freshKey()], "alice", text)).rejects.toBeInstanceOf(KeyringDecryptError);
	});

	it("refuse a ciphertext that opens to something other than a record's content", async () => {
		const key = await freshKey();
		const iv = new Uint8Array(12);
		const good = { secrets: ["s"], disabled: false, revoked: false, createdAt: "t", updatedAt: "t" };
		for (const value of [
			"just-a-string",
			["s"],
			{ ...good, secrets: [] },
			{ ...good, secrets: [""] },
			{ ...good, secrets: ["a", "b", "c", "d"] },
			{ ...good, revoked: true },
			{ ...good, revoked: "false" },
			{ ...good, disabled: 0 },
			{ ...good, limits: [1] },
			{ ...good, createdAt: 1 },
		]) {
			const plaintext = new TextEncoder().encode(JSON.stringify(value));
			const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode("alice") }, key, plaintext));
			const sealed = btoa(String.fromCharCode(...iv, ...ct));
			await expect(openRecord([key], "alice", sealed), JSON.stringify(value)).rejects.toBeInstanceOf(KeyringDecryptError);
		}
		// A tombstone holds no secret.
		const tombstone = { ...good, secrets: [], revoked: true };
		expect((await openRecord([key], "alice", await sealRecord(key, "alice", tombstone))).content).toEqual(tombstone);
	});
});
