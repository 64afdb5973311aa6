import { describe, expect, it } from "vitest";
import { ownerKey } from "./digest.ts";
import { MemoryReplayStore } from "./memory.ts";
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

	it("fails at construction with a bad bound", () => {
		expect(() => new MemoryReplayStore(0)).toThrow(/maxKeys/);
	});
});

describe("ownerKey, a client id's number in the memory store", () => {
	const salt = new Uint8Array(16).fill(7);

	it("is a 52-bit integer, the same for the same id and salt, another for another id", async () => {
		const alice = await ownerKey("alice", salt);
		expect(Number.isSafeInteger(alice) && alice >= 0 && alice < 2 ** 52).toBe(true);
		expect(await ownerKey("alice", salt)).toBe(alice);
		expect(await ownerKey("alicf", salt)).not.toBe(alice);
		// Its high bits are not all that varies: 1,000 ids give 1,000 numbers, many above 2^32.
		const numbers = await Promise.all(Array.from({ length: 1000 }, (_, i) => ownerKey(`client-${i}`, salt)));
		expect(new Set(numbers).size).toBe(1000);
		expect(new Set(numbers.map((n) => n % 2 ** 20)).size).toBeGreaterThan(990);
		expect(numbers.filter((n) => n >= 2 ** 51).length).toBeGreaterThan(400);
	});

	it("depends on the salt, so no one can pick an id whose number is another's without it", async () => {
		const other = new Uint8Array(16).fill(8);
		expect(await ownerKey("alice", other)).not.toBe(await ownerKey("alice", salt));
	});
});
