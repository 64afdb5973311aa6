import { describe, expect, it } from "vitest";
import { MemoryReplayStore } from "./memory.ts";
import { ReplayStoreError } from "./store.ts";

describe("MemoryReplayStore", () => {
	it("claims a key once until it expires", async () => {
		const clock = { now: 0 };
		const store = new MemoryReplayStore(10, () => clock.now);
		expect(await store.claim("k", "v", 1000)).toBe("claimed");
		expect(await store.claim("k", "v", 1000)).toBe("duplicate");
		clock.now = 999;
		expect(await store.claim("k", "v", 1000)).toBe("duplicate");
		clock.now = 1000;
		expect(await store.claim("k", "v", 1000)).toBe("claimed");
	});

	it("refuses when full of live keys rather than evict one, and drops expired keys to make room", async () => {
		const clock = { now: 0 };
		const store = new MemoryReplayStore(3, () => clock.now);
		await store.claim("a", "", 100);
		await store.claim("b", "", 200);
		await store.claim("c", "", 300);
		await expect(store.claim("d", "", 100)).rejects.toSatisfy((e) => e instanceof ReplayStoreError && e.reason === "full");
		// The refused key was not stored, and the live ones are still duplicates.
		expect(await store.claim("a", "", 100)).toBe("duplicate");
		clock.now = 150;
		expect(await store.claim("d", "", 100)).toBe("claimed");
		expect(store.size).toBe(3);
		expect(await store.claim("b", "", 100)).toBe("duplicate");
	});

	it("stays bounded under a flood of distinct keys", async () => {
		const store = new MemoryReplayStore(1000, () => 0);
		let refused = 0;
		for (let i = 0; i < 5000; i++) {
			try {
				await store.claim(`key-${i}`, "", 60_000);
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
