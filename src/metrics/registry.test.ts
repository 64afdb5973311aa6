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
		// Another family of the same name (another deployment's definitions) is not this one.
		expect(() => registry.series(counter("a_total", "another", ["x"]), { x: "1" })).toThrow(/not in this registry/);
	});
});
