import { describe, expect, it } from "vitest";
import { counter, gauge, histogram } from "./definitions.ts";

describe("metric definitions", () => {
	it("validates names and labels when a metric is defined", () => {
		expect(() => counter("bad-name_total", "x")).toThrow(/not valid/);
		expect(() => counter("requests", "x")).toThrow(/_total/);
		expect(() => counter("requests_total_bytes", "x")).toThrow(/_total/);
		expect(() => gauge("g", "x", ["ok", "ok"])).toThrow(/duplicate/);
		expect(() => gauge("g", "x", ["__reserved"])).toThrow(/not valid/);
		expect(() => gauge("g", "x", ["1st"])).toThrow(/not valid/);
		expect(() => histogram("h", "x", [1, 2], ["le"])).toThrow(/reserved/);
		expect(() => histogram("h", "x", [2, 1])).toThrow(/increase/);
		expect(() => histogram("h", "x", [1, Number.POSITIVE_INFINITY])).toThrow(/finite/);
		expect(() => histogram("h", "x", [])).toThrow(/at least one/);
	});

	it("refuses equal bucket bounds (they must strictly increase)", () => {
		expect(() => histogram("h", "x", [1, 1])).toThrow(/increase/);
		expect(histogram("h", "x", [1, 2]).buckets).toEqual([1, 2]);
	});

	it("sorts label names, so a series is identified by its values in one order", () => {
		expect(counter("c_total", "c", ["b", "a"]).labelNames).toEqual(["a", "b"]);
	});
});
