import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import { signRequest } from "../client/sign.ts";
import type { AuthEvents, AuthOutcome } from "../events.ts";
import { hmacAuth, type VerifiedVariables } from "./hmac-auth.ts";
import { Keyring } from "./keyring.ts";

const SECRET = "hmac-auth-middleware-test-secret";
const NOW = 1_763_000_000_000;

/** The middleware alone, in a bare Hono app whose handler echoes what it set on the context. */
function app(options: { maxBodyBytes?: number; secrets?: string[] } = {}) {
	const outcomes: AuthOutcome[] = [];
	const events: AuthEvents = { outcome: (...outcome) => outcomes.push(outcome), skew() {}, secretSlot() {}, scheme() {} };
	const hono = new Hono<{ Variables: VerifiedVariables }>();
	hono.all(
		"*",
		hmacAuth({
			keyring: new Keyring({ sharedSecrets: options.secrets ?? [SECRET], clientSecrets: new Map() }),
			maxSkewMs: 300_000,
			maxBodyBytes: options.maxBodyBytes ?? 1024,
			events,
			log: { info() {}, warn() {}, error() {} },
			now: () => NOW,
		}),
		(c) => {
			const { body, ...rest } = c.var.verified;
			return c.json({ ...rest, body: new TextDecoder().decode(body) });
		},
	);
	hono.onError((error) => (error instanceof HTTPException ? error.getResponse() : new Response("unexpected", { status: 599 })));
	return { hono, outcomes };
}

