import { describe, expect, it } from "vitest";
import { keyDigest, ownCopy } from "./digest.ts";

describe("keyDigest", () => {
	it("is 16 one-byte characters, the same for the same key", async () => {
		const digest = await keyDigest("hmac:replay:v2:web-app:nonce-0123456789abcdef");
		expect(digest).toHaveLength(16);
		expect([...digest].every((char) => char.charCodeAt(0) < 256)).toBe(true);
		expect(await keyDigest("hmac:replay:v2:web-app:nonce-0123456789abcdef")).toBe(digest);
	});

	it("tells apart keys that differ only in their last character, however long the shared start", async () => {
		// Two v2 keys of one client: prefix, keyid and most of the nonce in common.
		const start = `hmac:replay:v2:${"k".repeat(64)}:${"n".repeat(63)}`;
		expect(await keyDigest(`${start}a`)).not.toBe(await keyDigest(`${start}b`));
		expect(await keyDigest("hmac:replay:a")).not.toBe(await keyDigest("hmac:replay:b"));
	});
});

describe("ownCopy", () => {
	it("is equal to its text", () => {
		expect(ownCopy("v2:web-app:nonce")).toBe("v2:web-app:nonce");
	});
});
