import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env.ts";
import type { GatewayEvents } from "../../src/events.ts";
import { createWorker } from "../../src/worker.ts";
import type { Logger } from "../../src/log.ts";
import type { ReplayRedis } from "../../src/claim/upstash.ts";
import { CLIENT_ID, errorBody, FakeOrigin, harness, ORIGIN, sampleValue, SECRET, signedRequest } from "./harness.ts";

const NOW = 1_763_000_000_000;
const silent: Logger = { info() {}, warn() {}, error() {} };
type Recorded = [event: keyof GatewayEvents, ...args: unknown[]];

/** Events that record each call with its arguments, in order; `names` holds every event seen. */
function recordingEvents(): { sink: GatewayEvents; seen: Recorded[]; names: Set<string> } {
	const seen: Recorded[] = [];
	const names = new Set<string>();
	const record =
		(event: keyof GatewayEvents) =>
		(...args: unknown[]) => {
			seen.push([event, ...args]);
			names.add(event);
		};
	const sink: GatewayEvents = {
		outcome: record("outcome"),
		skew: record("skew"),
		secretSlot: record("secretSlot"),
		scheme: record("scheme"),
		storeCall: record("storeCall"),
		fallback: record("fallback"),
		breakerOpened: record("breakerOpened"),
		replayAttempt: record("replayAttempt"),
		outageReplay: record("outageReplay"),
		response: record("response"),
		streamCut: record("streamCut"),
		keyringLookup: record("keyringLookup"),
		limitRefused: record("limitRefused"),
		tokens: record("tokens"),
	};
	return { sink, seen, names };
}

/** The events of one request in a fixed order, so a test does not pin the order the middlewares report in. */
function sorted(events: Recorded[]): Recorded[] {
	const label = (event: Recorded) => event.map((part) => (typeof part === "string" ? part : "")).join("/");
	return [...events].sort((a, b) => label(a).localeCompare(label(b)));
}

async function fetchWith(worker: ExportedHandler<Env>, env: Env, request: Request): Promise<Response> {
	const ctx = createExecutionContext();
	const response = await worker.fetch!(request as Request<unknown, IncomingRequestCfProperties>, env, ctx);
	await waitOnExecutionContext(ctx);
	return response;
}

/** An Upstash that fails every call while `down`, and otherwise answers `SET NX` (with `GET`) like Redis. */
class OutageRedis implements ReplayRedis {
	down = false;
	readonly keys = new Map<string, string>();
	/** The keys asked for while down. */
	readonly asked: string[] = [];

	async set(key: string, value: string, options: { nx: true; px: number; get?: true }): Promise<unknown> {
		if (this.down) {
			this.asked.push(key);
			throw new Error("upstash down");
		}
		const existing = this.keys.get(key);
		if (existing === undefined) this.keys.set(key, value);
		if (options.get === true) return existing ?? null;
		return existing === undefined ? "OK" : null;
	}
}