async function signed(path: string, body: string, init: { urlPath?: string; method?: string; timestamp?: number } = {}) {
	const method = init.method ?? "POST";
	const { headers } = await signRequest({ clientId: "svc", secret: SECRET, method, path, body, timestamp: init.timestamp ?? NOW });
	return { url: `https://gw.test${init.urlPath ?? path}`, headers: { ...headers } as Record<string, string>, method };
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

describe("hmacAuth() on its own", () => {
	it("derives the signed path and query itself and hands on what it verified", async () => {
		const { hono, outcomes } = app();
		const request = await signed("/agent/chat", "hello", { urlPath: "/api/agent/chat" });
		const response = await hono.request(`${request.url}?a=1&b=%20`, { method: "POST", headers: request.headers, body: "hello" });
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({
			scheme: "v1",
			clientId: "svc",
			path: "/agent/chat",
			query: "?a=1&b=%20",
			body: "hello",
			replay: { id: request.headers["X-Signature"], signedAt: String(NOW) },
		});
		// It claims nothing and counts no success: that is replay protection's, after it.
		expect(outcomes).toEqual([]);
	});

	it("signs and passes a path with /api further in as it is (only a leading /api/agent/ is an alias)", async () => {
		const { hono } = app();
		const request = await signed("/agent/api/chat", "x");
		const response = await hono.request(request.url, { method: "POST", headers: request.headers, body: "x" });
		expect(response.status).toBe(200);
		expect(((await response.json()) as { path: string }).path).toBe("/agent/api/chat");
	});

	it("refuses an uppercased copy of a valid signature (403), so one request cannot have two replay keys", async () => {
		const { hono, outcomes } = app();
		const request = await signed("/agent/chat", "x");
		const upper = { ...request.headers, "X-Signature": request.headers["X-Signature"]!.toUpperCase() };
		expect(upper["X-Signature"]).not.toBe(request.headers["X-Signature"]);
		const response = await hono.request(request.url, { method: "POST", headers: upper, body: "x" });
		expect(response.status).toBe(403);
		expect(await response.json()).toEqual({ detail: "The request signature is not valid.", code: "bad_signature" });
		expect(outcomes).toEqual([["fail", "bad_signature"]]);
	});

	it("verifies an unknown client exactly once, against a dummy key (the same cost as a known one)", async () => {
		const keyring = new Keyring({ sharedSecrets: [], clientSecrets: new Map([["svc", [SECRET]]]) });
		const outcomes: AuthOutcome[] = [];
		const clientsOnly = new Hono<{ Variables: VerifiedVariables }>();
		const events: AuthEvents = { outcome: (...outcome) => outcomes.push(outcome), skew() {}, secretSlot() {}, scheme() {} };
		const log = { info() {}, warn() {}, error() {} };
		clientsOnly.all("*", hmacAuth({ keyring, maxSkewMs: 300_000, maxBodyBytes: 1024, events, log, now: () => NOW }), (c) => c.text("passed"));
		clientsOnly.onError((error) => (error as HTTPException).getResponse());
		const request = await signed("/agent/chat", "x");
		const original = crypto.subtle.verify.bind(crypto.subtle);
		let verifies = 0;
		crypto.subtle.verify = ((...args: Parameters<typeof original>) => {
			verifies++;
			return original(...args);
		}) as typeof crypto.subtle.verify;
		try {
			const unknown = { ...request.headers, "X-Client-Id": "someone-else" };
			expect((await clientsOnly.request(request.url, { method: "POST", headers: unknown, body: "x" })).status).toBe(403);
			expect(verifies).toBe(1);
			verifies = 0;
			expect((await clientsOnly.request(request.url, { method: "POST", headers: request.headers, body: "x" })).status).toBe(200);
			expect(verifies).toBe(1);
		} finally {
			crypto.subtle.verify = original;
		}
		expect(outcomes).toEqual([["fail", "unknown_client"]]);
	});
});

describe("hmacAuth() body limit", () => {
	it("413 on a declared Content-Length over the limit, without reading the stream", async () => {
		const { hono } = app({ maxBodyBytes: 1024 });
		const { stream, state } = trackedStream(2048);
		const request = await signed("/agent/chat", "x".repeat(2048));
		const response = await hono.request(request.url, {
			method: "POST",
			headers: { ...request.headers, "Content-Length": "2048" },
			body: stream,
			duplex: "half",
		} as RequestInit);
		expect(response.status).toBe(413);
		expect(state.pulled).toBe(0);
	});

	it("accepts a declared Content-Length equal to the limit", async () => {
		const { hono } = app({ maxBodyBytes: 1024 });
		const body = "x".repeat(1024);
		const request = await signed("/agent/chat", body);
		const response = await hono.request(request.url, { method: "POST", headers: { ...request.headers, "Content-Length": "1024" }, body });
		expect(response.status).toBe(200);
		expect(((await response.json()) as { body: string }).body).toBe(body);
	});

	it("counts the stream when Transfer-Encoding is present, instead of trusting Content-Length", async () => {
		const { hono } = app({ maxBodyBytes: 1024 });
		const { stream } = trackedStream(2048);
		const request = await signed("/agent/chat", "x".repeat(2048));
		const lying = new Request(request.url, {
			method: "POST",
			headers: { ...request.headers, "Content-Length": "10", "Transfer-Encoding": "chunked" },
			body: stream,
			duplex: "half",
		} as RequestInit);
		const response = await hono.request(lying);
		expect(response.status).toBe(413);
	});

	it("accepts a streamed body of exactly the limit, and refuses one byte more", async () => {
		for (const [size, status] of [
			[1024, 200],
			[1025, 413],
		] as const) {
			const { hono } = app({ maxBodyBytes: 1024 });
			const { stream } = trackedStream(size, 100);
			const request = await signed("/agent/chat", "x".repeat(size));
			const response = await hono.request(request.url, { method: "POST", headers: request.headers, body: stream, duplex: "half" } as RequestInit);
			expect(response.status).toBe(status);
		}
	});
});

describe("hmacAuth() clock skew", () => {
	it("408 with X-Server-Time; a timestamp that looks like seconds is told it must be milliseconds", async () => {
		const { hono, outcomes } = app();
		const seconds = await signed("/agent/chat", "x", { timestamp: Math.floor(NOW / 1000) });
		const response = await hono.request(seconds.url, { method: "POST", headers: seconds.headers, body: "x" });
		expect(response.status).toBe(408);
		expect(response.headers.get("X-Server-Time")).toBe(String(NOW));
		expect(((await response.json()) as { detail: string }).detail).toMatch(/milliseconds.*looks like seconds/);

		const late = await signed("/agent/chat", "x", { timestamp: NOW - 300_001 });
		const lateResponse = await hono.request(late.url, { method: "POST", headers: late.headers, body: "x" });
		expect(lateResponse.status).toBe(408);
		expect(await lateResponse.json()).toEqual({ detail: "X-Timestamp is too far from the server time; see X-Server-Time.", code: "clock_skew" });
		expect(outcomes).toEqual([
			["fail", "clock_skew"],
			["fail", "clock_skew"],
		]);
	});
});

describe("hmacAuth() options", () => {
	it("fails when the factory runs with a bad option", () => {
		const base = { keyring: new Keyring({ sharedSecrets: [SECRET], clientSecrets: new Map() }), events: { outcome() {}, skew() {}, secretSlot() {}, scheme() {} }, log: { info() {}, warn() {}, error() {} } };
		expect(() => hmacAuth({ ...base, maxSkewMs: 0, maxBodyBytes: 1 })).toThrow(/maxSkewMs/);
		expect(() => hmacAuth({ ...base, maxSkewMs: 1, maxBodyBytes: 0 })).toThrow(/maxBodyBytes/);
	});
});
