import { describe, expect, it } from "vitest";
import { type CpuProfile, selfTimes } from "../../scripts/bench/profile.ts";

const frame = (id: number, functionName: string, url = "", lineNumber = 0) => ({ id, callFrame: { functionName, url, lineNumber } });

describe("the bench's profile table (selfTimes)", () => {
	// Samples 100 us apart, but a 50 ms gap (the thread outside the isolate) before the third one.
	const profile: CpuProfile = {
		nodes: [frame(1, "(root)"), frame(2, "(idle)"), frame(3, "verify", "file:///w/index.js", 9), frame(4, "")],
		samples: [3, 3, 4, 2, 3],
		timeDeltas: [100, 100, 50_000, 100, 100],
	};

	it("counts each sample as the time since the one before, a gap at most two sampling intervals, idle never", () => {
		const { busyMs, top } = selfTimes(profile, 10, 100);
		expect(top).toEqual([
			{ fn: "verify (index.js:10)", selfMs: 0.3, selfPercent: 60 },
			{ fn: "(anonymous)", selfMs: 0.2, selfPercent: 40 },
		]);
		expect(busyMs).toBe(0.5);
	});

	it("keeps the top entries only", () => {
		expect(selfTimes(profile, 1, 100).top.map((entry) => entry.fn)).toEqual(["verify (index.js:10)"]);
	});
});
