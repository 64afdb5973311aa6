import { describe, expect, it } from "vitest";
import { parseDictionaryWithNames, repeatedParameters, respelledNumbers } from "./dictionary-members.ts";

const namesOf = (field: string) => parseDictionaryWithNames(field)?.names ?? null;

describe("parseDictionaryWithNames", () => {
	it("gives the library's dictionary and every member name as written, repeats kept", () => {
		const parsed = parseDictionaryWithNames("a=1, b=2, a=3");
		expect(parsed?.names).toEqual(["a", "b", "a"]);
		// The library keeps the last member of a name.
		expect([...parsed!.dictionary]).toEqual([
			["a", [3, new Map()]],
			["b", [2, new Map()]],
		]);
	});

	it("reads the names of every kind of member: items, inner lists, booleans without a value, parameters", () => {
		expect(namesOf('sig1=("@method" "@path");created=1;keyid="k", d=:AQID:, t=tok;x=?0, flag, last;p=1')).toEqual(["sig1", "d", "t", "flag", "last"]);
	});

	it("does not cut at a comma inside a string, escaped quote and backslash included", () => {
		expect(namesOf('a="x, b=1", c=("y, d" "z,");t="q\\", e=2, \\\\", f=3')).toEqual(["a", "c", "f"]);
		expect(namesOf('a="x,\\\\", b=1')).toEqual(["a", "b"]);
	});

	it("takes the OWS the RFC allows around commas, and no space at all", () => {
		expect(namesOf("a=1 ,\tb=2,c=3   ,  a=4")).toEqual(["a", "b", "c", "a"]);
	});

	it("is null where the library refuses the field, and empty for an empty one", () => {
		expect(namesOf("a=1,")).toBeNull();
		expect(namesOf('a="open, b=1')).toBeNull();
		expect(namesOf("A=1")).toBeNull();
		expect(namesOf("a=:not base64!:")).toBeNull();
		expect(namesOf("")).toEqual([]);
	});
});

describe("respelledNumbers", () => {
	it("names each parameter written as a decimal, whatever its sign or digits, and no other", () => {
		expect(respelledNumbers('sig1=("@method");created=1.0;expires=-2.500;keyid="a";nonce="b"')).toEqual(new Set(["created", "expires"]));
		expect(respelledNumbers('sig1=("@method");created=1;expires=2;keyid="a"')).toEqual(new Set());
		// RFC 8941 allows spaces after a parameter's ";".
		expect(respelledNumbers('sig1=("@method");  created=1.0; keyid="a"')).toEqual(new Set(["created"]));
		expect(respelledNumbers('sig1=("@method");tag="a;created=1.0\\";x=2.0";created=3')).toEqual(new Set());
		expect(respelledNumbers('sig1=("@method";x=1.5);keyid=tok.en')).toEqual(new Set(["x"]));
	});

	it("names each parameter written with a leading zero (read as the same number, serialized without it); a plain 0 is no such spelling", () => {
		expect(respelledNumbers('sig1=("@method");created=01700000000;expires=-05;keyid="a"')).toEqual(new Set(["created", "expires"]));
		expect(respelledNumbers('sig1=("@method");created=0;expires=10;keyid="a"')).toEqual(new Set());
		expect(respelledNumbers('sig1=("@method");tag="created=01";created=1')).toEqual(new Set());
	});

	it("names each parameter written as a negative zero (read as 0, serialized as 0), and not a negative number", () => {
		expect(respelledNumbers('sig1=("@method");created=-0;expires=-0;keyid="a"')).toEqual(new Set(["created", "expires"]));
		expect(respelledNumbers('sig1=("@method");created=1;expires=-0')).toEqual(new Set(["expires"]));
		expect(respelledNumbers('sig1=("@method");created=-7;expires=-10;keyid="a"')).toEqual(new Set());
	});
});

describe("repeatedParameters", () => {
	it("names each parameter written twice or more, and no other, strings skipped", () => {
		expect(repeatedParameters('sig1=("@method");created=1;keyid="a";created=2;nonce="b";nonce="c";nonce="d"')).toEqual(new Set(["created", "nonce"]));
		expect(repeatedParameters('sig1=("@method");created=1;expires=2;keyid="a"')).toEqual(new Set());
		expect(repeatedParameters('sig1=("@method");tag="x;created=1";created=3')).toEqual(new Set());
		expect(repeatedParameters('sig1=("@method");created=1; created=1')).toEqual(new Set(["created"]));
	});
});
