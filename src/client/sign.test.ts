import { describe, expect, it } from "vitest";
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

	it("without a timestamp, signs the current time in milliseconds", async () => {
		const before = Date.now();
		const { headers } = await signRequest({ clientId: "svc", secret: "k", method: "GET", path: "/agent/x" });
		const after = Date.now();
		const timestamp = Number(headers["X-Timestamp"]);
		expect(timestamp).toBeGreaterThanOrEqual(before);
		expect(timestamp).toBeLessThanOrEqual(after);
	});
});
