import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import { signedInit, signedV2Init } from "../../test/fixtures/signed.ts";
import type { AuthEvents, SignatureScheme as SchemeName } from "../events.ts";
import type { LogFields } from "../log.ts";
import { importHmacKey, Keyring, type KeySource } from "./crypto.ts";
import { schemeV1 } from "./scheme-v1.ts";
import { schemeV2 } from "./scheme-v2.ts";
import { declaresBody, readBodyWithLimit, signatureAuth, type SignatureAuthOptions } from "./signature-auth.ts";
import type { VerifiedVariables } from "./verified.ts";

const SECRET = "signature-auth-test-secret-0123456";
const NOW = 1_763_000_000_000;
const CLIENT = { clientId: "svc", secret: SECRET };

/** The middleware alone, in a bare Hono app whose handler echoes the verified client; every event recorded in order. */
function app(options: Partial<SignatureAuthOptions> = {}) {
	const events: unknown[][] = [];
	const logs: [string, LogFields | undefined][] = [];
	const recorder: AuthEvents = {
		outcome: (...outcome) => events.push(["outcome", ...outcome]),
		skew: (ms) => events.push(["skew", ms]),
		secretSlot: (slot) => events.push(["slot", slot]),
		scheme: (scheme) => events.push(["scheme", scheme]),
	};
	const hono = new Hono<{ Variables: VerifiedVariables }>();
	hono.all(
		"*",
		signatureAuth({
			keys: new Keyring({ sharedSecrets: [SECRET], clientSecrets: new Map() }),
			schemes: ["v1", "v2"],
			verifiers: { v1: schemeV1, v2: schemeV2 },
			maxSkewMs: 300_000,
			maxBodyBytes: 1024,
			events: recorder,
			log: { info() {}, warn: (message, fields) => logs.push([message, fields]), error() {} },
			now: () => NOW,
			...options,
		}),
		(c) => c.json({ scheme: c.var.verified.scheme, clientId: c.var.verified.clientId }),
	);
	hono.onError((error) => (error instanceof HTTPException ? error.getResponse() : new Response("unexpected", { status: 599 })));
	return { hono, events, logs };
}

async function v1Request(init: Parameters<typeof signedInit>[0] = {}): Promise<Request> {
	const { path, init: requestInit } = await signedInit(init, { ...CLIENT, timestamp: NOW });
	return new Request(`https://gw.test${path}`, requestInit);
}

async function v2Request(init: Parameters<typeof signedV2Init>[0] = {}): Promise<Request> {
	const { target, init: requestInit } = await signedV2Init(init, { ...CLIENT, created: NOW / 1000 });
	return new Request(`https://gw.test${target}`, requestInit);
}

