import { describe, expect, it } from "vitest";
import { utcDay, utcMonth } from "./policy.ts";

describe("the windows of a budget", () => {
	it("a UTC day: its name, the day before, and the milliseconds left", () => {
		expect(utcDay(Date.UTC(2026, 11, 31, 23, 59, 59, 999))).toEqual({ day: "2026-12-31", previous: "2026-12-30", endsInMs: 1 });
		expect(utcDay(Date.UTC(2027, 0, 1))).toEqual({ day: "2027-01-01", previous: "2026-12-31", endsInMs: 86_400_000 });
	});

	it("a UTC calendar month: its name, the month before (across a year), and the milliseconds left, whatever its length", () => {
		expect(utcMonth(Date.UTC(2027, 0, 31, 12))).toEqual({ month: "2027-01", previous: "2026-12", endsInMs: 12 * 3_600_000 });
		expect(utcMonth(Date.UTC(2028, 1, 1))).toEqual({ month: "2028-02", previous: "2028-01", endsInMs: 29 * 86_400_000 });
		expect(utcMonth(Date.UTC(2026, 11, 31, 23, 59, 59, 999))).toEqual({ month: "2026-12", previous: "2026-11", endsInMs: 1 });
		// Back and forth: each answer is the instant's own, not the last one's.
		expect(utcMonth(Date.UTC(2027, 0, 1)).month).toBe("2027-01");
		expect(utcMonth(Date.UTC(2026, 11, 1)).endsInMs).toBe(31 * 86_400_000);
	});
});
