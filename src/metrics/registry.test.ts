import { describe, expect, it } from "vitest";
import { counter, histogram } from "./definitions.ts";
import { Recorder, Registry } from "./registry.ts";

describe("Registry", () => {
	it("refuses two families of one name, and labels that do not match the definition", () => {
		const a = counter("a_total", "a", ["x"]);
		expect(() => new Registry([a, counter("a_total", "again")])).toThrow(/defined twice/);
		const registry = new Registry([a]);
		expect(() => registry.series(a, {})).toThrow(/takes labels \[x\]/);
		expect(() => registry.series(a, { y: "1" })).toThrow(/takes labels \[x\]/);
		expect(() => registry.series(counter("b_total", "b"))).toThrow(/not in this registry/);
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

describe("Recorder", () => {
	it("takes deltas: a delta holds only what came since the last one, the totals everything", () => {
		const c = counter("c_total", "c");
		const registry = new Registry([c]);
		const recorder = new Recorder();
		const series = registry.series(c);
		recorder.inc(series);
		expect(recorder.takeDelta()).toEqual({ c_total: { "[]": 1 } });
		expect(recorder.hasPending()).toBe(false);
		recorder.inc(series, 2);
		expect(recorder.takeDelta()).toEqual({ c_total: { "[]": 2 } });
		expect(recorder.totals).toEqual({ c_total: { "[]": 3 } });
	});

	it("observes into per-bucket counts, the first observation starting from an empty histogram", () => {
		const h = histogram("h", "x", [1, 2]);
		const registry = new Registry([h]);
		const recorder = new Recorder();
		const series = registry.series(h);
		for (const value of [0.5, 2, 7]) recorder.observe(series, value);
		expect(recorder.totals).toEqual({ h: { "[]": { b: [1, 1, 1], s: 9.5, c: 3 } } });
	});
});
