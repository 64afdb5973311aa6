import { describe, expect, it } from "vitest";
import { packClaim, unpackClaim, type PendingClaim } from "./pending-claim.ts";

const keyid = `client-${"k".repeat(57)}`;
const nonce = "n".repeat(64);

describe("a waiting write-back packed as one string", () => {
	it("a v2 claim keeps its client id once: it is read back from the key's keyid", () => {
		const claim: PendingClaim = { replayId: `v2:${keyid}:${nonce}`, clientId: keyid, timestamp: "1764000000000", counter: 42 };
		const packed = packClaim(claim);
		expect(packed.split(keyid).length - 1).toBe(1);
		expect(packed.length).toBeLessThan(claim.replayId.length + 24);
		expect(unpackClaim(packed)).toEqual(claim);
	});

	it("keeps a client id the key does not name: v1, a v2 key under another id, an id that only starts the keyid", () => {
		const claims: PendingClaim[] = [
			{ replayId: "a".repeat(64), clientId: "alice", timestamp: "1764000000000", counter: 1 },
			{ replayId: `v2:bob:${nonce}`, clientId: "alice", timestamp: "1764000000000", counter: 2 },
			{ replayId: `v2:alice-2:${nonce}`, clientId: "alice", timestamp: "1764000000000", counter: 3 },
			{ replayId: "v2:alice", clientId: "alice", timestamp: "1764000000000", counter: 4 },
		];
		for (const claim of claims) expect(unpackClaim(packClaim(claim))).toEqual(claim);
	});

	it("no field needs escaping: separators, digits and empty fields inside them come back as they were", () => {
		const claims: PendingClaim[] = [
			{ replayId: "v2:a:b:c:9:", clientId: "a:b", timestamp: "0001764000000000", counter: 7 },
			{ replayId: "12:3:", clientId: "", timestamp: "", counter: 0 },
			{ replayId: "v2::nonce", clientId: "", timestamp: "5", counter: 123456 },
			{ replayId: "", clientId: "3:", timestamp: "1:2", counter: 9 },
		];
		for (const claim of claims) expect(unpackClaim(packClaim(claim))).toEqual(claim);
	});

	it("keeps the quota a memory claim spent: which limits, and when, to the millisecond", () => {
		const at = Date.UTC(2026, 11, 2, 23, 59, 59, 999);
		const claims: PendingClaim[] = [
			{ replayId: "a".repeat(64), clientId: "alice", timestamp: "1764000000000", counter: 1, spend: { at, rpm: true, rpd: false } },
			{ replayId: `v2:${keyid}:${nonce}`, clientId: keyid, timestamp: "17", counter: 2, spend: { at, rpm: false, rpd: true } },
			{ replayId: "1:2:", clientId: "3:", timestamp: "4:", counter: 3, spend: { at: 0, rpm: true, rpd: true } },
		];
		for (const claim of claims) expect(unpackClaim(packClaim(claim))).toEqual(claim);
		// A claim without a spend costs one separator more, no more.
		const plain: PendingClaim = { replayId: "a".repeat(64), clientId: "alice", timestamp: "1764000000000", counter: 1 };
		expect(unpackClaim(packClaim(plain))).toEqual(plain);
		expect(packClaim(plain)).toBe(`1:13:5::1764000000000alice${"a".repeat(64)}`);
	});
});
