import { afterEach, describe, expect, it, vi } from "vitest";
import { awayFromUtcMidnight, DAY_MS } from "../fixtures/instants.ts";

describe("awayFromUtcMidnight: a budget test never straddles the turn of a day or month", () => {
	afterEach(() => {
		vi.useRealTimers();
	});

	it("returns at once when the next UTC midnight is further than the margin", async () => {
		const midnight = 20 * DAY_MS;
		expect(await awayFromUtcMidnight(120_000, () => midnight - 120_001)).toBe(0);
		expect(await awayFromUtcMidnight(120_000, () => midnight + 1)).toBe(0);
	});

	it("waits until just past the midnight when now is within the margin, the margin's edge included", async () => {
		vi.useFakeTimers();
		const midnight = 20 * DAY_MS;
		for (const before of [120_000, 30_000, 1]) {
			let waited: number | undefined;
			const done = awayFromUtcMidnight(120_000, () => midnight - before).then((ms) => {
				waited = ms;
			});
			await vi.advanceTimersByTimeAsync(before);
			expect(waited).toBeUndefined();
			await vi.advanceTimersByTimeAsync(1000);
			await done;
			expect(waited).toBe(before + 1000);
		}
	});
});
