import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import { signRequest, type SignRequestV2Input } from "../client/sign.ts";
import type { AuthEvents, AuthOutcome } from "../events.ts";
import type { Logger } from "../log.ts";
import { httpSignatureAuth } from "./http-signature-auth.ts";
import { Keyring } from "./keyring.ts";
import type { VerifiedVariables } from "./verified.ts";

const SECRET = "v2-middleware-test-secret-0123456789";
const NOW = 1_764_158_400_000;
const CREATED = NOW / 1000;
const silent: Logger = { info() {}, warn() {}, error() {} };

function app(options: { secrets?: string[]; maxBodyBytes?: number; clock?: { now: number } } = {}) {
	const outcomes: AuthOutcome[] = [];
	const slots: number[] = [];
	const skews: number[] = [];
	const events: AuthEvents = {
		outcome: (...outcome) => outcomes.push(outcome),
		skew: (ms) => skews.push(ms),
		secretSlot: (slot) => slots.push(slot),
		scheme: () => {},
	};
	const clock = options.clock ?? { now: NOW };
	const hono = new Hono<{ Variables: VerifiedVariables }>();
	hono.all(
		"/*",
		httpSignatureAuth({
			keyring: new Keyring({ sharedSecrets: options.secrets ?? [SECRET], clientSecrets: new Map() }),
			maxSkewMs: 300_000,
			maxBodyBytes: options.maxBodyBytes ?? 1_048_576,
			events,
			log: silent,
			now: () => clock.now,
		}),
		(c) => {
			const { body, ...rest } = c.var.verified;
			return c.json({ ...rest, body: new TextDecoder().decode(body) });
		},
	);
	hono.onError((error) => (error instanceof HTTPException ? error.getResponse() : new Response("unexpected", { status: 599 })));
	return { hono, outcomes, slots, skews };
}

type Overrides = Partial<Omit<SignRequestV2Input, "scheme">> & { url?: string; headers?: Record<string, string | null> };

/** A v2 request signed now; `url` is where it is sent when that differs from what was signed. */
async function signed(overrides: Overrides = {}): Promise<Request> {
	const method = overrides.method ?? "POST";
	const body = overrides.body ?? (method === "POST" ? '{"messages":[]}' : undefined);
	const path = overrides.path ?? "/agent/chat";
	const { headers, body: bytes } = await signRequest({
		scheme: "v2",
		clientId: "web-app",
		secret: SECRET,
		method,
		path,
		created: CREATED,
		nonce: "nonce-0123456789abcdef",
		...overrides,
		body,
	});
	const all = new Headers(headers as Record<string, string>);
	for (const [name, value] of Object.entries(overrides.headers ?? {})) {
		if (value === null) all.delete(name);
		else all.set(name, value);
	}
	const url = overrides.url ?? `https://gateway.test${path}${overrides.query ?? ""}`;
	return new Request(url, { method, headers: all, body: method === "POST" ? bytes : undefined });
}

async function expectAnswer(response: Response, status: number, code: string): Promise<void> {
	expect(response.status).toBe(status);
	expect(((await response.json()) as { code: string }).code).toBe(code);
}

