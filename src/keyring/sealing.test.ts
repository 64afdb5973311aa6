import { describe, expect, it } from "vitest";
import { decodeKeyringKey, generateKeyringKey, importKeyringKey, KeyringDecryptError, openSecrets, sealSecrets } from "./sealing.ts";
import { freshKey } from "../../test/fixtures/keyring.ts";

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

	it("imports only 32 bytes", () => {
		expect(() => importKeyringKey(new Uint8Array(16))).toThrow(/32 bytes/);
	});
});

describe("sealed secrets", () => {
	it("open to the same list, newest first, and never show a secret in the sealed text", async () => {
		const key = await freshKey();
		const sealed = await sealSecrets(key, "alice", ["new-secret-value", "old-secret-value"]);
		expect(await openSecrets(key, "alice", sealed)).toEqual(["new-secret-value", "old-secret-value"]);
		expect(sealed).not.toContain("secret");
		expect(atob(sealed)).not.toContain("secret");
		// A fresh IV each time: two seals of one list differ.
		expect(await sealSecrets(key, "alice", ["new-secret-value"])).not.toBe(await sealSecrets(key, "alice", ["new-secret-value"]));
	});

	it("do not open under another key", async () => {
		const sealed = await sealSecrets(await freshKey(), "alice", ["s"]);
		await expect(openSecrets(await freshKey(), "alice", sealed)).rejects.toBeInstanceOf(KeyringDecryptError);
	});

	it("do not open for another client id (a record moved to another id), not even another case of it", async () => {
		const key = await freshKey();
		const sealed = await sealSecrets(key, "alice", ["s"]);
		await expect(openSecrets(key, "bob", sealed)).rejects.toBeInstanceOf(KeyringDecryptError);
		await expect(openSecrets(key, "ALICE", sealed)).rejects.toBeInstanceOf(KeyringDecryptError);
	});

	it("do not open with any byte changed: IV, ciphertext or tag", async () => {
		const key = await freshKey();
		const sealed = await sealSecrets(key, "alice", ["secret-one"]);
		const bytes = Uint8Array.from(atob(sealed), (c) => c.charCodeAt(0));
		for (const at of [0, 11, 12, bytes.length - 17, bytes.length - 1]) {
			const changed = bytes.slice();
			changed[at]! ^= 0x01;
			const text = btoa(String.fromCharCode(...changed));
			await expect(openSecrets(key, "alice", text), `byte ${at}`).rejects.toBeInstanceOf(KeyringDecryptError);
		}
	});

	it.each([
		["not base64", "%%%%"],
		["too short for IV and tag", btoa("x".repeat(27))],
		["empty", ""],
	])("refuse a sealed value that is %s, with KeyringDecryptError only", async (_, text) => {
		await expect(openSecrets(await freshKey(), "alice", text)).rejects.toBeInstanceOf(KeyringDecryptError);
	});

	it("refuse a ciphertext that opens to something other than a list of secrets", async () => {
		const key = await freshKey();
		const iv = new Uint8Array(12);
		for (const plaintext of ['"just-a-string"', "[]", '[""]', "[1]", "not json"]) {
			const ct = new Uint8Array(
				await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode("alice") }, key, new TextEncoder().encode(plaintext)),
			);
			const sealed = btoa(String.fromCharCode(...iv, ...ct));
			await expect(openSecrets(key, "alice", sealed), plaintext).rejects.toBeInstanceOf(KeyringDecryptError);
		}
	});
});
