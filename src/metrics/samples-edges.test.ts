import { describe, expect, it } from "vitest";
import { counter, histogram } from "./definitions.ts";
import { serialize } from "./exposition.ts";
import { Registry } from "./registry.ts";
import { bucketIndex, isEmpty, mergeSamples, sumGauges, type Samples } from "./samples.ts";

describe("metric definitions and registry at their edges", () => {
	it("refuses equal bucket bounds (they must strictly increase)", () => {
		expect(() => histogram("h", "x", [1, 1])).toThrow(/increase/);
		expect(histogram("h", "x", [1, 2]).buckets).toEqual([1, 2]);
	});

	it("primes a histogram with one bucket per bound plus the +Inf overflow, and a counter at 0", () => {
		const h = histogram("h", "x", [1, 2, 5], ["k"]);
		const c = counter("c_total", "c");
		const registry = new Registry([h, c]);
		expect(registry.zeros([registry.series(h, { k: "a" }), registry.series(c)])).toEqual({
			h: { '["a"]': { b: [0, 0, 0, 0], s: 0, c: 0 } },
			c_total: { "[]": 0 },
		});
	});
});

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

	it("is empty only without any series", () => {
		expect(isEmpty({})).toBe(true);
		expect(isEmpty({ c_total: {} })).toBe(true);
		expect(isEmpty({ c_total: { "[]": 0 } })).toBe(false);
	});
});

describe("exposition of families without events", () => {
	it("writes no series for a labelled family that has none, and the one zero series of an unlabelled one", () => {
		const labelled = counter("labelled_total", "L.", ["k"]);
		const plain = counter("plain_total", "P.");
		expect(serialize([labelled, plain], {})).toBe(
			["# HELP labelled_total L.", "# TYPE labelled_total counter", "# HELP plain_total P.", "# TYPE plain_total counter", "plain_total 0", ""].join("\n"),
		);
	});
});
