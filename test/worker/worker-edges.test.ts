import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env.ts";
import type { GatewayEvents } from "../../src/events.ts";
import { createWorker } from "../../src/worker.ts";
import { errorBody, harness, ORIGIN, SECRET, signedRequest } from "./harness.ts";

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

	it("reports the request path's events to injected events instead of its own metrics", async () => {
		const seen: string[] = [];
		const record = (name: string) => (...args: unknown[]) => void seen.push(`${name}:${args.filter((a) => typeof a === "string").join("/")}`);
		const events: GatewayEvents = {
			outcome: record("outcome"),
			skew: record("skew"),
			secretSlot: record("slot"),
			storeCall: record("store"),
			fallback: record("fallback"),
			breakerOpened: record("breaker"),
			replayAttempt: record("replay"),
			outageReplay: record("outage"),
			scheme: record("scheme"),
			response: record("response"),
			streamCut: record("cut"),
			keyringLookup: record("keyring"),
		};
		const worker = createWorker({
			log: { info() {}, warn() {}, error() {} },
			fetchOrigin: (async () => Response.json({ reply: "x" })) as typeof fetch,
			now: () => 1_763_000_000_000,
			events,
		});
		const env = { ENVIRONMENT: "development", ORIGIN_URL: ORIGIN, HMAC_SECRET: SECRET } as Env;
		const ctx = createExecutionContext();
		const response = await worker.fetch!((await signedRequest()) as Request<unknown, IncomingRequestCfProperties>, env, ctx);
		await waitOnExecutionContext(ctx);
		expect(response.status).toBe(200);
		expect(seen).toContain("outcome:ok/real");
		expect(seen).toContain("response:ok");
	});

	it("an unexpected error is a 500 internal_error, logged by its name only", async () => {
		const logged: { level: string; message: string; fields: unknown }[] = [];
		const log = (level: string) => (message: string, fields: unknown = {}) => void logged.push({ level, message, fields });
		const noop = () => {};
		const worker = createWorker({
			log: { info: log("info"), warn: log("warn"), error: log("error") },
			now: () => 1_763_000_000_000,
			events: {
				outcome() {
					throw new RangeError("events broke");
				},
				skew: noop,
				secretSlot: noop,
				storeCall: noop,
				fallback: noop,
				breakerOpened: noop,
				replayAttempt: noop,
				outageReplay: noop,
				scheme: noop,
				response: noop,
				streamCut: noop,
				keyringLookup: noop,
			},
		});
		const env = { ENVIRONMENT: "development", ORIGIN_URL: ORIGIN, HMAC_SECRET: SECRET } as Env;
		const ctx = createExecutionContext();
		const request = new Request("https://gateway.test/agent/chat", { method: "POST", body: "{}" });
		const response = await worker.fetch!(request as Request<unknown, IncomingRequestCfProperties>, env, ctx);
		await waitOnExecutionContext(ctx);
		expect(response.status).toBe(500);
		expect(await errorBody(response)).toEqual({ code: "internal_error", detail: "The gateway failed to handle this request." });
		expect(logged.filter((line) => line.level === "error")).toEqual([{ level: "error", message: "unhandled error", fields: { name: "RangeError" } }]);
	});
});
