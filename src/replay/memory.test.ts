import { describe, expect, it } from "vitest";
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

	it("forgets an expired key's owner and expiry, even before a sweep removes it", async () => {
		const clock = { now: T };
		const store = new MemoryReplayStore(10, () => clock.now);
		await store.claim("k", "", 1000, "alice");
		clock.now = T + 999;
		expect([store.has("k"), store.ownerOf("k"), store.expiresAt("k")]).toEqual([true, "alice", T + 1000]);
		clock.now = T + 1000;
		expect([store.has("k"), store.ownerOf("k"), store.expiresAt("k")]).toEqual([false, undefined, undefined]);
		expect(store.size).toBe(1);
	});

	it("fails at construction with a bad bound", () => {
		expect(() => new MemoryReplayStore(0)).toThrow(/maxKeys/);
	});
});
