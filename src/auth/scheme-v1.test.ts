import { describe, expect, it } from "vitest";
import { rawPathname } from "../app.ts";
import { signRequest } from "../client/sign.ts";
import { Keyring, signedPath } from "./crypto.ts";
import { AGENT_PATH_PATTERN, CLIENT_ID_PATTERN, SIGNATURE_PATTERN, TIMESTAMP_PATTERN } from "./grammar.ts";
import { schemeV1 } from "./scheme-v1.ts";

const SECRET = "scheme-v1-test-secret-of-32-chars";
const NOW = 1_763_000_000_000;
const keyring = new Keyring({ sharedSecrets: [SECRET], clientSecrets: new Map() });
const v1 = schemeV1({ maxSkewMs: 300_000, maxBodyBytes: 1024 });

async function signed(path: string, body: string, init: { urlPath?: string; timestamp?: number; headers?: Record<string, string> } = {}) {
	const { headers } = await signRequest({ clientId: "svc", secret: SECRET, method: "POST", path, body, timestamp: init.timestamp ?? NOW });
	return { url: `https://gw.test${init.urlPath ?? path}`, headers: { ...headers, ...init.headers } as Record<string, string> };
}

/** A request body as a stream that says whether anyone read it. */
function trackedStream(bytes: number, chunk = 256) {
	const state = { pulled: 0 };
	let left = bytes;
	const stream = new ReadableStream<Uint8Array>(
		{
			pull(controller) {
				state.pulled++;
				if (left === 0) return controller.close();
				const size = Math.min(chunk, left);
				left -= size;
				controller.enqueue(new Uint8Array(size).fill(120));
			},
		},
		// Nothing is pulled until someone reads.
		{ highWaterMark: 0 },
	);
	return { stream, state };
}

describe("schemeV1: a plain verifier", () => {
	it("derives the signed path and query itself and returns what it verified, with the slot and the skew", async () => {
		const request = await signed("/agent/chat", "hello", { urlPath: "/api/agent/chat" });
		const result = await v1(new Request(`${request.url}?a=1&b=%20`, { method: "POST", headers: request.headers, body: "hello" }), keyring, NOW + 7);
		expect(result).toEqual({
			ok: true,
			request: {
				scheme: "v1",
				clientId: "svc",
				path: "/agent/chat",
				query: "?a=1&b=%20",
				body: new TextEncoder().encode("hello"),
				coveredHeaders: [],
				replay: { id: request.headers["X-Signature"], signedAt: String(NOW) },
			},
			signed: { slot: 0, skewMs: 7, clientId: "svc" },
		});
	});

	it("signs and passes a path with /api further in as it is (only a leading /api/agent/ is an alias)", async () => {
		const request = await signed("/agent/api/chat", "x");
		const result = await v1(new Request(request.url, { method: "POST", headers: request.headers, body: "x" }), keyring, NOW);
		expect(result.ok && result.request.path).toBe("/agent/api/chat");
	});

	it("refuses an uppercased copy of a valid signature, naming the grammar, so one request cannot have two replay keys", async () => {
		const request = await signed("/agent/chat", "x");
		const upper = { ...request.headers, "X-Signature": request.headers["X-Signature"]!.toUpperCase() };
		const result = await v1(new Request(request.url, { method: "POST", headers: upper, body: "x" }), keyring, NOW);
		expect(result).toEqual({ ok: false, code: "bad_signature", field: "X-Signature", rule: "must be 64 lowercase hex characters" });
	});

	it("refuses an unknown client like a bad signature, with the metrics mode unknown_client", async () => {
		const clientsOnly = new Keyring({ sharedSecrets: [], clientSecrets: new Map([["svc", [SECRET]]]) });
		const request = await signed("/agent/chat", "x", { headers: { "X-Client-Id": "someone-else" } });
		const unknown = await v1(new Request(request.url, { method: "POST", headers: request.headers, body: "x" }), clientsOnly, NOW);
		expect(unknown).toEqual({ ok: false, code: "bad_signature", field: undefined, rule: undefined, mode: "unknown_client" });
		const bad = await signed("/agent/chat", "x", { headers: { "X-Signature": "0".repeat(64) } });
		expect(await v1(new Request(bad.url, { method: "POST", headers: bad.headers, body: "x" }), clientsOnly, NOW)).toEqual({
			ok: false,
			code: "bad_signature",
			field: undefined,
			rule: undefined,
		});
	});

	it("answers 503 keyring_unavailable when the key lookup fails", async () => {
		const failing = { configured: true, keysFor: async () => ({ status: "unavailable" as const }) };
		const request = await signed("/agent/chat", "x");
		const result = await v1(new Request(request.url, { method: "POST", headers: request.headers, body: "x" }), failing, NOW);
		expect(result).toMatchObject({ ok: false, code: "keyring_unavailable" });
	});
});