describe("signatureAuth()", () => {
	it.each<[SchemeName, () => Promise<Request>]>([
		["v1", () => v1Request()],
		["v2", () => v2Request()],
	])("verifies %s, counts the slot, the skew and the scheme once, and hands the request on", async (scheme, build) => {
		const { hono, events } = app();
		const response = await hono.request(await build());
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ scheme, clientId: "svc" });
		// No outcome: auth="ok" is the replay claim's to count, after it.
		expect(events).toEqual([["slot", 0], ["skew", 0], ["scheme", scheme]]);
	});

	it("answers a refusal with its code and a detail naming the field and the rule, counted once, nothing else", async () => {
		const { hono, events } = app();
		const response = await hono.request(await v2Request({ headers: { signature: null } }));
		expect(response.status).toBe(401);
		expect(response.headers.get("content-type")).toBe("application/json");
		expect(await response.text()).toBe(JSON.stringify({ detail: "Signature is missing", code: "missing_headers" }));
		expect(events).toEqual([["outcome", "fail", "missing_headers"]]);
	});

	it("counts an unknown client as unknown_client, answering as bad_signature with the catalogue's sentence", async () => {
		const { hono, events } = app({ keys: new Keyring({ sharedSecrets: [], clientSecrets: new Map([["other", [SECRET]]]) }) });
		const response = await hono.request(await v1Request());
		expect(response.status).toBe(403);
		expect(await response.text()).toBe(JSON.stringify({ detail: "The request signature is not valid.", code: "bad_signature" }));
		expect(events).toEqual([["outcome", "fail", "unknown_client"]]);
	});

	it("counts the slot and the skew of a signed request refused by its clock, with X-Server-Time on the answer", async () => {
		const { hono, events } = app();
		const response = await hono.request(await v1Request({ timestamp: NOW - 300_001 }));
		expect(response.status).toBe(408);
		expect(response.headers.get("x-server-time")).toBe(String(NOW));
		expect(events).toEqual([["slot", 0], ["skew", 300_001], ["outcome", "fail", "clock_skew"]]);
	});

	it("refuses a scheme left out of schemes with 401 scheme_not_allowed, before any other check", async () => {
		const onlyV2 = app({ schemes: ["v2"] });
		const v1 = await onlyV2.hono.request(new Request("https://gw.test/agent/chat", { method: "POST" }));
		expect(await v1.json()).toEqual({ detail: "scheme v1 is not accepted here: sign with scheme v2 (Signature-Input)", code: "scheme_not_allowed" });
		expect(onlyV2.events).toEqual([["outcome", "fail", "scheme_not_allowed"]]);
		const onlyV1 = app({ schemes: ["v1"] });
		const v2 = await onlyV1.hono.request(await v2Request());
		expect(v2.status).toBe(401);
		expect(await v2.json()).toEqual({ detail: "scheme v2 is not accepted here: sign with scheme v1 (X-Signature)", code: "scheme_not_allowed" });
		expect((await onlyV1.hono.request(await v1Request())).status).toBe(200);
	});

	it("judges a request carrying Signature-Input as v2, even with v1's headers beside it", async () => {
		const v1 = await v1Request();
		const both = new Request(v1.url, { method: "POST", headers: { ...Object.fromEntries(v1.headers), "Signature-Input": "sig1=(" }, body: "{}" });
		const response = await app().hono.request(both);
		expect(await response.json()).toEqual({ detail: "Signature is missing", code: "missing_headers" });
	});

	it("takes keys from any KeySource, asynchronously; a lookup that failed is 503 keyring_unavailable", async () => {
		const key = await importHmacKey(SECRET, "verify");
		const asked: string[] = [];
		const slow: KeySource = {
			configured: true,
			keysFor: async (clientId) => {
				asked.push(clientId);
				await new Promise((resolve) => setTimeout(resolve, 5));
				return clientId === "svc" ? { status: "found", keys: [key] } : { status: "unavailable" };
			},
		};
		const { hono, events } = app({ keys: slow });
		expect((await hono.request(await v2Request())).status).toBe(200);
		const unavailable = await hono.request(await v1Request({ clientId: "kv-client" }));
		expect(unavailable.status).toBe(503);
		expect(await unavailable.text()).toBe(JSON.stringify({ detail: "The gateway cannot reach its keyring; try again shortly.", code: "keyring_unavailable" }));
		expect(asked).toEqual(["svc", "kv-client"]);
		expect(events.at(-1)).toEqual(["outcome", "fail", "keyring_unavailable"]);
	});

	it("logs an invalid client id without it: v1 by its length, v2 by nothing", async () => {
		const { hono, logs } = app();
		await hono.request(await v1Request({ clientId: "bad id!" }));
		expect(logs).toEqual([["invalid client id", { scheme: "v1", length: 7 }]]);
	});

	it("logs invalid client ids at most once in 10 s: a flood of them is one line", async () => {
		const clock = { now: NOW };
		const { hono, logs } = app({ now: () => clock.now });
		for (let i = 0; i < 3; i++) await hono.request(await v1Request({ clientId: "bad id!" }));
		expect(logs).toHaveLength(1);
		clock.now += 9_999;
		await hono.request(await v1Request({ clientId: "bad id!" }));
		expect(logs).toHaveLength(1);
		clock.now += 1;
		await hono.request(await v1Request({ clientId: "bad id!" }));
		expect(logs).toHaveLength(2);
	});

	it("fails when the factory runs with a bad option", () => {
		const base = {
			keys: new Keyring({ sharedSecrets: [SECRET], clientSecrets: new Map() }),
			schemes: ["v1"] as const,
			verifiers: { v1: schemeV1, v2: schemeV2 },
			maxSkewMs: 1,
			maxBodyBytes: 1,
			events: { outcome() {}, skew() {}, secretSlot() {}, scheme() {} },
			log: { info() {}, warn() {}, error() {} },
		};
		expect(() => signatureAuth(base)).not.toThrow();
		expect(() => signatureAuth({ ...base, schemes: [] })).toThrow("signatureAuth: schemes must name at least one scheme");
		expect(() => signatureAuth({ ...base, maxSkewMs: 0 })).toThrow("signatureAuth: maxSkewMs must be positive");
		expect(() => signatureAuth({ ...base, maxBodyBytes: Number.NaN })).toThrow("signatureAuth: maxBodyBytes must be positive");
	});
});

