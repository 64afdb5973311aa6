import { describe, expect, it } from "vitest";
import { Decisions, keyDigest, MemoryReplayStore, ownCopy } from "./memory.ts";
import { OwnerNumbers } from "./owner-numbers.ts";
import { ReplayStoreError } from "./store.ts";

const T = 1_764_000_000_000;

describe("MemoryReplayStore", () => {
	it("claims a key once until it expires", async () => {
		const clock = { now: T };
		const store = new MemoryReplayStore(10, () => clock.now);
		expect(await store.claim("k", "v", 1000)).toBe("claimed");
		expect(await store.claim("k", "v", 1000)).toBe("duplicate");
		clock.now = T + 999;
		expect(await store.claim("k", "v", 1000)).toBe("duplicate");
		clock.now = T + 1000;
		expect(await store.claim("k", "v", 1000)).toBe("claimed");
	});

	it("refuses when full of live keys rather than evict one, and drops expired keys to make room", async () => {
		const clock = { now: T };
		const store = new MemoryReplayStore(3, () => clock.now);
		await store.claim("a", "", 100, "x");
		await store.claim("b", "", 200, "y");
		await store.claim("c", "", 300, "z");
		await expect(store.claim("d", "", 100, "w")).rejects.toSatisfy((e) => e instanceof ReplayStoreError && e.reason === "full");
		// The refused key was not stored, and the live ones are still duplicates.
		expect(await store.claim("a", "", 100)).toBe("duplicate");
		expect(store.has("d")).toBe(false);
		clock.now = T + 150;
		expect(await store.claim("d", "", 100, "w")).toBe("claimed");
		expect(store.size).toBe(3);
		expect(await store.claim("b", "", 100)).toBe("duplicate");
	});

	it("one client holds at most half of it: a flood of far-future claims by one client leaves room for the others", async () => {
		const clock = { now: T };
		const store = new MemoryReplayStore(10, () => clock.now);
		for (let i = 0; i < 5; i++) expect(await store.claim(`flood-${i}`, "", 600_000, "flooder")).toBe("claimed");
		await expect(store.claim("flood-5", "", 600_000, "flooder")).rejects.toSatisfy((e) => e instanceof ReplayStoreError && e.reason === "full");
		for (let i = 0; i < 5; i++) expect(await store.claim(`other-${i}`, "", 1_000, `client-${i}`)).toBe("claimed");
		// Its expired keys no longer count against it.
		clock.now = T + 600_000;
		expect(await store.claim("flood-6", "", 600_000, "flooder")).toBe("claimed");
		expect(store.size).toBe(1);
	});

	it("an odd size rounds one client's half down (5 keys: 2 each), and a one-key store still takes one", async () => {
		const store = new MemoryReplayStore(5, () => T);
		for (let i = 0; i < 2; i++) expect(await store.claim(`flood-${i}`, "", 60_000, "flooder")).toBe("claimed");
		await expect(store.claim("flood-2", "", 60_000, "flooder")).rejects.toSatisfy((e) => e instanceof ReplayStoreError && e.reason === "full");
		const tiny = new MemoryReplayStore(1, () => T);
		expect(await tiny.claim("only", "", 60_000, "someone")).toBe("claimed");
	});

	it("counts each client id apart, ids that differ only in their last character too", async () => {
		const store = new MemoryReplayStore(10, () => T);
		const flooder = `${"x".repeat(63)}1`;
		for (let i = 0; i < 5; i++) expect(await store.claim(`flood-${i}`, "", 60_000, flooder)).toBe("claimed");
		await expect(store.claim("flood-5", "", 60_000, flooder)).rejects.toSatisfy((e) => e instanceof ReplayStoreError && e.reason === "full");
		const neighbour = `${"x".repeat(63)}2`;
		for (let i = 0; i < 5; i++) expect(await store.claim(`neighbour-${i}`, "", 60_000, neighbour)).toBe("claimed");
		// The store is full now, and each half is its owner's.
		await expect(store.claim("third", "", 60_000, "someone")).rejects.toSatisfy((e) => e instanceof ReplayStoreError && e.reason === "full");
	});

	it("a re-claimed expired key moves to its new owner's count", async () => {
		const clock = { now: T };
		const store = new MemoryReplayStore(4, () => clock.now);
		expect(await store.claim("shared", "", 1_000, "first")).toBe("claimed");
		expect(await store.claim("a", "", 60_000, "first")).toBe("claimed");
		clock.now = T + 1_000;
		expect(await store.claim("shared", "", 60_000, "second")).toBe("claimed");
		// "first" holds one live key now, so it has room for one more; "second" holds one too.
		expect(await store.claim("b", "", 60_000, "first")).toBe("claimed");
		await expect(store.claim("c", "", 60_000, "first")).rejects.toSatisfy((e) => e instanceof ReplayStoreError && e.reason === "full");
		expect(await store.claim("d", "", 60_000, "second")).toBe("claimed");
	});

	it("writes a claim before its promise is awaited: nothing can land between the guard's last look and the claim", () => {
		const store = new MemoryReplayStore(10, () => T);
		void store.claim("k", "", 60_000, "c");
		expect(store.has("k")).toBe(true);
	});

	it("stays bounded under a flood of distinct keys", async () => {
		const store = new MemoryReplayStore(1000, () => T);
		let refused = 0;
		for (let i = 0; i < 5000; i++) {
			try {
				await store.claim(`key-${i}`, "", 60_000, `client-${i % 10}`);
			} catch {
				refused++;
			}
		}
		expect(store.size).toBe(1000);
		expect(refused).toBe(4000);
	});

	it("forgets an expired key's expiry, even before a sweep removes it", async () => {
		const clock = { now: T };
		const store = new MemoryReplayStore(10, () => clock.now);
		await store.claim("k", "", 1000, "alice");
		clock.now = T + 999;
		expect([store.has("k"), store.expiresAt("k")]).toEqual([true, T + 1000]);
		clock.now = T + 1000;
		expect([store.has("k"), store.expiresAt("k")]).toEqual([false, undefined]);
		expect(store.size).toBe(1);
	});

	it("gives an owner its whole half back once its keys expire: no count is left behind", async () => {
		const clock = { now: T };
		// 4 keys, 2 per owner.
		const store = new MemoryReplayStore(4, () => clock.now);
		expect(await store.claim("k1", "", 1000, "alice")).toBe("claimed");
		clock.now = T + 1000;
		// k1 expired: claiming it again removes the old entry first.
		expect(await store.claim("k1", "", 1000, "alice")).toBe("claimed");
		expect(await store.claim("k2", "", 1000, "alice")).toBe("claimed");
		await expect(store.claim("k3", "", 1000, "alice")).rejects.toThrow(ReplayStoreError);
	});

	it("fails at construction with a bad bound", () => {
		expect(() => new MemoryReplayStore(0)).toThrow(/maxKeys/);
	});
});