describe("httpSignatureAuth", () => {
	it("accepts a signed POST and hands on what it verified", async () => {
		const { hono, outcomes, slots, skews } = app();
		const response = await hono.request(await signed());
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({
			scheme: "v2",
			clientId: "web-app",
			path: "/agent/chat",
			query: "",
			body: '{"messages":[]}',
			replay: { id: "v2:web-app:nonce-0123456789abcdef", signedAt: String(NOW) },
		});
		expect(outcomes).toEqual([]);
		expect(slots).toEqual([0]);
		expect(skews).toEqual([0]);
	});

	it("accepts a GET with a query, and the /api alias signed as sent", async () => {
		const { hono } = app();
		const get = await hono.request(await signed({ method: "GET", path: "/agent/stream", query: "?prompt=a%20b&x=1" }));
		expect(await get.json()).toMatchObject({ path: "/agent/stream", query: "?prompt=a%20b&x=1" });
		const alias = await hono.request(await signed({ path: "/api/agent/chat" }));
		expect(await alias.json()).toMatchObject({ path: "/agent/chat" });
	});

	it("403 for the /api alias signed without its /api (v2 signs the path as sent)", async () => {
		const { hono } = app();
		await expectAnswer(await hono.request(await signed({ url: "https://gateway.test/api/agent/chat" })), 403, "bad_signature");
	});

	it.each([
		["no Signature", { signature: null }],
		["an empty Signature", { signature: "" }],
		["an empty Signature-Input", { "signature-input": "" }],
		["a POST without Content-Digest", { "content-digest": null }],
	])("401 missing_headers for %s", async (_name, headers) => {
		const { hono, outcomes } = app();
		await expectAnswer(await hono.request(await signed({ headers })), 401, "missing_headers");
		expect(outcomes).toEqual([["fail", "missing_headers"]]);
	});

	it("400 invalid_signature_input before 401 invalid_client_id, and that before invalid_path", async () => {
		const { hono } = app();
		await expectAnswer(await hono.request(await signed({ clientId: "bad id", path: "/agent/x%2F", headers: { signature: "sig1=x" } })), 400, "invalid_signature_input");
		await expectAnswer(await hono.request(await signed({ clientId: "bad id", path: "/agent/x%2F" })), 401, "invalid_client_id");
		await expectAnswer(await hono.request(await signed({ path: "/agent/x%2F" })), 400, "invalid_path");
		await expectAnswer(await hono.request(await signed({ path: "/agent" })), 400, "invalid_path");
	});

	it("400 body_not_allowed for a GET declaring a body, before the signature", async () => {
		const { hono } = app();
		const request = await signed({ method: "GET", path: "/agent/stream", headers: { signature: "sig1=:AAAA:", "content-length": "1" } });
		const withBody = new Request(request.url, { method: "POST", headers: request.headers, body: "x" });
		const get = new Proxy(withBody, { get: (target, prop) => (prop === "method" ? "GET" : Reflect.get(target, prop, target)) });
		await expectAnswer(await hono.request(get as Request), 400, "body_not_allowed");
	});

	it("413 body_too_large by Content-Length before the signature is checked", async () => {
		const { hono, slots } = app({ maxBodyBytes: 16 });
		await expectAnswer(await hono.request(await signed({ body: "x".repeat(17), headers: { signature: "sig1=:AAAA:", "content-length": "17" } })), 413, "body_too_large");
		expect(slots).toEqual([]);
	});

	it("500 config_error with no secret at all", async () => {
		const { hono } = app({ secrets: [] });
		await expectAnswer(await hono.request(await signed()), 500, "config_error");
	});

	it("403 bad_signature, byte for byte the same for a wrong signature, a wrong length and an unknown keyid", async () => {
		const { hono: h1 } = app();
		const wrong = await h1.request(await signed({ secret: "another-secret-of-the-same-size-00" }));
		const short = await h1.request(await signed({ headers: { signature: "sig1=:AAAA:" } }));
		const outcomes: AuthOutcome[] = [];
		// A keyring with only per-client secrets: another keyid is unknown.
		const perClient = new Hono<{ Variables: VerifiedVariables }>();
		perClient.all(
			"/*",
			httpSignatureAuth({
				keyring: new Keyring({ sharedSecrets: [], clientSecrets: new Map([["other", [SECRET]]]) }),
				maxSkewMs: 300_000,
				maxBodyBytes: 1000,
				events: { outcome: (...o) => outcomes.push(o), skew() {}, secretSlot() {}, scheme() {} },
				log: silent,
				now: () => NOW,
			}),
			(c) => c.text("ok"),
		);
		perClient.onError((error) => (error as HTTPException).getResponse());
		const unknown = await perClient.request(await signed());
		const bodies = await Promise.all([wrong, short, unknown].map(async (r) => [r.status, await r.text()]));
		expect(bodies[0]).toEqual([403, JSON.stringify({ detail: "The request signature is not valid.", code: "bad_signature" })]);
		expect(bodies[1]).toEqual(bodies[0]);
		expect(bodies[2]).toEqual(bodies[0]);
		expect(outcomes).toEqual([["fail", "unknown_client"]]);
	});

	it("408 clock_skew after the signature: created too far, or expires past; a forged one is 403", async () => {
		const { hono, skews } = app();
		const late = await hono.request(await signed({ created: CREATED - 301 }));
		await expectAnswer(late, 408, "clock_skew");
		expect(late.headers.get("x-server-time")).toBe(String(NOW));
		expect(skews).toEqual([301_000]);
		await expectAnswer(await hono.request(await signed({ expires: CREATED - 1 })), 408, "clock_skew");
		expect((await hono.request(await signed({ expires: CREATED }))).status).toBe(200);
		await expectAnswer(await hono.request(await signed({ created: CREATED - 301, secret: "x".repeat(36) })), 403, "bad_signature");
		expect((await hono.request(await signed({ created: CREATED - 300 }))).status).toBe(200);
	});

	it("400 digest_mismatch for another body under the signed digest; 403 when the digest changed too", async () => {
		const { hono } = app();
		const original = await signed();
		const swapped = new Request(original.url, { method: "POST", headers: original.headers, body: '{"messages":[1]}' });
		await expectAnswer(await hono.request(swapped), 400, "digest_mismatch");
		const other = await signed({ body: '{"messages":[1]}' });
		const both = new Request(original.url, { method: "POST", headers: { ...Object.fromEntries(original.headers), "content-digest": other.headers.get("content-digest")! }, body: '{"messages":[1]}' });
		await expectAnswer(await hono.request(both), 403, "bad_signature");
	});

	it("never reads the body of a forged request", async () => {
		const { hono } = app();
		let pulled = 0;
		const stream = new ReadableStream<Uint8Array>(
			{
				pull(controller) {
					pulled++;
					controller.enqueue(new Uint8Array(1024));
				},
			},
			{ highWaterMark: 0 },
		);
		const forged = await signed({ secret: "not-the-secret-but-long-enough-0000" });
		const response = await hono.request(new Request(forged.url, { method: "POST", headers: forged.headers, body: stream }));
		await expectAnswer(response, 403, "bad_signature");
		expect(pulled).toBe(0);
	});

	it("413 body_too_large by counting a streamed body after the signature verified", async () => {
		const { hono, slots } = app({ maxBodyBytes: 1000 });
		const good = await signed({ body: "y".repeat(1500) });
		const chunks = [new Uint8Array(600).fill(121), new Uint8Array(600).fill(121), new Uint8Array(300).fill(121)];
		const stream = new ReadableStream<Uint8Array>({
			pull(controller) {
				const next = chunks.shift();
				if (next === undefined) controller.close();
				else controller.enqueue(next);
			},
		});
		const request = new Request(good.url, { method: "POST", headers: good.headers, body: stream });
		expect(request.headers.has("content-length")).toBe(false);
		await expectAnswer(await hono.request(request), 413, "body_too_large");
		expect(slots).toEqual([0]);
	});

	it("the factory refuses bad options", () => {
		const base = { keyring: new Keyring({ sharedSecrets: [SECRET], clientSecrets: new Map() }), events: {} as AuthEvents, log: silent };
		expect(() => httpSignatureAuth({ ...base, maxSkewMs: 0, maxBodyBytes: 1 })).toThrow(/maxSkewMs/);
		expect(() => httpSignatureAuth({ ...base, maxSkewMs: 1, maxBodyBytes: Number.NaN })).toThrow(/maxBodyBytes/);
	});
});
