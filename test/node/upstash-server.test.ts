import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedisServer, type RedisProcess } from "../../scripts/lib/processes.ts";
import { startUpstashServer, type UpstashServer } from "../../scripts/lib/upstash-server.ts";
import { createUpstashClient, UpstashReplayStore } from "../../src/claim/upstash.ts";
import { available } from "./helpers/services.ts";

const TOKEN = "upstash-test-token";

describe.skipIf(!available("redis-server", "redis-server"))("the local Upstash-compatible server, driven by @upstash/redis", () => {
	let redisServer: RedisProcess;
	let upstash: UpstashServer;
	let redis: Redis;

	beforeAll(async () => {
		redisServer = await startRedisServer();
		upstash = await startUpstashServer({ redisPort: redisServer.port, token: TOKEN });
		redis = new Redis({ url: upstash.url, token: TOKEN, retry: { retries: 0 }, enableTelemetry: false });
	});
	afterAll(async () => {
		await upstash?.close();
		await redisServer?.stop();
	});

	it("SET NX with PX: OK once, then null, and the TTL is set", async () => {
		expect(await redis.set("k:nx", "v", { nx: true, px: 60_000 })).toBe("OK");
		expect(await redis.set("k:nx", "v", { nx: true, px: 60_000 })).toBeNull();
		const ttl = await redis.pttl("k:nx");
		expect(ttl).toBeGreaterThan(59_000);
		expect(ttl).toBeLessThanOrEqual(60_000);
	});

	it("round-trips strings through base64 encoding, including non-ASCII", async () => {
		await redis.set("k:text", "café ☃ 🚀 \"quoted\" \\ back");
		expect(await redis.get("k:text")).toBe("café ☃ 🚀 \"quoted\" \\ back");
		await redis.set("k:looks-like-ok", "OK!");
		expect(await redis.get("k:looks-like-ok")).toBe("OK!");
	});

	it("answers integers, lists and null as the SDK expects", async () => {
		expect(await redis.incr("k:counter")).toBe(1);
		expect(await redis.rpush("k:list", "a", "b", "ü")).toBe(3);
		expect(await redis.lrange("k:list", 0, -1)).toEqual(["a", "b", "ü"]);
		expect(await redis.get("k:missing")).toBeNull();
	});

	it("runs a pipeline and a transaction", async () => {
		const pipeline = redis.pipeline();
		pipeline.set("k:p1", "1");
		pipeline.incr("k:p1");
		pipeline.get("k:p1");
		expect(await pipeline.exec()).toEqual(["OK", 2, 2]);

		const transaction = redis.multi();
		transaction.set("k:t1", "x");
		transaction.get("k:t1");
		expect(await transaction.exec()).toEqual(["OK", "x"]);
	});

	it("reports a Redis error as {error} with 400, which the SDK throws", async () => {
		await redis.set("k:str", "not a number");
		await expect(redis.incr("k:str")).rejects.toThrow(/not an integer/);
	});

	it("refuses a wrong token with 401", async () => {
		const intruder = new Redis({ url: upstash.url, token: "wrong", retry: { retries: 0 }, enableTelemetry: false });
		await expect(intruder.get("k:text")).rejects.toThrow(/Unauthorized/);
		const raw = await fetch(upstash.url, { method: "POST", body: '["GET","k"]' });
		expect(raw.status).toBe(401);
		expect(await raw.json()).toEqual({ error: "Unauthorized" });
	});

	it("answers malformed commands with a JSON error", async () => {
		const post = (path: string, body: string) =>
			fetch(upstash.url + path, { method: "POST", headers: { Authorization: `Bearer ${TOKEN}` }, body });
		for (const [path, body] of [
			["/", "not json"],
			["/", "[]"],
			["/", '[{"a":1}]'],
			["/pipeline", "[]"],
			["/multi-exec", '["GET"]'],
		] as const) {
			const response = await post(path, body);
			expect(response.status, `${path} ${body}`).toBe(400);
			expect(Object.keys((await response.json()) as object)).toEqual(["error"]);
		}
	});

	it("the gateway's confirmation and write-back (SET NX PX GET, no deserialization): null when written, then the value found, with the expiry", async () => {
		const store = new UpstashReplayStore(createUpstashClient({ url: upstash.url, token: TOKEN, timeoutMs: 5_000 }));
		expect(await store.claimOrRead({ key: "k:wb", value: "svc:1764000000000:iso-1:3", ttlMs: 60_000 })).toBeNull();
		expect(await store.claimOrRead({ key: "k:wb", value: "svc:1764000000000:iso-2:9", ttlMs: 60_000 })).toBe("svc:1764000000000:iso-1:3");
		expect(await redis.pttl("k:wb")).toBeGreaterThan(59_000);
	});

	it("the gateway's client gives a SET NX GET the second budget: a claim outlasting REPLAY_TIMEOUT_MS times out, its confirmation answers", async () => {
		const store = new UpstashReplayStore(createUpstashClient({ url: upstash.url, token: TOKEN, timeoutMs: 100 }));
		upstash.faults.delayMs = 400;
		try {
			await expect(store.claim("k:slow", "svc:1:iso-1:1", 60_000)).rejects.toMatchObject({ reason: "timeout" });
			// Answered within its own budget: the key written now (the server drops a command whose caller hung up).
			expect(await store.claimOrRead({ key: "k:slow", value: "svc:1:iso-1:1", ttlMs: 60_000 })).toBeNull();
			expect(await redis.pttl("k:slow")).toBeGreaterThan(59_000);
		} finally {
			upstash.faults.delayMs = 0;
		}
	});

	// One HTTP request per command, as the gateway's client sends them (no auto-pipelining).
	const single = () => new Redis({ url: upstash.url, token: TOKEN, retry: { retries: 0 }, enableTelemetry: false, enableAutoPipelining: false });

	it("fault drop_after_set: the SET lands in Redis, the answer never comes", async () => {
		upstash.faults.mode = "drop_after_set";
		try {
			await expect(single().set("k:dropped", "v", { nx: true, px: 60_000 })).rejects.toThrow();
		} finally {
			upstash.faults.mode = "none";
		}
		expect(await redis.get("k:dropped")).toBe("v");
	});

	it("fault jitterMs: each answer waits delayMs plus a random part of jitterMs", async () => {
		upstash.faults.delayMs = 50;
		upstash.faults.jitterMs = 100;
		const client = single();
		try {
			const times = await Promise.all(
				Array.from({ length: 12 }, async () => {
					const started = performance.now();
					await client.set("k:jitter", "1");
					return performance.now() - started;
				}),
			);
			expect(Math.min(...times)).toBeGreaterThanOrEqual(49);
			// Not all equal: the jitter spreads them.
			expect(Math.max(...times) - Math.min(...times)).toBeGreaterThan(5);
		} finally {
			upstash.faults.delayMs = 0;
			upstash.faults.jitterMs = 0;
		}
	});

	it("answers 500 while redis-server is down, and serves again once it is back", async () => {
		await redisServer.stop();
		await expect(redis.get("k:text")).rejects.toThrow(/redis unavailable/);
		await redisServer.restart();
		expect(await redis.set("k:after", "1")).toBe("OK");
	});
});