describe("OwnerNumbers, a client id's number in the memory store", () => {
	it("an integer under 2^52, the same for the same id, another for another id, ids of one prefix too", () => {
		const numbers = new OwnerNumbers();
		const alice = numbers.of("alice");
		expect(Number.isSafeInteger(alice) && alice >= 0 && alice < 2 ** 52).toBe(true);
		expect(numbers.of("alice")).toBe(alice);
		const ids = [...Array.from({ length: 1000 }, (_, i) => `client-${i}`), ...Array.from({ length: 64 }, (_, i) => "x".repeat(i + 1))];
		expect(new Set(ids.map((id) => numbers.of(id))).size).toBe(ids.length);
		// Every code unit counts, a zero too: a leading one does not fall out of the polynomial.
		expect(numbers.of("\u0000a")).not.toBe(numbers.of("a"));
		// Both halves vary: neither hash is left out of the number.
		expect(new Set(ids.map((id) => numbers.of(id) % 2 ** 26)).size).toBeGreaterThan(1000);
		expect(new Set(ids.map((id) => Math.floor(numbers.of(id) / 2 ** 26))).size).toBeGreaterThan(1000);
	});

	it("depends on the secret points, so no one can pick an id whose number is another's without them", () => {
		const fixed = () => new OwnerNumbers(() => [123_456_789, 987_654_321]);
		expect(fixed().of("alice")).toBe(fixed().of("alice"));
		expect(new OwnerNumbers(() => [123_456_789, 987_654_322]).of("alice")).not.toBe(fixed().of("alice"));
		expect(new OwnerNumbers().of("alice")).not.toBe(new OwnerNumbers().of("alice"));
	});

	it("two ids that share a number share a half: the store counts by the number alone", async () => {
		// Points at zero: each hash is the last code unit plus one, so "a1" and "b1" share a number.
		const store = new MemoryReplayStore(4, () => T, new OwnerNumbers(() => [0, 0]));
		expect(await store.claim("k1", "", 60_000, "a1")).toBe("claimed");
		expect(await store.claim("k2", "", 60_000, "b1")).toBe("claimed");
		await expect(store.claim("k3", "", 60_000, "c1")).rejects.toSatisfy((e) => e instanceof ReplayStoreError && e.reason === "full");
		expect(await store.claim("k3", "", 60_000, "c2")).toBe("claimed");
	});
});

describe("Decisions", () => {
	it("knows a key until it expires", () => {
		const decisions = new Decisions(10);
		decisions.record("k", T + 1_000, T);
		expect(decisions.has("k", T + 999)).toBe(true);
		expect(decisions.has("k", T + 1_000)).toBe(false);
		expect(decisions.size).toBe(0);
	});

	it("when full, drops the oldest", () => {
		const decisions = new Decisions(2);
		decisions.record("a", T + 10_000, T);
		decisions.record("b", T + 10_000, T);
		decisions.record("c", T + 10_000, T);
		expect([decisions.has("a", T), decisions.has("b", T), decisions.has("c", T)]).toEqual([false, true, true]);
	});

	it("drops expired entries as new ones come in, so a busy isolate is not kept full of them", () => {
		const decisions = new Decisions(100);
		for (let i = 0; i < 50; i++) decisions.record(`old-${i}`, T + 1_000, T);
		decisions.record("new", T + 9_000, T + 2_000);
		expect(decisions.size).toBe(1);
		expect(decisions.has("new", T + 2_000)).toBe(true);
	});

	it("a key recorded again moves to the young end with its new expiry", () => {
		const decisions = new Decisions(2);
		decisions.record("a", T + 10_000, T);
		decisions.record("b", T + 10_000, T);
		decisions.record("a", T + 20_000, T);
		decisions.record("c", T + 10_000, T);
		expect([decisions.has("a", T + 15_000), decisions.has("b", T)]).toEqual([true, false]);
		// Not full when it comes again: it moves all the same, so the next to go is the one recorded before it.
		const roomy = new Decisions(3);
		for (const id of ["a", "b", "a", "c", "d"]) roomy.record(id, T + 10_000, T);
		expect(["a", "b", "c", "d"].map((id) => roomy.has(id, T))).toEqual([true, false, true, true]);
	});

	it("refuses a bound that is not a positive integer", () => {
		expect(() => new Decisions(0)).toThrow(/maxKeys/);
		expect(() => new Decisions(1.5)).toThrow(/maxKeys/);
	});
});

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
