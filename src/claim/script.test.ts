import { describe, expect, it } from "vitest";
import { limitKeys } from "./keys.ts";
import { LIMITED_CLAIM_SCRIPT, LIMITED_CLAIM_SHA1, WRITE_BACK_SCRIPT, WRITE_BACK_SHA1 } from "./script.ts";
import { SETTLE_SCRIPT, SETTLE_SHA1 } from "./settle-script.ts";

describe("the limits script", () => {
	it.each([
		["claim", LIMITED_CLAIM_SCRIPT, LIMITED_CLAIM_SHA1],
		["write-back", WRITE_BACK_SCRIPT, WRITE_BACK_SHA1],
		["settle", SETTLE_SCRIPT, SETTLE_SHA1],
	])("EVALSHA's hash is the SHA-1 of the %s script as sent", async (_, script, sha1) => {
		const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(script));
		const hex = [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
		expect(sha1).toBe(hex);
	});

	it("keeps every key under the replay prefix, apart from any replay key (hex, or v2:...)", () => {
		expect(limitKeys("hmac:replay:", "svc", "2026-12-02")).toEqual({
			rpm: "hmac:replay:limit:rpm:svc",
			rpd: "hmac:replay:limit:rpd:svc:2026-12-02",
			inFlight: "hmac:replay:limit:inflight:svc",
		});
	});
});