const URL_ = "https://gateway.test/agent/chat";

function streamOf(chunks: (Uint8Array | Error)[]): ReadableStream<Uint8Array> {
	let i = 0;
	return new ReadableStream<Uint8Array>({
		pull(controller) {
			if (i >= chunks.length) return controller.close();
			const next = chunks[i++]!;
			if (next instanceof Error) controller.error(next);
			else controller.enqueue(next);
		},
	});
}

function streamed(chunks: (Uint8Array | Error)[], headers: Record<string, string> = {}): Request {
	return new Request(URL_, { method: "POST", body: streamOf(chunks), headers });
}

const bytes = (...values: number[]) => new Uint8Array(values);

describe("readBodyWithLimit", () => {
	it("takes a declared Content-Length equal to the limit, and refuses one byte more", async () => {
		const atLimit = await readBodyWithLimit(new Request(URL_, { method: "POST", body: "abcd" }), 4);
		expect(atLimit).toEqual({ ok: true, bytes: new TextEncoder().encode("abcd") });
		expect(await readBodyWithLimit(new Request(URL_, { method: "POST", body: "abcde" }), 4)).toEqual({ ok: false, reason: "too_large" });
	});

	it("refuses a body whose declared Content-Length is one byte over the limit before reading it; a length that is not a size is not trusted", async () => {
		const declared = (body: string, length: string) => new Request(URL_, { method: "POST", body, headers: { "Content-Length": length } });
		expect(await readBodyWithLimit(declared("abcd", "4"), 4)).toEqual({ ok: true, bytes: new TextEncoder().encode("abcd") });
		expect(await readBodyWithLimit(declared("abcde", "5"), 4)).toEqual({ ok: false, reason: "too_large" });
		// A negative length declares nothing: the stream is counted, and found too large.
		expect(await readBodyWithLimit(declared("abcdef", "-1"), 4)).toEqual({ ok: false, reason: "too_large" });
	});

	it("counts a streamed body: exactly the limit passes, one byte more is too_large", async () => {
		expect(await readBodyWithLimit(streamed([bytes(1, 2), bytes(3, 4)]), 4)).toEqual({ ok: true, bytes: bytes(1, 2, 3, 4) });
		expect(await readBodyWithLimit(streamed([bytes(1, 2), bytes(3, 4, 5)]), 4)).toEqual({ ok: false, reason: "too_large" });
	});

	it("joins several chunks in order, and reads an empty stream as no bytes", async () => {
		const result = await readBodyWithLimit(streamed([bytes(1), bytes(2, 3), bytes(4, 5, 6)]), 100);
		expect(result).toEqual({ ok: true, bytes: bytes(1, 2, 3, 4, 5, 6) });
		expect(await readBodyWithLimit(streamed([bytes(7, 8)]), 100)).toEqual({ ok: true, bytes: bytes(7, 8) });
		expect(await readBodyWithLimit(streamed([]), 100)).toEqual({ ok: true, bytes: bytes() });
		expect(await readBodyWithLimit(new Request(URL_, { method: "POST" }), 100)).toEqual({ ok: true, bytes: bytes() });
	});

	it("does not trust Content-Length beside Transfer-Encoding: the stream is counted", async () => {
		const request = streamed([bytes(1, 2, 3), bytes(4, 5)], { "content-length": "1", "transfer-encoding": "chunked" });
		expect(await readBodyWithLimit(request, 3)).toEqual({ ok: false, reason: "too_large" });
	});

	it("answers incomplete for a body that fails while it is read, with or without a declared length", async () => {
		expect(await readBodyWithLimit(streamed([bytes(1), new Error("cut")]), 100)).toEqual({ ok: false, reason: "incomplete" });
		const declared = streamed([bytes(1), new Error("cut")], { "content-length": "5" });
		expect(await readBodyWithLimit(declared, 100)).toEqual({ ok: false, reason: "incomplete" });
	});
});

describe("declaresBody", () => {
	it("is true for a Transfer-Encoding, whatever the Content-Length, and for a length above 0", () => {
		expect(declaresBody(new Headers({ "transfer-encoding": "chunked" }))).toBe(true);
		expect(declaresBody(new Headers({ "transfer-encoding": "chunked", "content-length": "0" }))).toBe(true);
		expect(declaresBody(new Headers({ "content-length": "1" }))).toBe(true);
	});

	it("is false with no length, or a length of 0", () => {
		expect(declaresBody(new Headers())).toBe(false);
		expect(declaresBody(new Headers({ "content-length": "0" }))).toBe(false);
	});
});
