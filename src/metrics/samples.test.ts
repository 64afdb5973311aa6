import { describe, expect, it } from "vitest";
import { histogram } from "./definitions.ts";
import { bucketIndex, emptyHistogram } from "./gateway-metrics.ts";
import { isEmpty, mergeSamples, sumGauges, type Samples } from "./samples.ts";

describe("samples", () => {
	it("puts an observation equal to a bound in that bound's bucket (le is inclusive)", () => {
		const h = histogram("h", "x", [1, 2, 5]);
		expect([0, 1, 1.5, 2, 5, 5.01].map((value) => bucketIndex(h, value))).toEqual([0, 0, 1, 1, 2, 3]);
	});

	it("merges counters and histograms by adding, without sharing arrays with the source", () => {
		const from: Samples = { c_total: { "[]": 2 }, h: { "[]": { b: [1, 0, 2], s: 7.5, c: 3 } } };
		const into: Samples = {};
		mergeSamples(into, from);
		mergeSamples(into, from);
		expect(into).toEqual({ c_total: { "[]": 4 }, h: { "[]": { b: [2, 0, 4], s: 15, c: 6 } } });
		// The source is untouched by merging into the copy.
		expect(from).toEqual({ c_total: { "[]": 2 }, h: { "[]": { b: [1, 0, 2], s: 7.5, c: 3 } } });
	});

	it("adds gauges of the same name across isolates", () => {
		expect(sumGauges([{ g: 1, x: 2 }, { g: 1 }, { g: 0, x: 3 }])).toEqual({ g: 2, x: 5 });
	});

	it("an empty histogram has a zero per bound and one for the +Inf overflow, and is a new object each time", () => {
		const h = histogram("h", "x", [1, 2, 5]);
		expect(emptyHistogram(h)).toEqual({ b: [0, 0, 0, 0], s: 0, c: 0 });
		expect(emptyHistogram(h).b).not.toBe(emptyHistogram(h).b);
	});

	it("is empty only without any series", () => {
		expect(isEmpty({})).toBe(true);
		expect(isEmpty({ c_total: {} })).toBe(true);
		expect(isEmpty({ c_total: { "[]": 0 } })).toBe(false);
	});
});
