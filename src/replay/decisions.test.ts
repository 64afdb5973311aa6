import { describe, expect, it } from "vitest";
import { Decisions } from "./decisions.ts";

const T = 1_764_000_000_000;

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
	});

	it("refuses a bound that is not a positive integer", () => {
		expect(() => new Decisions(0)).toThrow(/maxKeys/);
		expect(() => new Decisions(1.5)).toThrow(/maxKeys/);
	});
});