describe("one gateway per env object", () => {
	it("keeps its state between requests: the memory replay store refuses the second copy", async () => {
		const h = harness({}, { upstash: false });
		const request = await signedRequest();
		const copy = request.clone();
		expect((await h.fetch(request)).status).toBe(200);
		const replayed = await h.fetch(copy);
		expect(replayed.status).toBe(409);
		expect(replayed.headers.get("x-server-time")).toBe(String(h.clock.now));
		expect((await errorBody(replayed)).code).toBe("replay");
	});

	it("the memory replay store expires keys on the gateway's clock: a full store frees an expired key", async () => {
		const h = harness({ REPLAY_MEMORY_MAX_KEYS: "1", HMAC_MAX_SKEW_MS: "300000", REDIS_REPLAY_TTL: "300" }, { upstash: false });
		expect((await h.fetch(await signedRequest({ body: '{"n":1}' }, h.clock.now))).status).toBe(200);
		// The store holds one live key: another request now finds it full.
		expect((await h.fetch(await signedRequest({ body: '{"n":2}' }, h.clock.now))).status).toBe(503);
		h.clock.now += 600_001;
		expect((await h.fetch(await signedRequest({ body: '{"n":3}' }, h.clock.now))).status).toBe(200);
	});

	it("a misconfigured env answers every route with a 500 config_error that names the problem", async () => {
		const h = harness({ HMAC_MAX_SKEW_MS: "soon" });
		for (const path of ["/healthz", "/metrics", "/agent/chat", "/nowhere"]) {
			const response = await h.fetch(new Request(`https://gateway.test${path}`));
			expect(response.status, path).toBe(500);
			const body = await errorBody(response);
			expect(body.code).toBe("config_error");
			expect(body.detail).toMatch(/^The gateway is misconfigured: .*HMAC_MAX_SKEW_MS.*\.$/);
		}
		expect(h.logs.filter((line) => line.level === "error").map((line) => line.message)).toEqual(["invalid configuration"]);
	});

	it("reports every event of the request path to injected events, with its arguments, and none to its own metrics", async () => {
		const { sink, seen, names } = recordingEvents();
		const origin = new FakeOrigin();
		const worker = createWorker({ log: silent, fetchOrigin: origin.fetch, now: () => NOW, events: sink });
		// With a deadline, a streamed answer is piped, and a stream the origin breaks is seen (and cut).
		const env = { ENVIRONMENT: "development", ORIGIN_URL: ORIGIN, HMAC_SECRET: SECRET, ORIGIN_STREAM_MAX_MS: "60000" } as Env;
		const send = (request: Request) => fetchWith(worker, env, request);

		const request = await signedRequest();
		const copy = request.clone();
		expect((await send(request)).status).toBe(200);
		expect(sorted(seen.splice(0))).toEqual(
			sorted([
				["skew", 0],
				["secretSlot", 0, CLIENT_ID],
				["scheme", "v1"],
				["storeCall", "memory", "claimed", expect.any(Number)],
				["outcome", "ok", "real"],
				["response", "ok", expect.any(Number)],
			]),
		);
		expect((await send(copy)).status).toBe(409);
		expect(sorted(seen.splice(0))).toEqual(
			sorted([
				["skew", 0],
				["secretSlot", 0, CLIENT_ID],
				["scheme", "v1"],
				["storeCall", "memory", "duplicate", expect.any(Number)],
				["replayAttempt"],
				["outcome", "fail", "replay"],
			]),
		);
		expect((await send(new Request("https://gateway.test/agent/chat", { method: "POST", body: "{}" }))).status).toBe(401);
		expect(seen.splice(0)).toEqual([["outcome", "fail", "missing_headers"]]);

		// A stream the origin breaks is cut.
		origin.respond = () => new Response(new ReadableStream({ pull: (controller) => controller.error(new Error("origin broke")) }));
		const streamed = await send(await signedRequest({ body: '{"n":"stream"}' }));
		await streamed.text().catch(() => "");
		// Counted once the client's side is closed, which settles after the client has read the end.
		await expect.poll(() => seen.filter(([name]) => name === "response" || name === "streamCut")).toEqual([["response", "ok", expect.any(Number)], ["streamCut", "idle"]]);

		// None of it reached the Worker's own metrics.
		const text = await (await send(new Request("https://gateway.test/metrics"))).text();
		expect(sampleValue(text, "agent_chat_requests_total")).toBe(0);
		expect(sampleValue(text, "agent_origin_responses_total")).toBe(0);
		expect(names).toEqual(new Set(["skew", "secretSlot", "scheme", "storeCall", "outcome", "response", "replayAttempt", "streamCut"]));
	});

	it("reports a limit's refusal to injected events, and not to its own metrics", async () => {
		const { sink, seen } = recordingEvents();
		const worker = createWorker({ log: silent, fetchOrigin: new FakeOrigin().fetch, now: () => NOW, events: sink });
		const env = { ENVIRONMENT: "development", ORIGIN_URL: ORIGIN, HMAC_SECRET: SECRET, CLIENT_LIMITS: '{"*": {"rpm": 1}}' } as Env;
		const send = async (body: string) => (await fetchWith(worker, env, await signedRequest({ body }))).status;
		expect(await send('{"n":1}')).toBe(200);
		expect(seen.splice(0).filter(([name]) => name === "limitRefused")).toEqual([]);
		expect(await send('{"n":2}')).toBe(429);
		expect(seen.filter(([name]) => name === "limitRefused" || name === "outcome")).toEqual([
			["limitRefused", "rpm", ""],
			["outcome", "fail", "rate_limited"],
		]);
		const text = await (await fetchWith(worker, env, new Request("https://gateway.test/metrics"))).text();
		expect(sampleValue(text, "agent_limit_refusals_total")).toBe(0);
	});

	it("reports Upstash's failures, the breaker and a replay found by the write-back to injected events", async () => {
		const { sink, seen } = recordingEvents();
		const redis = new OutageRedis();
		const worker = createWorker({ log: silent, fetchOrigin: new FakeOrigin().fetch, now: () => NOW, upstash: redis, events: sink });
		const env = {
			ENVIRONMENT: "development",
			ORIGIN_URL: ORIGIN,
			HMAC_SECRET: SECRET,
			UPSTASH_REDIS_REST_URL: "https://upstash.test",
			UPSTASH_REDIS_REST_TOKEN: "upstash-token",
			REPLAY_BREAKER_FAILURES: "2",
		} as Env;
		const send = async (body: string) => (await fetchWith(worker, env, await signedRequest({ body }))).status;
		/** The replay store's events of the last request. */
		const replayEvents = () => seen.splice(0).filter(([name]) => ["storeCall", "fallback", "breakerOpened", "outageReplay"].includes(String(name)));

		redis.down = true;
		expect(await send('{"n":1}')).toBe(200);
		expect(replayEvents()).toEqual([
			["storeCall", "upstash", "error", expect.any(Number)],
			["fallback", "error"],
			["storeCall", "memory", "claimed", expect.any(Number)],
		]);
		// The second failure in a row opens the breaker.
		expect(await send('{"n":2}')).toBe(200);
		expect(replayEvents()).toEqual([
			["storeCall", "upstash", "error", expect.any(Number)],
			["breakerOpened"],
			["fallback", "error"],
			["storeCall", "memory", "claimed", expect.any(Number)],
		]);
		expect(await send('{"n":3}')).toBe(200);
		expect(replayEvents()).toEqual([
			["fallback", "breaker_open"],
			["storeCall", "memory", "claimed", expect.any(Number)],
		]);
	});

	it("reports a replay that the write-back after an outage finds claimed by another to injected events", async () => {
		const { sink, seen } = recordingEvents();
		const redis = new OutageRedis();
		const worker = createWorker({ log: silent, fetchOrigin: new FakeOrigin().fetch, now: () => NOW, upstash: redis, events: sink });
		const env = {
			ENVIRONMENT: "development",
			ORIGIN_URL: ORIGIN,
			HMAC_SECRET: SECRET,
			UPSTASH_REDIS_REST_URL: "https://upstash.test",
			UPSTASH_REDIS_REST_TOKEN: "upstash-token",
		} as Env;
		const send = async (body: string) => (await fetchWith(worker, env, await signedRequest({ body }))).status;

		redis.down = true;
		expect(await send('{"n":1}')).toBe(200);
		// Meanwhile another isolate claimed the same key in Upstash: the memory claim let a replay through.
		const [key] = redis.asked;
		redis.down = false;
		redis.keys.set(key!, "another isolate's claim");
		seen.splice(0);
		expect(await send('{"n":2}')).toBe(200);
		expect(seen.filter(([name]) => name === "outageReplay" || name === "storeCall")).toEqual([
			["storeCall", "upstash", "claimed", expect.any(Number)],
			["outageReplay"],
		]);
	});
	it("an unexpected error is a 500 internal_error, logged by its name only", async () => {
		const logged: { level: string; message: string; fields: unknown }[] = [];
		const log = (level: string) => (message: string, fields: unknown = {}) => void logged.push({ level, message, fields });
		const worker = createWorker({
			log: { info: log("info"), warn: log("warn"), error: log("error") },
			now: () => NOW,
			events: {
				...recordingEvents().sink,
				outcome() {
					throw new RangeError("events broke");
				},
			},
		});
		const env = { ENVIRONMENT: "development", ORIGIN_URL: ORIGIN, HMAC_SECRET: SECRET } as Env;
		const response = await fetchWith(worker, env, new Request("https://gateway.test/agent/chat", { method: "POST", body: "{}" }));
		expect(response.status).toBe(500);
		expect(await errorBody(response)).toEqual({ code: "internal_error", detail: "The gateway failed to handle this request." });
		expect(logged.filter((line) => line.level === "error")).toEqual([{ level: "error", message: "unhandled error", fields: { name: "RangeError" } }]);
	});
});
