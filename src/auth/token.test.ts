import { describe, expect, it } from "vitest";
import { BearerTokens } from "./token.ts";

describe("BearerTokens", () => {
	it("accepts the scheme in any case, with one or more spaces and outer whitespace", async () => {
		const tokens = new BearerTokens(["tok-1"]);
		for (const header of ["Bearer tok-1", "bearer tok-1", "BEARER tok-1", "Bearer   tok-1", "  Bearer tok-1  "]) {
			expect(await tokens.matches(header), header).toBe(true);
		}
	});

	it("refuses other schemes, other tokens, a prefix of a token, and extra words", async () => {
		const tokens = new BearerTokens(["tok-1"]);
		for (const header of ["Basic tok-1", "Basic Bearer tok-1", "NotBearer tok-1", "Bearer tok-2", "Bearer tok-", "Bearer tok-1 x", "Bearertok-1", "tok-1", "Bearer ", "", null, undefined]) {
			expect(await tokens.matches(header), String(header)).toBe(false);
		}
	});

	it("accepts any of several tokens, whatever its position, and none when no token is configured", async () => {
		const tokens = new BearerTokens(["first", "second", "third"]);
		expect(tokens.count).toBe(3);
		for (const token of ["first", "second", "third"]) expect(await tokens.matches(`Bearer ${token}`)).toBe(true);
		const none = new BearerTokens([]);
		expect(none.count).toBe(0);
		expect(await none.matches("Bearer ")).toBe(false);
		expect(await none.matches("Bearer anything")).toBe(false);
	});
});
