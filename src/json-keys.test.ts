import { describe, expect, it } from "vitest";
import { objectMemberNames, repeatsAName, topLevelKeys } from "./json-keys.ts";

describe("topLevelKeys: the member names JSON.parse would merge", () => {
	it.each<[string, string, string[]]>([
		["an empty object", "{}", []],
		["names in order", '{"b": 1, "a": 2}', ["b", "a"]],
		["a repeated name twice", '{"a": 1, "a": 2}', ["a", "a"]],
		["no whitespace", '{"a":"x","b":["y"],"c":{"d":1}}', ["a", "b", "c"]],
		["whitespace and newlines around everything", '\n{ "a" :\t1 ,\r\n "b" : 2 }\n', ["a", "b"]],
		["names inside a nested object are not top-level", '{"a": {"b": {"c": 1}, "d": 2}, "e": 3}', ["a", "e"]],
		["strings inside an array are not names", '{"a": ["b", "c", {"d": 1}], "e": 3}', ["a", "e"]],
		["a string value is not a name", '{"a": "b", "c": "d"}', ["a", "c"]],
		["a value that looks like members", '{"a": "\\",\\"b\\":\\"", "c": 1}', ["a", "c"]],
		["an escaped quote inside a name", '{"x\\"y": 1, "z": 2}', ['x"y', "z"]],
		["a name ending in an escaped backslash", '{"a\\\\": 1, "b": 2}', ["a\\", "b"]],
		["a unicode escape is decoded", '{"sv\\u0063": 1, "svc": 2}', ["svc", "svc"]],
		["brackets and braces inside strings", '{"{[": "]}", "b": "{"}', ["{[", "b"]],
	])("%s", (_, text, keys) => {
		expect(JSON.parse(text)).toBeTypeOf("object");
		expect(topLevelKeys(text)).toEqual(keys);
	});
});

describe("objectMemberNames and repeatsAName: every object's names, at any depth", () => {
	it("lists each object's names in the order the objects open, the top level first", () => {
		expect(objectMemberNames('{"a": {"b": 1, "c": [{"d": 2}, {"e": 3, "f": 4}]}, "g": {}}')).toEqual([["a", "g"], ["b", "c"], ["d"], ["e", "f"], []]);
		expect(objectMemberNames('[{"a": 1}, "b", {"c": {"d": 1}}]')).toEqual([["a"], ["c"], ["d"]]);
	});

	it.each<[string, string, boolean]>([
		["a repeated field inside an entry", '{"a": {"rpm": 1, "rpm": 2}}', true],
		["a repeated id at the top", '{"a": {}, "a": {}}', true],
		["a repeat hidden by an escape, deep", '{"a": {"b": {"rp\\u006d": 1, "rpm": 2}}}', true],
		["the same field in two entries", '{"a": {"rpm": 1}, "b": {"rpm": 2}}', false],
		["a field named like its entry", '{"rpm": {"rpm": 1}}', false],
		["names in strings and arrays", '{"a": ["rpm", "rpm"], "b": "rpm,rpm"}', false],
	])("%s: %s", (_, text, repeats) => {
		expect(JSON.parse(text)).toBeTypeOf("object");
		expect(repeatsAName(text)).toBe(repeats);
	});
});
