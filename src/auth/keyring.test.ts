import { afterEach, describe, expect, it, vi } from "vitest";
import { hmacSha256Hex, importHmacKey } from "./crypto.ts";
import { Keyring } from "./keyring.ts";

const MESSAGE = "POST\n/agent/chat\n1763000000000\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

async function sign(secret: string, message = MESSAGE): Promise<string> {
	return hmacSha256Hex(await importHmacKey(secret, "sign"), message);
}

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
		expect(await keyring.verify("alpha", await sign("alpha-secret"), MESSAGE)).toEqual({ ok: true, slot: 0 });
		// Beta's keys must not be alpha's (already imported) keys.
		expect(await keyring.verify("beta", await sign("beta-old"), MESSAGE)).toEqual({ ok: true, slot: 1 });
		expect(await keyring.verify("beta", await sign("alpha-secret"), MESSAGE)).toEqual({ ok: false, reason: "bad_signature" });
		expect(await keyring.verify("alpha", await sign("beta-new"), MESSAGE)).toEqual({ ok: false, reason: "bad_signature" });
		// A listed client does not fall back to the shared secret; an unlisted one uses it.
		expect(await keyring.verify("alpha", await sign("shared-secret"), MESSAGE)).toEqual({ ok: false, reason: "bad_signature" });
		expect(await keyring.verify("gamma", await sign("shared-secret"), MESSAGE)).toEqual({ ok: true, slot: 0 });
	});

	it("answers unknown_client for a client with no secret at all, and is configured by either kind of secret", async () => {
		const onlyClients = new Keyring({ sharedSecrets: [], clientSecrets: new Map([["alpha", ["alpha-secret"]]]) });
		expect(onlyClients.configured).toBe(true);
		expect(await onlyClients.verify("beta", await sign("alpha-secret"), MESSAGE)).toEqual({ ok: false, reason: "unknown_client" });
		expect(new Keyring({ sharedSecrets: ["s"], clientSecrets: new Map() }).configured).toBe(true);
		expect(new Keyring({ sharedSecrets: [], clientSecrets: new Map() }).configured).toBe(false);
	});

	it("verifies over the exact message: one changed byte is a bad signature", async () => {
		const keyring = new Keyring({ sharedSecrets: ["shared-secret"], clientSecrets: new Map() });
		const signature = await sign("shared-secret");
		expect(await keyring.verify("any", signature, `${MESSAGE} `)).toEqual({ ok: false, reason: "bad_signature" });
		expect(await keyring.verify("any", signature, MESSAGE)).toEqual({ ok: true, slot: 0 });
	});

	it("does not keep a failed key import: the next request imports again", async () => {
		const keyring = new Keyring({ sharedSecrets: ["shared-secret"], clientSecrets: new Map() });
		const signature = await sign("shared-secret");
		vi.spyOn(crypto.subtle, "importKey").mockRejectedValueOnce(new Error("import failed"));
		await expect(keyring.verify("any", signature, MESSAGE)).rejects.toThrow("import failed");
		expect(await keyring.verify("any", signature, MESSAGE)).toEqual({ ok: true, slot: 0 });
	});
});