describe("schemeV1 body limit", () => {
	it("413 on a declared Content-Length over the limit, without reading the stream", async () => {
		const { stream, state } = trackedStream(2048);
		const request = await signed("/agent/chat", "x".repeat(2048), { headers: { "Content-Length": "2048" } });
		const result = await v1(new Request(request.url, { method: "POST", headers: request.headers, body: stream }), keyring, NOW);
		expect(result).toEqual({ ok: false, code: "body_too_large", field: "body", rule: "must be at most 1024 bytes" });
		expect(state.pulled).toBe(0);
	});

	it("accepts a declared Content-Length equal to the limit", async () => {
		const body = "x".repeat(1024);
		const request = await signed("/agent/chat", body, { headers: { "Content-Length": "1024" } });
		const result = await v1(new Request(request.url, { method: "POST", headers: request.headers, body }), keyring, NOW);
		expect(result.ok && new TextDecoder().decode(result.request.body)).toBe(body);
	});

	it("counts the stream when Transfer-Encoding is present, instead of trusting Content-Length", async () => {
		const { stream } = trackedStream(2048);
		const request = await signed("/agent/chat", "x".repeat(2048), { headers: { "Content-Length": "10", "Transfer-Encoding": "chunked" } });
		const result = await v1(new Request(request.url, { method: "POST", headers: request.headers, body: stream }), keyring, NOW);
		expect(result).toMatchObject({ ok: false, code: "body_too_large" });
	});

	it("accepts a streamed body of exactly the limit, and refuses one byte more", async () => {
		for (const [size, ok] of [
			[1024, true],
			[1025, false],
		] as const) {
			const { stream } = trackedStream(size, 100);
			const request = await signed("/agent/chat", "x".repeat(size));
			const result = await v1(new Request(request.url, { method: "POST", headers: request.headers, body: stream }), keyring, NOW);
			expect(result.ok).toBe(ok);
		}
	});
});

describe("schemeV1 clock skew", () => {
	it("408 with X-Server-Time and the slot and skew of the verified signature", async () => {
		const late = await signed("/agent/chat", "x", { timestamp: NOW - 300_001 });
		expect(await v1(new Request(late.url, { method: "POST", headers: late.headers, body: "x" }), keyring, NOW)).toEqual({
			ok: false,
			code: "clock_skew",
			field: "X-Timestamp",
			rule: "must be within 300000 ms of the server time (see X-Server-Time)",
			headers: { "X-Server-Time": String(NOW) },
			signed: { slot: 0, skewMs: 300_001, clientId: "svc" },
		});
		const early = await signed("/agent/chat", "x", { timestamp: NOW + 300_001 });
		expect(await v1(new Request(early.url, { method: "POST", headers: early.headers, body: "x" }), keyring, NOW)).toMatchObject({ code: "clock_skew" });
		const edge = await signed("/agent/chat", "x", { timestamp: NOW + 300_000 });
		expect((await v1(new Request(edge.url, { method: "POST", headers: edge.headers, body: "x" }), keyring, NOW)).ok).toBe(true);
	});

	it("a timestamp that looks like seconds is told it must be milliseconds", async () => {
		const seconds = await signed("/agent/chat", "x", { timestamp: Math.floor(NOW / 1000) });
		expect(await v1(new Request(seconds.url, { method: "POST", headers: seconds.headers, body: "x" }), keyring, NOW)).toMatchObject({
			code: "clock_skew",
			field: "X-Timestamp",
			rule: "must be milliseconds since the epoch, and this one looks like seconds (see X-Server-Time)",
		});
	});

	it("names seconds up to the window's edge read as milliseconds, and not one second past it", async () => {
		const ruleAt = async (timestamp: number) => {
			const request = await signed("/agent/chat", "x", { timestamp });
			const result = await v1(new Request(request.url, { method: "POST", headers: request.headers, body: "x" }), keyring, NOW);
			return result.ok ? "ok" : result.rule;
		};
		// (NOW - 300_000) / 1000 is exactly 300 000 ms from NOW once read as seconds: within the window.
		expect(await ruleAt((NOW - 300_000) / 1000)).toBe("must be milliseconds since the epoch, and this one looks like seconds (see X-Server-Time)");
		expect(await ruleAt((NOW - 301_000) / 1000)).toBe("must be within 300000 ms of the server time (see X-Server-Time)");
	});
});

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
