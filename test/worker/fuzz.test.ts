import { describe, expect, it } from "vitest";
import { seededRandom } from "../fixtures/random.ts";
import { signRequest } from "../../src/client/sign.ts";
import { canonicalString, sha256Hex, utf8 } from "../../src/auth/crypto.ts";
import { loadConfig } from "../../src/config.ts";
import { createApp } from "../../src/app.ts";
import type { Env } from "../../src/env.ts";
import { createGateway } from "../../src/gateway.ts";
import type { Logger } from "../../src/log.ts";
import { CLIENT_ID, FakeOrigin, FakeRedis, harness, SECRET, signedRequest } from "./harness.ts";


const CONTROL = ["\t", "\x01", "\x07", "\x0b", "\x1b", "\x7f"];
const METHODS = ["GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];
const PATHS = [
	"/agent/chat",
	"/api/agent/chat",
	"/agent/stream",
	"/agent/chat%00",
	"/agent/ch%61t",
	"/agent//chat",
	"/agent/chat/%2F",
	"/agent",
	"/api/agent",
	"/agent/chat?x=%ff",
	"/agent/" + "a".repeat(3000),
	"/agent/%E2%98%83",
	"/agent/chat;param",
];

function header(rng: ReturnType<typeof seededRandom>, valid: string): string | null {
	switch (rng.int(10)) {
		case 0:
			return null;
		case 1:
			return "";
		case 2:
			return "   ";
		case 3:
			return valid + rng.pick(CONTROL) + valid;
		case 4:
			return "x".repeat(8_000 + rng.int(8_000));
		case 5:
			return `${valid}, ${valid}`;
		default:
			return valid;
	}
}

function timestampValue(rng: ReturnType<typeof seededRandom>, now: number): string | null {
	return rng.pick([
		String(now),
		String(now - 10_000_000),
		`${now}.5`,
		`-${now}`,
		"1e12",
		`0x${now.toString(16)}`,
		"9".repeat(17),
		` ${now}`,
		"",
		null,
		`${now}abc`,
	]);
}

function signatureValue(rng: ReturnType<typeof seededRandom>): string | null {
	return rng.pick([rng.hex(64), rng.hex(64), rng.hex(64).toUpperCase(), rng.hex(63), rng.hex(66), "z".repeat(64), "", null]);
}

function body(rng: ReturnType<typeof seededRandom>, maxBytes: number): BodyInit | null {
	switch (rng.int(7)) {
		case 0:
			return null;
		case 1:
			return new Uint8Array(maxBytes + 1 + rng.int(1000)).fill(120);
		case 2:
			return new Uint8Array([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1]);
		case 3: {
			// Chunked, no Content-Length, possibly over the limit.
			let left = 1 + rng.int(6);
			return new ReadableStream<Uint8Array>({
				pull(controller) {
					if (left-- <= 0) controller.close();
					else controller.enqueue(new Uint8Array(1000).fill(121));
				},
			});
		}
		case 4: {
			// Truncated: the stream breaks off after one chunk.
			let sent = false;
			return new ReadableStream<Uint8Array>({
				pull(controller) {
					if (sent) controller.error(new Error("connection reset"));
					else {
						sent = true;
						controller.enqueue(utf8('{"messages":[{"role":"us'));
					}
				},
			});
		}
		default:
			return JSON.stringify({ messages: [{ role: "user", content: "fuzz" }] });
	}
}

describe("input fuzzing", () => {
	it("10,000 malformed requests: every answer a 4xx with the JSON error shape; nothing accepted, no origin or Upstash call", async () => {
		const h = harness({ MAX_BODY_BYTES: "4096" });
		const rng = seededRandom(20261126);
		const now = h.clock.now;
		const statuses = new Map<number, number>();
		const details = new Set<string>();
		const failures: string[] = [];
		const total = 10_000;
		for (let batch = 0; batch < total; batch += 200) {
			await Promise.all(
				Array.from({ length: 200 }, async (_, offset) => {
					const index = batch + offset;
					const method = rng.pick(METHODS);
					const path = rng.pick(PATHS);
					const headers = new Headers();
					const clientId = header(rng, rng.pick([CLIENT_ID, "a".repeat(65), "bad id", "ok.id-1"]));
					const timestamp = timestampValue(rng, now);
					const signature = signatureValue(rng);
					try {
						if (clientId !== null) headers.set("X-Client-Id", clientId);
						if (timestamp !== null) headers.set("X-Timestamp", timestamp);
						if (signature !== null) headers.set("X-Signature", signature);
						if (rng.int(4) === 0) headers.set("X-Test-Mode", rng.pick(["stub", "echo", "STUB", "other"]));
					} catch {
						// The runtime refuses some values outright (as a client library would): nothing to send.
					}
					const payload = method === "GET" || method === "HEAD" ? null : body(rng, 4096);
					const request = new Request(`https://gateway.test${path}`, { method, headers, body: payload, duplex: "half" } as RequestInit);
					const response = await h.fetch(request);
					statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
					if (response.status < 400 || response.status >= 500) {
						failures.push(`#${index} ${method} ${path} -> ${response.status}`);
						return;
					}
					if (method === "HEAD") return;
					const text = await response.text();
					let parsed: { detail?: unknown; code?: unknown } = {};
					try {
						parsed = JSON.parse(text);
					} catch {
						failures.push(`#${index}: not JSON: ${text.slice(0, 80)}`);
					}
					if (response.headers.get("content-type") !== "application/json" || typeof parsed.detail !== "string" || typeof parsed.code !== "string") {
						failures.push(`#${index}: not the error shape: ${text.slice(0, 80)}`);
					} else details.add(`${parsed.code}: ${parsed.detail}`);
				}),
			);
		}
		expect(failures).toEqual([]);
		expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBe(total);
		expect(h.origin.requests).toHaveLength(0);
		expect(h.redis.calls).toHaveLength(0);
		// The fuzz reached every kind of refusal before the signature, not one wall (408 and 409
		// come only after a valid signature, which a fuzzer does not make).
		expect([...statuses.keys()].sort()).toEqual([400, 401, 403, 404, 405, 413]);
		// Every answer names a field and its rule from a fixed set: nothing the client sent is quoted.
		expect([...details].sort()).toEqual([
			"bad_signature: The request signature is not valid.",
			"bad_signature: X-Signature must be 64 lowercase hex characters",
			"body_too_large: body must be at most 4096 bytes",
			"invalid_body: body could not be read to its end",
			"invalid_client_id: X-Client-Id must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
			"invalid_path: path must be /agent/ then segments of A-Z a-z 0-9 . _ ~ - joined by single slashes (no percent-encoding)",
			"invalid_timestamp: X-Timestamp must be integer milliseconds since the epoch (1 to 16 digits)",
			"method_not_allowed: Agent routes take GET or POST.",
			"missing_headers: X-Client-Id is missing",
			"missing_headers: X-Signature is missing",
			"missing_headers: X-Timestamp is missing",
			"not_found: No such route.",
		]);
	});
});

describe("secret hygiene", () => {
	it("no secret, token, canonical string or expected signature in any answer or log line, on every failure path", async () => {
		const secrets = { HMAC_SECRET: SECRET, UPSTASH_REDIS_REST_TOKEN: "upstash-token-secret-value", METRICS_TOKEN: "metrics-token-secret", ORIGIN_TOKEN: "origin-token-secret" };
		const outputs: string[] = [];
		const forbidden: string[] = Object.values(secrets);
		const record = async (h: ReturnType<typeof harness>, request: Request) => {
			const response = await h.fetch(request);
			outputs.push(`${response.status} ${JSON.stringify([...response.headers])} ${await response.text()}`);
		};
		const signedWith = async (init: Parameters<typeof signedRequest>[0]) => {
			const request = await signedRequest(init);
			const body = init?.method === "GET" ? "" : await request.clone().text();
			const canonical = canonicalString({
				method: request.method,
				path: init?.path ?? "/agent/chat",
				timestamp: request.headers.get("x-timestamp")!,
				bodySha256: await sha256Hex(utf8(body)),
			});
			const expected = (await signRequest({ clientId: CLIENT_ID, secret: SECRET, method: request.method, path: init?.path ?? "/agent/chat", body, timestamp: Number(request.headers.get("x-timestamp")) })).headers["X-Signature"];
			forbidden.push(canonical, expected);
			return request;
		};

		const h = harness({ ...secrets, HMAC_MAX_SKEW_MS: "1000", REPLAY_FAIL_MODE: "closed" });
		await record(h, await signedWith({ secret: "wrong-secret" }));
		await record(h, await signedWith({ clientId: "unknown-client", secret: "wrong" }));
		await record(h, await signedWith({ timestamp: h.clock.now - 5_000 }));
		const valid = await signedWith({ body: '{"a":1}' });
		await record(h, valid.clone());
		await record(h, valid);
		h.redis.answer = async () => {
			throw new Error(`refused with token ${secrets.UPSTASH_REDIS_REST_TOKEN}`);
		};
		await record(h, await signedWith({ body: '{"a":2}' }));
		await record(h, new Request("https://gateway.test/metrics", { headers: { Authorization: "Bearer wrong" } }));
		await record(h, new Request("https://gateway.test/healthz", { headers: { Authorization: `Bearer ${secrets.METRICS_TOKEN}` } }));
		const broken = harness({ ...secrets, HMAC_CLIENTS: `{"svc": "${SECRET}-in-bad-json` });
		await record(broken, await signedWith({}));
		const everything = [...outputs, ...h.logs.map((l) => JSON.stringify(l)), ...broken.logs.map((l) => JSON.stringify(l))].join("\n");
		expect(outputs).toHaveLength(9);
		for (const value of forbidden) expect(everything).not.toContain(value);
	});
});

describe("abuse limits", () => {
	it("a flood of bad signatures from many client ids leaves every per-isolate structure as it was", async () => {
		const env = { ENVIRONMENT: "production", ORIGIN_URL: "https://origin.test", HMAC_CLIENTS: JSON.stringify({ [CLIENT_ID]: SECRET }), METRICS_TOKEN: "t" } as Env;
		const silent: Logger = { info() {}, warn() {}, error() {} };
		const origin = new FakeOrigin();
		const redis = new FakeRedis();
		const gateway = createGateway(loadConfig(env), env, { log: silent, fetchOrigin: origin.fetch, upstash: redis, now: () => 1_763_000_000_000 });
		const app = createApp(gateway);
		const series = () => Object.values(gateway.metrics.recorder.totals).reduce((n, family) => n + Object.keys(family).length, 0);
		// One valid request and one forged one first, so every structure has what a live gateway has.
		expect((await app.fetch(await signedRequest({}), env)).status).toBe(200);
		expect((await app.fetch(await signedRequest({ clientId: "warm-up", secret: "guess" }), env)).status).toBe(403);
		const seriesBefore = series();
		const flood = await Promise.all(
			Array.from({ length: 5_000 }, (_, i) => signedRequest({ clientId: `flood-${i}`, secret: "guess", timestamp: 1_763_000_000_000 + i })),
		);
		const importKey = crypto.subtle.importKey.bind(crypto.subtle);
		let imports = 0;
		crypto.subtle.importKey = ((...args: Parameters<typeof importKey>) => {
			imports++;
			return importKey(...args);
		}) as typeof crypto.subtle.importKey;
		try {
			for (const request of flood) expect((await app.fetch(request, env)).status).toBe(403);
		} finally {
			crypto.subtle.importKey = importKey;
		}
		// No key imported per client id, no replay key claimed, no new series.
		expect(imports).toBe(0);
		expect(redis.calls).toHaveLength(1);
		expect(series()).toBe(seriesBefore);
		expect(origin.requests).toHaveLength(1);
	});
});
