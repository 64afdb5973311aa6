import { describe, expect, it } from "vitest";
import { ExpiringCache } from "./cache.ts";

describe("ExpiringCache", () => {
	it("answers fresh until the entry's time is up, and stale after", () => {
		const clock = { now: 1000 };
		const cache = new ExpiringCache<string>(10, () => clock.now);
		cache.set("a", "A", 500);
		clock.now = 1499;
		expect(cache.fresh("a")).toBe("A");
		clock.now = 1500;
		expect(cache.fresh("a")).toBeUndefined();
		expect(cache.stale("a")).toBe("A");
	});

	it("never holds more than its bound: the oldest entry goes first", () => {
		const cache = new ExpiringCache<number>(3);
		for (let i = 0; i < 1000; i++) cache.set(`id-${i}`, i, 60_000);
		expect(cache.size).toBe(3);
		expect([cache.stale("id-997"), cache.stale("id-998"), cache.stale("id-999")]).toEqual([997, 998, 999]);
		expect(cache.stale("id-996")).toBeUndefined();
	});

	it("counts a re-set entry as new, so it outlives older ones", () => {
		const cache = new ExpiringCache<number>(2);
		cache.set("a", 1, 60_000);
		cache.set("b", 2, 60_000);
		cache.set("a", 3, 60_000);
		cache.set("c", 4, 60_000);
		expect(cache.stale("a")).toBe(3);
		expect(cache.stale("b")).toBeUndefined();
	});

	it("re-setting an entry of a full cache drops no other entry", () => {
		const cache = new ExpiringCache<number>(2);
		cache.set("a", 1, 60_000);
		cache.set("b", 2, 60_000);
		cache.set("b", 3, 60_000);
		expect([cache.stale("a"), cache.stale("b")]).toEqual([1, 3]);
	});

	it("refuses a bound that is not a positive integer", () => {
		expect(() => new ExpiringCache(0)).toThrow(/maxEntries/);
		expect(() => new ExpiringCache(1.5)).toThrow(/maxEntries/);
	});
});
