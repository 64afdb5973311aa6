import { describe, expect, it } from "vitest";
import { topLevelKeys } from "./json-keys.ts";

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
