import { describe, expect, it } from "vitest";
import { AGENT_PATH_PATTERN, CLIENT_ID_PATTERN, rawPathname, SIGNATURE_PATTERN, signedPath, TIMESTAMP_PATTERN } from "./grammar.ts";

describe("scheme v1 grammars at their bounds (docs/design.md, Scheme v1)", () => {
	it("client id: 1 to 64 characters of A-Z a-z 0-9 . _ -", () => {
		expect(CLIENT_ID_PATTERN.test("a")).toBe(true);
		expect(CLIENT_ID_PATTERN.test("x".repeat(64))).toBe(true);
		expect(CLIENT_ID_PATTERN.test("x".repeat(65))).toBe(false);
		expect(CLIENT_ID_PATTERN.test("")).toBe(false);
		expect(CLIENT_ID_PATTERN.test("Az09._-")).toBe(true);
		expect(CLIENT_ID_PATTERN.test("a b")).toBe(false);
		expect(CLIENT_ID_PATTERN.test("a/b")).toBe(false);
	});

	it("timestamp: 1 to 16 digits", () => {
		expect(TIMESTAMP_PATTERN.test("0")).toBe(true);
		expect(TIMESTAMP_PATTERN.test("9".repeat(16))).toBe(true);
		expect(TIMESTAMP_PATTERN.test("9".repeat(17))).toBe(false);
		expect(TIMESTAMP_PATTERN.test("-1")).toBe(false);
		expect(TIMESTAMP_PATTERN.test("1.5")).toBe(false);
	});

	it("signature: exactly 64 lowercase hex digits", () => {
		expect(SIGNATURE_PATTERN.test("0123456789abcdef".repeat(4))).toBe(true);
		expect(SIGNATURE_PATTERN.test("0123456789ABCDEF".repeat(4))).toBe(false);
		expect(SIGNATURE_PATTERN.test("a".repeat(63))).toBe(false);
		expect(SIGNATURE_PATTERN.test("a".repeat(65))).toBe(false);
		expect(SIGNATURE_PATTERN.test("g".repeat(64))).toBe(false);
	});

	it("agent path: segments below /agent, one trailing slash allowed", () => {
		expect(AGENT_PATH_PATTERN.test("/agent/chat")).toBe(true);
		expect(AGENT_PATH_PATTERN.test("/agent/chat/")).toBe(true);
		expect(AGENT_PATH_PATTERN.test("/agent/a/b.c_d~e-f")).toBe(true);
		expect(AGENT_PATH_PATTERN.test("/agent/%2e%2e")).toBe(false);
		expect(AGENT_PATH_PATTERN.test("/agent/")).toBe(false);
		expect(AGENT_PATH_PATTERN.test("/agent")).toBe(false);
		expect(AGENT_PATH_PATTERN.test("/agent//chat")).toBe(false);
		expect(AGENT_PATH_PATTERN.test("/agent/chat//")).toBe(false);
	});
});

describe("signedPath and rawPathname", () => {
	it("removes exactly the leading /api of the alias, and nothing else", () => {
		expect(signedPath("/api/agent/chat")).toBe("/agent/chat");
		expect(signedPath("/agent/chat")).toBe("/agent/chat");
		expect(signedPath("/api/agents")).toBe("/api/agents");
		expect(signedPath("/x/api/agent/chat")).toBe("/x/api/agent/chat");
	});

	it("gives the pathname as new URL(url).pathname does, percent-encoding kept", () => {
		for (const url of [
			"https://gateway.test/agent/chat?x=1",
			"https://gateway.test/agent/a%2Fb?q#frag",
			"https://gateway.test/agent/chat#only-fragment",
			"https://gateway.test:8443/api/agent/chat",
			"https://gateway.test/",
			"http://127.0.0.1:8787/agent/%7Euser/",
		]) {
			expect(rawPathname(url)).toBe(new URL(url).pathname);
		}
		expect(rawPathname("https://gateway.test/agent/a%2Fb?q")).toBe("/agent/a%2Fb");
		expect(rawPathname("https://gateway.test/agent/chat#x/y")).toBe("/agent/chat");
		expect(rawPathname("https://gateway.test")).toBe("/");
	});
});
