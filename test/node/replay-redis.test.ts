import { describe, expect, it } from "vitest";
import { RespConnection } from "../../scripts/lib/resp.ts";
import { signed } from "./helpers/gateway.ts";
import { available } from "./helpers/services.ts";
import { until } from "./helpers/until.ts";
import { useUpstashStack } from "./helpers/stack.ts";

const TOKEN = "replay-test-token";

/**
 * The breaker's cool-down in the outage tests: long enough that a loaded machine reads it
 * open after a dozen requests; the tests then wait for half-open, never sleep a fixed time.
 */
const COOLDOWN_MS = "4000";

/** The replay breaker's state as /healthz gives it. */
async function breakerOf(gateway: { fetch(path: string): Promise<Response> }): Promise<string> {
	const health = (await (await gateway.fetch("/healthz")).json()) as { replay: { breaker: string } };
	return health.replay.breaker;
}

describe.skipIf(!available("redis-server", "redis-server"))("replay protection against a real Redis behind the local Upstash server", () => {
	const stack = useUpstashStack(TOKEN);

	async function redisCommand(...args: string[]) {
		const connection = await RespConnection.connect(stack.redis.port);
		try {
			return (await connection.send([args]))[0];
		} finally {
			connection.close();
		}
	}

	it("accepts a signed request once and answers 409 to its replay, the replay from the isolate's own decisions without a call", async () => {
		const gw = await stack.gateway();
		const request = await signed();
		stack.upstash.resetStats();
		const first = await gw.fetch(request.path, request.init);
		expect(first.status).toBe(200);
		expect(((await first.json()) as { reply: string }).reply).toBe("Demo answer to: hello");
		const second = await gw.fetch(request.path, request.init);
		expect(second.status).toBe(409);
		expect(stack.upstash.stats.commands.get("set")).toBe(1);
		expect(stack.upstash.stats.requests).toBe(1);
	});

	it("leaves a key that outlives the skew window for a timestamp at its far edge (TTL read from Redis)", async () => {
		const prefix = `ttl:${crypto.randomUUID()}:`;
		const gw = await stack.gateway({ REDIS_REPLAY_PREFIX: prefix, HMAC_MAX_SKEW_MS: "300000", REDIS_REPLAY_TTL: "300" });
		const request = await signed({ timestamp: Date.now() + 290_000 });
		expect((await gw.fetch(request.path, request.init)).status).toBe(200);
		const signature = (request.init.headers as Record<string, string>)["X-Signature"];
		const ttl = (await redisCommand("PTTL", `${prefix}${signature}`)) as number;
		// The same request passes the skew check until timestamp + 300 s, about 590 s from now.
		expect(ttl).toBeGreaterThan(585_000);
		expect(ttl).toBeLessThanOrEqual(590_000);
		const value = (await redisCommand("GET", `${prefix}${signature}`)) as Buffer;
		// Client id and timestamp, then the claim's own id: isolate id and counter.
		expect(value.toString()).toMatch(/^svc-node:\d{13}:[0-9a-f-]{36}:\d+$/);
	});

	it("accepts the same signed request at exactly one of two separate gateways sharing one Redis", async () => {
		const prefix = `shared:${crypto.randomUUID()}:`;
		// A budget the local server meets even on a loaded machine: this tests the claim, not a timeout.
		const bindings = { REDIS_REPLAY_PREFIX: prefix, REPLAY_TIMEOUT_MS: "5000" };
		const [a, b] = await Promise.all([stack.gateway(bindings), stack.gateway(bindings)]);
		const request = await signed();
		const answers = await Promise.all([a!.fetch(request.path, request.init), b!.fetch(request.path, request.init)]);
		expect(answers.map((response) => response.status).sort()).toEqual([200, 409]);
	});

	it("accepts exactly one of 40 concurrent copies of one request through one gateway, with the default 200 ms budget and a slow, uneven Upstash", async () => {
		// Some SETs outlast the budget and fall back to memory while a twin's SET answers OK:
		// the isolate's own decisions must still let exactly one through.
		const gw = await stack.gateway();
		stack.upstash.faults.delayMs = 20;
		stack.upstash.faults.jitterMs = 300;
		const request = await signed();
		const answers = await Promise.all(Array.from({ length: 40 }, () => gw.fetch(request.path, request.init)));
		const statuses = answers.map((response) => response.status);
		expect(statuses.filter((status) => status === 200)).toHaveLength(1);
		expect(statuses.filter((status) => status === 409)).toHaveLength(39);
	});

	it("an Upstash answer lost after its SET landed: the gateway answers once, with exactly one SET sent (a retry would read as a false 409)", async () => {
		const gw = await stack.gateway();
		stack.upstash.faults.mode = "drop_after_set";
		stack.upstash.resetStats();
		const request = await signed();
		const response = await gw.fetch(request.path, request.init);
		expect(response.status).toBe(200);
		expect(stack.upstash.stats.commands.get("set")).toBe(1);
		expect(stack.upstash.stats.setOk).toBe(1);

		// Once Upstash answers, the memory claim is written back and finds its own SET: no replay counted.
		stack.upstash.faults.mode = "none";
		const next = await signed({ body: "{}" });
		expect((await gw.fetch(next.path, next.init)).status).toBe(200);
		await until(() => stack.upstash.stats.commands.get("set") === 3, "the write-back SET");
		const metrics = await (await gw.fetch("/metrics")).text();
		expect(metrics).toMatch(/\nagent_replay_outage_replays_total 0\n/);
	});

	it("outage and recovery (through the cool-down): A accepted before is 409 during the outage; B accepted during it is 409 after recovery, through either of two gateways", async () => {
		const prefix = `outage:${crypto.randomUUID()}:`;
		const bindings = { REDIS_REPLAY_PREFIX: prefix, REPLAY_BREAKER_COOLDOWN_MS: COOLDOWN_MS, REPLAY_BREAKER_FAILURES: "3" };
		const [one, two] = await Promise.all([stack.gateway(bindings), stack.gateway(bindings)]);
		const a = await signed({ body: '{"messages":[{"role":"user","content":"A"}]}' });
		expect((await one!.fetch(a.path, a.init)).status).toBe(200);

		stack.upstash.faults.mode = "http500";
		expect((await one!.fetch(a.path, a.init)).status).toBe(409);
		const b = await signed({ body: '{"messages":[{"role":"user","content":"B"}]}' });
		expect((await one!.fetch(b.path, b.init)).status).toBe(200);
		// Enough failures to open the breaker: the recovery goes through its cool-down and probe.
		for (let i = 0; i < 3; i++) {
			const other = await signed({ body: `{"during":${i}}` });
			expect((await one!.fetch(other.path, other.init)).status).toBe(200);
		}
		expect(await (await one!.fetch("/healthz")).json()).toMatchObject({ replay: { breaker: "open" } });

		stack.upstash.faults.mode = "none";
		await until(async () => (await breakerOf(one!)) === "half_open", "the breaker's cool-down", 10_000);
		const probe = await signed({ body: '{"probe":1}' });
		expect((await one!.fetch(probe.path, probe.init)).status).toBe(200);
		const keyOfB = prefix + b.init.headers["X-Signature"]!;
		await until(async () => (await redisCommand("EXISTS", keyOfB)) === 1, "B's claim written to Redis");
		expect(((await redisCommand("GET", keyOfB)) as Buffer).toString()).toMatch(/^svc-node:\d{13}:[0-9a-f-]{36}:\d+$/);
		const ttl = (await redisCommand("PTTL", keyOfB)) as number;
		expect(ttl).toBeGreaterThan(290_000);
		expect(ttl).toBeLessThanOrEqual(300_000);

		expect((await one!.fetch(b.path, b.init)).status).toBe(409);
		expect((await two!.fetch(b.path, b.init)).status).toBe(409);
		expect((await two!.fetch(a.path, a.init)).status).toBe(409);
		const metrics = await (await one!.fetch("/metrics")).text();
		expect(metrics).toMatch(/\nagent_replay_outage_replays_total 0\n/);
	});

	it("Upstash slower than both budgets: the claim and its confirmation time out, then the answer comes from memory, never 409", async () => {
		const gw = await stack.gateway({ REPLAY_TIMEOUT_MS: "100", REPLAY_BREAKER_FAILURES: "100" });
		stack.upstash.faults.delayMs = 4_000;
		const started = performance.now();
		const request = await signed();
		const response = await gw.fetch(request.path, request.init);
		const elapsed = performance.now() - started;
		expect(response.status).toBe(200);
		// Answered before the store would have (100 ms, then the confirmation's 1 s).
		expect(elapsed).toBeLessThan(3_500);
		const metrics = await (await gw.fetch("/metrics")).text();
		expect(metrics).toMatch(/agent_replay_store_calls_total\{outcome="timeout",store="upstash"\} 2\n/);
		expect(metrics).toMatch(/agent_replay_fallbacks_total\{reason="timeout"\} 1\n/);
	});

	it("Upstash down: the memory fallback keeps serving and catches a replay within the isolate; the cool-down spares a call per request; recovery", async () => {
		const gw = await stack.gateway({ REPLAY_BREAKER_FAILURES: "3", REPLAY_BREAKER_COOLDOWN_MS: COOLDOWN_MS });
		stack.upstash.faults.mode = "http500";
		stack.upstash.resetStats();
		const statuses: number[] = [];
		for (let i = 0; i < 10; i++) {
			const request = await signed({ timestamp: Date.now() + i });
			statuses.push((await gw.fetch(request.path, request.init)).status);
		}
		expect(statuses).toEqual(Array(10).fill(200));
		expect(stack.upstash.stats.requests).toBe(3);

		const replayed = await signed({ body: '{"messages":[{"role":"user","content":"replayed"}]}' });
		expect((await gw.fetch(replayed.path, replayed.init)).status).toBe(200);
		expect((await gw.fetch(replayed.path, replayed.init)).status).toBe(409);
		expect(await (await gw.fetch("/healthz")).json()).toMatchObject({ status: "degraded", replay: { breaker: "open" } });

		stack.upstash.faults.mode = "none";
		await until(async () => (await breakerOf(gw)) === "half_open", "the breaker's cool-down", 10_000);
		stack.upstash.resetStats();
		const after = await signed();
		expect((await gw.fetch(after.path, after.init)).status).toBe(200);
		// One claim answered OK (the write-backs it started beside its origin call answer with GET's value).
		expect(stack.upstash.stats.setOk).toBe(1);
		expect(await (await gw.fetch("/healthz")).json()).toMatchObject({ replay: { breaker: "closed" } });
	});

	it("REPLAY_FAIL_MODE=closed answers 503 while Upstash is down, never 409 and never 200", async () => {
		const gw = await stack.gateway({ REPLAY_FAIL_MODE: "closed", REPLAY_BREAKER_COOLDOWN_MS: "300" });
		await stack.upstash.close();
		try {
			for (let i = 0; i < 5; i++) {
				const request = await signed({ timestamp: Date.now() + i });
				const response = await gw.fetch(request.path, request.init);
				expect(response.status).toBe(503);
				expect(await response.json()).toEqual({ detail: "Replay protection is unavailable; try again shortly.", code: "replay_store_unavailable" });
			}
		} finally {
			await stack.restartUpstash();
		}
		await until(async () => (await breakerOf(gw)) !== "open", "the breaker's cool-down");
		const request = await signed({ body: "{}" });
		expect((await gw.fetch(request.path, request.init)).status).toBe(200);
	});

	it.each(["http500", "non_json", "error_body", "unexpected_result"] as const)(
		"treats an Upstash answer of kind %s as a store failure, never as a claim",
		async (mode) => {
			const gw = await stack.gateway({ REPLAY_FAIL_MODE: "closed" });
			stack.upstash.faults.mode = mode;
			const request = await signed();
			expect((await gw.fetch(request.path, request.init)).status).toBe(503);
		},
	);
});
