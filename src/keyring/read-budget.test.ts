import { describe, expect, it } from "vitest";
import { ReadBudget } from "./read-budget.ts";

describe("ReadBudget", () => {
	it("admits perSecond reads in a second, then none until the next second starts", () => {
		const clock = { now: 5_000 };
		const budget = new ReadBudget(2, () => clock.now);
		budget.spend();
		expect(budget.admits()).toBe(true);
		budget.spend();
		expect(budget.admits()).toBe(false);
		clock.now = 5_999;
		expect(budget.admits()).toBe(false);
		clock.now = 6_000;
		expect(budget.admits()).toBe(true);
	});

	it("a read spent first thing in a new second counts in that second, not the last", () => {
		const clock = { now: 5_000 };
		const budget = new ReadBudget(1, () => clock.now);
		budget.spend();
		clock.now = 6_000;
		budget.spend();
		expect(budget.admits()).toBe(false);
	});

	it("refuses a budget that is not positive", () => {
		expect(() => new ReadBudget(0, () => 0)).toThrow(/perSecond/);
	});
});
