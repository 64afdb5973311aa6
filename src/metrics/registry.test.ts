import { describe, expect, it } from "vitest";
import { counter } from "./definitions.ts";
import { Registry } from "./registry.ts";

describe("Registry", () => {
	it("refuses two families of one name, and labels that do not match the definition", () => {
		const a = counter("a_total", "a", ["x"]);
		expect(() => new Registry([a, counter("a_total", "again")])).toThrow(/defined twice/);
		const registry = new Registry([a]);
		expect(() => registry.series(a, {})).toThrow(/takes labels \[x\]/);
		expect(() => registry.series(a, { y: "1" })).toThrow(/takes labels \[x\]/);
		expect(() => registry.series(counter("b_total", "b"))).toThrow(/not in this registry/);
	});
});
