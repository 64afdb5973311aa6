import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedisServer, type RedisProcess } from "../../scripts/lib/processes.ts";
import { RespConnection, RespError } from "../../scripts/lib/resp.ts";
import { startUpstashServer, type UpstashServer } from "../../scripts/lib/upstash-server.ts";
import type { LimitPolicy } from "../../src/limits/policy.ts";
import { RedisLimitStore, type LimitRedis } from "../../src/claim/redis-limits.ts";
import { reservationWindows } from "../../src/claim/redis-budget.ts";
import type { RideOutcome } from "../../src/claim/ride.ts";
import { LIMITED_CLAIM_SCRIPT, LIMITED_CLAIM_SHA1, WRITE_BACK_SCRIPT, WRITE_BACK_SHA1 } from "../../src/claim/script.ts";
import { LimitScriptModel } from "../fixtures/limit-redis-model.ts";
import { DAY_MS, nextUtcMidnight, utcDay } from "../fixtures/instants.ts";
import { seededRandom } from "../fixtures/random.ts";
import { available } from "./helpers/services.ts";

/**
 * Hands a settle over to ride on a store's rides, as an answer's `X-Token-Usage` does: what the
 * claim that carried it found, or, when it was sent alone, what the settle script answered.
 */
function rideOn(limits: RedisLimitStore, reservation: string, tokens: number, report: string = crypto.randomUUID()): Promise<RideOutcome> {
	const windows = reservationWindows(reservation);
	if (windows === null) throw new Error(`not a reservation id: ${reservation}`);
	return new Promise((told) => {
		if (!limits.rides!.offer({ ...windows, reservation, tokens, report, settled: told }, { waitUntil: () => {} })) throw new Error("the rides are full");
	});
}

const TOKEN = "limits-test-token";
/** Noon UTC of a day to come: Redis judges the day counter's expiry by its own clock. */
const DAY0 = nextUtcMidnight();
const T0 = DAY0 + DAY_MS / 2;
const DAY0_KEY = utcDay(DAY0);
const LEASE_MS = 660_000;
const policy = (p: Partial<LimitPolicy>): LimitPolicy => ({ rpm: null, rpd: null, concurrent: null, label: "", ...p });

describe.skipIf(!available("redis-server", "redis-server"))("the limits script in a real Redis, through the local Upstash server", () => {
	let redisServer: RedisProcess;
	let upstash: UpstashServer;
	/** The gateway's client settings: one try, one HTTP request per command, no deserialization. */
	let client: LimitRedis;

	beforeAll(async () => {
		redisServer = await startRedisServer();
		upstash = await startUpstashServer({ redisPort: redisServer.port, token: TOKEN });
		client = new Redis({
			url: upstash.url,
			token: TOKEN,
			retry: { retries: 0 },
			enableAutoPipelining: false,
			automaticDeserialization: false,
			enableTelemetry: false,
		});
	});
	afterAll(async () => {
		await upstash?.close();
		await redisServer?.stop();
	});

	async function redisCommand(...args: string[]) {
		const connection = await RespConnection.connect(redisServer.port);
		try {
			return (await connection.send([args]))[0];
		} finally {
			connection.close();
		}
	}

	/** A store on a prefix of its own, on a clock the test moves. */
	function store() {
		const clock = { now: T0 };
		const prefix = `lim:${crypto.randomUUID()}:`;
		const limits = new RedisLimitStore(client, { prefix, leaseMs: LEASE_MS, now: () => clock.now });
		let n = 0;
		const claim = (limitsOf: LimitPolicy, key = `k${++n}`, value = `svc:${T0}:iso:${++n}`) =>
			limits.claim({ key: prefix + key, value, ttlMs: 300_000, clientId: "svc", policy: limitsOf });
		return { clock, prefix, limits, claim };
	}

	/** A store whose settles may ride (never sent alone within a test), a daily budget of `daily` with holds of 100, on a clock the test moves. */
	function ridingStore(daily: number) {
		const clock = { now: T0 };
		const prefix = `lim:${crypto.randomUUID()}:`;
		const limits = new RedisLimitStore(client, { prefix, leaseMs: LEASE_MS, rideWaitMs: 60_000, now: () => clock.now });
		return { rides: limits.rides!, clock, prefix, limits, budgeted: policy({ budget: { daily, monthly: null, hold: 100 } }) };
	}

	it("the local server passes SCRIPT LOAD, EVALSHA and EVAL to redis-server; NOSCRIPT comes back as an error the SDK throws", async () => {
		await redisCommand("SCRIPT", "FLUSH");
		await expect(client.evalsha(LIMITED_CLAIM_SHA1, ["a", "b", "c", "d"], [])).rejects.toThrow(/NOSCRIPT/);
		const raw = await fetch(upstash.url, {
			method: "POST",
			headers: { Authorization: `Bearer ${TOKEN}` },
			body: JSON.stringify(["SCRIPT", "LOAD", LIMITED_CLAIM_SCRIPT]),
		});
		// Redis's own SHA-1 of the script is the constant the gateway sends.
		expect(await raw.json()).toEqual({ result: LIMITED_CLAIM_SHA1 });
		expect(await client.eval("return {1, 'two', false}", [], [])).toEqual([1, "two", null]);
	});

	it("one command per claim: EVAL first, then EVALSHA; after SCRIPT FLUSH, NOSCRIPT and one EVAL", async () => {
		await redisCommand("SCRIPT", "FLUSH");
		const { claim } = store();
		upstash.resetStats();
		expect((await claim(policy({ rpm: 10 }))).outcome).toBe("claimed");
		expect(Object.fromEntries(upstash.stats.commands)).toEqual({ eval: 1 });
		upstash.resetStats();
		for (let i = 0; i < 5; i++) expect((await claim(policy({ rpm: 10 }))).outcome).toBe("claimed");
		expect(Object.fromEntries(upstash.stats.commands)).toEqual({ evalsha: 5 });
		expect(upstash.stats.requests).toBe(5);

		await redisCommand("SCRIPT", "FLUSH");
		upstash.resetStats();
		expect((await claim(policy({ rpm: 10 }))).outcome).toBe("claimed");
		expect((await claim(policy({ rpm: 10 }))).outcome).toBe("claimed");
		expect(Object.fromEntries(upstash.stats.commands)).toEqual({ evalsha: 2, eval: 1 });
	});

	it("a replay spends nothing and returns the value found; a refusal spends nothing and claims the key under its own refused value; a claim writes key, log, counter and slot", async () => {
		const { claim, prefix, limits: limitsStore } = store();
		const limits = policy({ rpm: 2, rpd: 100, concurrent: 5 });
		const first = await claim(limits, "a", "svc:1:iso:1");
		expect(first).toEqual({
			outcome: "claimed",
			state: { rpm: { remaining: 1, resetMs: 60_000 }, rpd: { remaining: 99, resetMs: 43_200_000 }, concurrent: { remaining: 4 } },
			slot: { clientId: "svc", id: "svc:1:iso:1", store: "upstash" },
		});
		expect(((await redisCommand("GET", `${prefix}a`)) as Buffer).toString()).toBe("svc:1:iso:1");
		expect(await redisCommand("PTTL", `${prefix}a`)).toBeGreaterThan(299_000);
		expect(await redisCommand("ZCARD", `${prefix}limit:rpm:svc`)).toBe(1);
		expect(((await redisCommand("GET", `${prefix}limit:rpd:svc:${DAY0_KEY}`)) as Buffer).toString()).toBe("1");
		expect(await redisCommand("ZSCORE", `${prefix}limit:inflight:svc`, "svc:1:iso:1")).toEqual(Buffer.from(String(T0 + LEASE_MS)));

		expect(await claim(limits, "a", "svc:1:iso:2")).toEqual({ outcome: "duplicate", found: "svc:1:iso:1" });
		expect(await redisCommand("ZCARD", `${prefix}limit:rpm:svc`)).toBe(1);
		expect(((await redisCommand("GET", `${prefix}limit:rpd:svc:${DAY0_KEY}`)) as Buffer).toString()).toBe("1");

		expect((await claim(limits, "b")).outcome).toBe("claimed");
		expect(await claim(limits, "c", "svc:1:iso:3")).toMatchObject({ outcome: "limited", limit: "rpm", retryAfterMs: 60_000 });
		expect(((await redisCommand("GET", `${prefix}c`)) as Buffer).toString()).toBe("svc:1:iso:3:refused:rpm");
		expect(await redisCommand("PTTL", `${prefix}c`)).toBeGreaterThan(299_000);
		expect(((await redisCommand("GET", `${prefix}limit:rpd:svc:${DAY0_KEY}`)) as Buffer).toString()).toBe("2");
		expect(await redisCommand("ZCARD", `${prefix}limit:rpm:svc`)).toBe(2);
		// The same bytes again: a replay, spending nothing; a confirming run of that claim reads its own refusal.
		expect(await claim(limits, "c", "svc:1:iso:4")).toEqual({ outcome: "duplicate", found: "svc:1:iso:3:refused:rpm" });
		expect(await limitsStore.claim({ key: `${prefix}c`, value: "svc:1:iso:3", ttlMs: 300_000, clientId: "svc", policy: limits }, true)).toMatchObject({
			outcome: "limited",
			limit: "rpm",
		});
	});

	it("a memory claim's write-back: its key SET NX, its spend added (rpd of its own day, rpm while in the window), unless its own value is there", async () => {
		const { limits, prefix, claim } = store();
		const spend = { at: T0 - 1_000, rpm: true, rpd: true };
		const writeBack = (key: string, value: string, at = spend) => limits.writeBack({ key: prefix + key, value, ttlMs: 300_000, clientId: "svc", spend: at });
		expect(await writeBack("w1", "svc:1:iso:1")).toBeNull();
		expect(((await redisCommand("GET", `${prefix}w1`)) as Buffer).toString()).toBe("svc:1:iso:1");
		expect(((await redisCommand("GET", `${prefix}limit:rpd:svc:${DAY0_KEY}`)) as Buffer).toString()).toBe("1");
		expect(await redisCommand("ZSCORE", `${prefix}limit:rpm:svc`, "svc:1:iso:1")).toEqual(Buffer.from(String(T0 - 1_000)));
		// The key lives its claim's remaining life (a replay stays one in Upstash); the rpm log a minute.
		expect(await redisCommand("PTTL", `${prefix}w1`)).toBeGreaterThan(290_000);
		expect(await redisCommand("PTTL", `${prefix}limit:rpm:svc`)).toBeGreaterThan(50_000);
		expect(await redisCommand("PTTL", `${prefix}limit:rpm:svc`)).toBeLessThanOrEqual(60_000);
		// Its own value there (its first run landed and spent): nothing added.
		await redisCommand("SET", `${prefix}w2`, "svc:1:iso:2");
		expect(await writeBack("w2", "svc:1:iso:2")).toBe("svc:1:iso:2");
		// Another's value (a replay that got through), or its own refusal: spent all the same.
		await redisCommand("SET", `${prefix}w3`, "svc:1:iso:3:refused:rpm");
		expect(await writeBack("w3", "svc:1:iso:3")).toBe("svc:1:iso:3:refused:rpm");
		await redisCommand("SET", `${prefix}w4`, "svc:1:other:9");
		expect(await writeBack("w4", "svc:1:iso:4")).toBe("svc:1:other:9");
		expect(((await redisCommand("GET", `${prefix}limit:rpd:svc:${DAY0_KEY}`)) as Buffer).toString()).toBe("3");
		expect(await redisCommand("ZCARD", `${prefix}limit:rpm:svc`)).toBe(3);
		// Spent over a minute ago: not in the rpm window any more; the day still counts it.
		expect(await writeBack("w5", "svc:1:iso:5", { at: T0 - 60_000, rpm: true, rpd: true })).toBeNull();
		expect(await redisCommand("ZCARD", `${prefix}limit:rpm:svc`)).toBe(3);
		expect(((await redisCommand("GET", `${prefix}limit:rpd:svc:${DAY0_KEY}`)) as Buffer).toString()).toBe("4");
		expect(await redisCommand("PEXPIRETIME", `${prefix}limit:rpd:svc:${DAY0_KEY}`)).toBe(DAY0 + DAY_MS + 3_600_000);
		// The claim script sees them: rpd 5 leaves one.
		expect(await claim(policy({ rpd: 5 }))).toMatchObject({ outcome: "claimed", state: { rpd: { remaining: 0 } } });
		// The model the workerd tests use does the same.
		const model = new LimitScriptModel(new Map([["w2", "svc:1:iso:2"]]));
		const keys = ["w2", "rpm", "rpd"];
		const args = ["svc:1:iso:2", 300_000, T0, 1, 1, T0 + DAY_MS, T0];
		expect(model.eval(WRITE_BACK_SCRIPT, keys, args)).toBe("svc:1:iso:2");
		expect(model.count("rpd")).toBe(0);
		expect(model.evalsha(WRITE_BACK_SHA1, ["w6", "rpm", "rpd"], ["v6", 300_000, T0, 1, 1, T0 + DAY_MS, T0])).toBeNull();
		expect([model.count("rpd"), model.count("rpm")]).toEqual([1, 1]);
	});

	it("a token budget: the hold is the least of token_hold, X-Token-Limit and what is left; refused when nothing is left (key claimed); settled once; an expired hold charged whole by the next claim", async () => {
		const { limits, prefix, clock } = store();
		const budgeted = policy({ budget: { daily: 250, monthly: 1_000, hold: 100 } });
		let n = 0;
		const reserve = (hold = 100) =>
			limits.claim({ key: `${prefix}b${++n}`, value: `svc:${T0}:iso:${n}`, ttlMs: 300_000, clientId: "svc", policy: budgeted, budget: { hold, nonce: String(n).padStart(32, "0") } });
		const first = await reserve(60);
		expect(first).toMatchObject({ outcome: "claimed", reservation: { hold: 60, store: "upstash" }, state: { dailyTokens: { remaining: 190 }, monthlyTokens: { remaining: 940 } } });
		if (first.outcome !== "claimed") throw new Error("not claimed");
		expect(first.reservation!.id).toBe(`svc:${DAY0_KEY}:${DAY0_KEY.slice(0, 7)}:${"1".padStart(32, "0")}`);
		const window = `${prefix}limit:svc:tokens:day:${DAY0_KEY}`;
		expect(await redisCommand("HGET", window, "held")).toEqual(Buffer.from("60"));
		// Its answer lost, a confirming run finds its own value: the claim, with its reservation and hold, nothing held twice.
		const confirmed = await limits.claim({ key: `${prefix}b1`, value: `svc:${T0}:iso:1`, ttlMs: 300_000, clientId: "svc", policy: budgeted, budget: { hold: 100, nonce: "1".padStart(32, "0") } }, true);
		expect(confirmed).toMatchObject({ outcome: "claimed", reservation: { id: first.reservation!.id, hold: 60 } });
		expect(await redisCommand("HGET", window, "held")).toEqual(Buffer.from("60"));
		const second = await reserve();
		const third = await reserve();
		// 250 a day: 60 + 100 held, so the third holds what is left, 90; then nothing is left.
		expect(third).toMatchObject({ outcome: "claimed", reservation: { hold: 90 }, state: { dailyTokens: { remaining: 0 } } });
		const refused = await reserve();
		expect(refused).toMatchObject({ outcome: "limited", limit: "daily_tokens", retryAfterMs: DAY_MS / 2, state: { dailyTokens: { remaining: 0 } } });
		expect(((await redisCommand("GET", `${prefix}b4`)) as Buffer).toString()).toBe(`svc:${T0}:iso:4:refused:daily_tokens`);

		// Settled: the hold leaves, what was spent (at most the hold) is used; a second report changes nothing.
		expect(await limits.settle(first.reservation!.id, 25)).toEqual({ status: "settled", hold: 60, counted: 25 });
		expect(await limits.settle(first.reservation!.id, 5)).toEqual({ status: "already_settled" });
		expect(await redisCommand("HMGET", window, "used", "held")).toEqual([Buffer.from("25"), Buffer.from("190")]);
		if (second.outcome !== "claimed") throw new Error("not claimed");
		expect(await limits.settle(second.reservation!.id, 500)).toEqual({ status: "settled", hold: 100, counted: 100 });
		for (const foreign of [`other:${DAY0_KEY}:-:${"1".padStart(32, "0")}`, `svc:${DAY0_KEY}:-:${"9".padStart(32, "0")}`, "svc:x:y:z", ""]) {
			expect(await limits.settle(foreign, 1)).toEqual({ status: "unknown" });
		}
		expect(await redisCommand("HMGET", window, "used", "held")).toEqual([Buffer.from("125"), Buffer.from("90")]);
		// The third is never reported: once its lease ends a report is refused, and the next claim charges its whole hold.
		clock.now = T0 + LEASE_MS + 60_000;
		if (third.outcome !== "claimed") throw new Error("not claimed");
		expect(await limits.settle(third.reservation!.id, 1)).toEqual({ status: "expired" });
		const next = await reserve();
		expect(next).toMatchObject({ outcome: "claimed", expiredTokens: 90, reservation: { hold: 35 }, state: { dailyTokens: { remaining: 0 } } });
		expect(await redisCommand("HMGET", window, "used", "held")).toEqual([Buffer.from("215"), Buffer.from("35")]);
		expect(await limits.settle(third.reservation!.id, 1)).toEqual({ status: "unknown" });

		// A month's budget spent refuses until the month ends (it lasts longer than the day's, so it is the one named).
		const monthly = policy({ budget: { daily: 1_000, monthly: 30, hold: 100 } });
		const monthClaim = () =>
			limits.claim({ key: `${prefix}m${++n}`, value: `m:${n}`, ttlMs: 300_000, clientId: "monthly", policy: monthly, budget: { hold: 100, nonce: String(n).padStart(32, "0") } });
		expect(await monthClaim()).toMatchObject({ outcome: "claimed", reservation: { hold: 30 }, state: { monthlyTokens: { remaining: 0 }, dailyTokens: { remaining: 970 } } });
		const now = clock.now;
		const monthEnds = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth() + 1, 1) - now;
		expect(await monthClaim()).toMatchObject({ outcome: "limited", limit: "monthly_tokens", retryAfterMs: monthEnds });
	});

	it("a settle that may wait rides on its client's next budgeted claim: no command of its own, applied before that claim reads the budget, whatever its verdict; by the settle script's rules", async () => {
		const { rides, clock, prefix, limits, budgeted } = ridingStore(250);
		let n = 0;
		const reserve = (clientId = "svc", key = `r${++n}`) =>
			limits.claim({ key: prefix + key, value: `${clientId}:${n}`, ttlMs: 300_000, clientId, policy: budgeted, budget: { hold: 100, nonce: String(n).padStart(32, "0") } });
		const idOf = (claim: Awaited<ReturnType<typeof reserve>>) => (claim.outcome === "claimed" ? claim.reservation!.id : "");
		const window = `${prefix}limit:svc:tokens:day:${DAY0_KEY}`;
		const [first, second] = [await reserve(), await reserve()];
		expect(await reserve()).toMatchObject({ outcome: "claimed", reservation: { hold: 50 } });

		upstash.resetStats();
		const report = rideOn(limits, idOf(first), 30);
		// Another client's claim does not carry it, nor does a claim without a budget.
		expect((await reserve("other")).outcome).toBe("claimed");
		expect((await limits.claim({ key: `${prefix}plain`, value: "p", ttlMs: 1_000, clientId: "svc", policy: policy({ rpm: 10 }) })).outcome).toBe("claimed");
		expect(rides.waitingCount).toBe(1);
		expect(await redisCommand("HMGET", window, "used", "held")).toEqual([null, Buffer.from("250")]);
		// svc's next claim carries it, and reads the budget after it: 30 used, 150 held, 70 left.
		expect(await reserve()).toMatchObject({ outcome: "claimed", reservation: { hold: 70 }, state: { dailyTokens: { remaining: 0 } } });
		expect(await report).toEqual({ status: "settled", hold: 100, counted: 30 });
		expect(upstash.stats.requests).toBe(3);
		expect(await redisCommand("HMGET", window, "used", "held")).toEqual([Buffer.from("30"), Buffer.from("220")]);

		// Carried by a refusal and by a replay too; a second report, an unknown id: as the settle script answers.
		// Two ride on one claim: both answered by it, neither sent alone.
		upstash.resetStats();
		const again = rideOn(limits, idOf(first), 5);
		const unknown = rideOn(limits, `svc:${DAY0_KEY}:-:${"f".repeat(32)}`, 5);
		expect(await reserve()).toMatchObject({ outcome: "limited", limit: "daily_tokens" });
		expect([await again, await unknown]).toEqual([{ status: "already_settled" }, { status: "unknown" }]);
		expect(upstash.stats.requests).toBe(1);
		const overrun = rideOn(limits, idOf(second), 500);
		expect(await reserve("svc", `r${n}`)).toMatchObject({ outcome: "duplicate" });
		expect(await overrun).toEqual({ status: "settled", hold: 100, counted: 100 });
		expect(await redisCommand("HMGET", window, "used", "held")).toEqual([Buffer.from("130"), Buffer.from("120")]);
		// After its lease: expired, left to the sweep, which charges the hold whole.
		const late = await reserve();
		expect(late.outcome).toBe("limited");
		clock.now = T0 + LEASE_MS + 60_001;
		const expired = rideOn(limits, `svc:${DAY0_KEY}:-:${"3".padStart(32, "0")}`, 1);
		await reserve();
		expect(await expired).toEqual({ status: "expired" });
		expect(await redisCommand("HMGET", window, "used", "held")).toEqual([Buffer.from("250"), Buffer.from("0")]);
	});

	it("a settle no claim takes within the wait is sent alone; so is one whose carrying claim failed (a second settle changes nothing)", async () => {
		let failClaims = false;
		const failing: LimitRedis = {
			evalsha: (sha1, keys, args, patience) => (failClaims && sha1 === LIMITED_CLAIM_SHA1 ? Promise.reject(new Error("Upstash down")) : client.evalsha(sha1, keys, args, patience)),
			eval: (script, keys, args, patience) => (failClaims && script === LIMITED_CLAIM_SCRIPT ? Promise.reject(new Error("Upstash down")) : client.eval(script, keys, args, patience)),
			zrem: (key, member) => client.zrem(key, member),
		};
		const prefix = `lim:${crypto.randomUUID()}:`;
		const limits = new RedisLimitStore(failing, { prefix, leaseMs: LEASE_MS, rideWaitMs: 30, now: () => T0 });
		const rides = limits.rides!;
		const budgeted = policy({ budget: { daily: 1_000, monthly: null, hold: 100 } });
		let n = 0;
		const reserve = () =>
			limits.claim({ key: `${prefix}a${++n}`, value: `svc:${n}`, ttlMs: 300_000, clientId: "svc", policy: budgeted, budget: { hold: 100, nonce: String(n).padStart(32, "0") } });
		const [first, second] = [await reserve(), await reserve()];
		if (first.outcome !== "claimed" || second.outcome !== "claimed") throw new Error("not claimed");
		const window = `${prefix}limit:svc:tokens:day:${DAY0_KEY}`;

		upstash.resetStats();
		expect(await rideOn(limits, first.reservation!.id, 40)).toEqual({ status: "settled", hold: 100, counted: 40 });
		expect(upstash.stats.requests).toBe(1);
		expect(rides.waitingCount).toBe(0);

		const carried = rideOn(limits, second.reservation!.id, 10);
		failClaims = true;
		await expect(reserve()).rejects.toThrow(/Upstash/);
		failClaims = false;
		expect(await carried).toEqual({ status: "settled", hold: 100, counted: 10 });
		expect(await redisCommand("HMGET", window, "used", "held")).toEqual([Buffer.from("50"), Buffer.from("0")]);
		// A settle the store is asked for is a command of its own at once: riding is the claim's.
		upstash.resetStats();
		expect(await limits.settle(first.reservation!.id, 1)).toEqual({ status: "already_settled" });
		expect(upstash.stats.requests).toBe(1);
	});

	it("a carried settle whose claim's answer was lost after its script ran is answered settled when sent again (the same report), and counted once; another report is settled already", async () => {
		let loseClaims = false;
		// The claim's script runs in Redis, then its answer is lost on the way back.
		const losing: LimitRedis = {
			evalsha: async (sha1, keys, args, patience) => {
				const reply = await client.evalsha(sha1, keys, args, patience);
				if (loseClaims && sha1 === LIMITED_CLAIM_SHA1) throw new Error("connection reset");
				return reply;
			},
			eval: async (script, keys, args, patience) => {
				const reply = await client.eval(script, keys, args, patience);
				if (loseClaims && script === LIMITED_CLAIM_SCRIPT) throw new Error("connection reset");
				return reply;
			},
			zrem: (key, member) => client.zrem(key, member),
		};
		const prefix = `lim:${crypto.randomUUID()}:`;
		const limits = new RedisLimitStore(losing, { prefix, leaseMs: LEASE_MS, rideWaitMs: 60_000, now: () => T0 });
		const budgeted = policy({ budget: { daily: 1_000, monthly: null, hold: 100 } });
		let n = 0;
		const reserve = () =>
			limits.claim({ key: `${prefix}l${++n}`, value: `svc:l:${n}`, ttlMs: 300_000, clientId: "svc", policy: budgeted, budget: { hold: 100, nonce: String(n).padStart(32, "0") } });
		const first = await reserve();
		if (first.outcome !== "claimed") throw new Error("not claimed");
		const window = `${prefix}limit:svc:tokens:day:${DAY0_KEY}`;

		const told = rideOn(limits, first.reservation!.id, 40);
		loseClaims = true;
		await expect(reserve()).rejects.toThrow(/Upstash call failed/);
		loseClaims = false;
		// Carried and applied by the lost claim's script; sent again alone, the same report is answered as the first was.
		expect(await told).toEqual({ status: "settled", hold: 100, counted: 40 });
		expect(await redisCommand("HMGET", window, "used", "held")).toEqual([Buffer.from("40"), Buffer.from("100")]);
		// Another report of the same reservation changes nothing.
		expect(await limits.settle(first.reservation!.id, 5)).toEqual({ status: "already_settled" });
		expect(await redisCommand("HMGET", window, "used", "held")).toEqual([Buffer.from("40"), Buffer.from("100")]);
		// Carried by a claim, the same report again is answered as the first was, and changes nothing; another is settled already.
		const [again, other] = [rideOn(limits, first.reservation!.id, 40, "report-a"), rideOn(limits, first.reservation!.id, 40, "report-b")];
		const second = await reserve();
		if (second.outcome !== "claimed") throw new Error("not claimed");
		expect([await again, await other]).toEqual([{ status: "already_settled" }, { status: "already_settled" }]);
		const settledOnce = rideOn(limits, second.reservation!.id, 7, "report-c");
		await reserve();
		const repeated = rideOn(limits, second.reservation!.id, 7, "report-c");
		await reserve();
		expect([await settledOnce, await repeated]).toEqual([
			{ status: "settled", hold: 100, counted: 7 },
			{ status: "settled", hold: 100, counted: 7 },
		]);
		expect(await redisCommand("HMGET", window, "used", "held")).toEqual([Buffer.from("47"), Buffer.from("300")]);
	});

	it("settles no claim took, of several clients, are sent alone together in one command, each applied to its own windows by the settle script's rules", async () => {
		const prefix = `lim:${crypto.randomUUID()}:`;
		const limits = new RedisLimitStore(client, { prefix, leaseMs: LEASE_MS, rideWaitMs: 30, now: () => T0 });
		const daily = policy({ budget: { daily: 1_000, monthly: null, hold: 100 } });
		const both = policy({ budget: { daily: 1_000, monthly: 10_000, hold: 100 } });
		let n = 0;
		const reserve = async (clientId: string, limitsOf: LimitPolicy) => {
			const claimed = await limits.claim({ key: `${prefix}t${++n}`, value: `${clientId}:${n}`, ttlMs: 300_000, clientId, policy: limitsOf, budget: { hold: 100, nonce: String(n).padStart(32, "0") } });
			if (claimed.outcome !== "claimed") throw new Error("not claimed");
			return claimed.reservation!.id;
		};
		const [a, b, c] = [await reserve("alpha", daily), await reserve("beta", both), await reserve("beta", both)];
		upstash.resetStats();
		const told = [rideOn(limits, a, 30), rideOn(limits, b, 140), rideOn(limits, c, 5), rideOn(limits, `gamma:${DAY0_KEY}:-:${"9".repeat(32)}`, 1)];
		expect(await Promise.all(told)).toEqual([
			{ status: "settled", hold: 100, counted: 30 },
			{ status: "settled", hold: 100, counted: 100 },
			{ status: "settled", hold: 100, counted: 5 },
			{ status: "unknown" },
		]);
		expect(upstash.stats.requests).toBe(1);
		const window = (clientId: string, name: string) => `${prefix}limit:${clientId}:tokens:${name}`;
		expect(await redisCommand("HMGET", window("alpha", `day:${DAY0_KEY}`), "used", "held")).toEqual([Buffer.from("30"), Buffer.from("0")]);
		expect(await redisCommand("HMGET", window("beta", `day:${DAY0_KEY}`), "used", "held")).toEqual([Buffer.from("105"), Buffer.from("0")]);
		expect(await redisCommand("HMGET", window("beta", `month:${DAY0_KEY.slice(0, 7)}`), "used", "held")).toEqual([Buffer.from("105"), Buffer.from("0")]);
		// Each once: a second settle of the same reservation changes nothing.
		expect(await limits.settleAll([{ reservation: a, tokens: 1, report: "another" }, { reservation: b, tokens: 1, report: "another" }])).toEqual([{ status: "already_settled" }, { status: "already_settled" }]);
		expect(await redisCommand("HMGET", window("alpha", `day:${DAY0_KEY}`), "used", "held")).toEqual([Buffer.from("30"), Buffer.from("0")]);
	});

	it("a carried settle is judged at the claim's instant as a settle alone: a millisecond before its lease ends it is settled; at the end, expired, and the sweep charges its hold whole", async () => {
		const { rides, clock, prefix, limits, budgeted } = ridingStore(1_000);
		let n = 0;
		const reserve = () =>
			limits.claim({ key: `${prefix}b${++n}`, value: `svc:b:${n}`, ttlMs: 300_000, clientId: "svc", policy: budgeted, budget: { hold: 100, nonce: String(n).padStart(32, "0") } });
		const [first, second] = [await reserve(), await reserve()];
		if (first.outcome !== "claimed" || second.outcome !== "claimed") throw new Error("not claimed");
		const leaseEnds = T0 + LEASE_MS + 60_000;
		const window = `${prefix}limit:svc:tokens:day:${DAY0_KEY}`;

		clock.now = leaseEnds - 1;
		const before = rideOn(limits, first.reservation!.id, 30);
		await reserve();
		expect(await before).toEqual({ status: "settled", hold: 100, counted: 30 });
		clock.now = leaseEnds;
		const at = rideOn(limits, second.reservation!.id, 40);
		expect(await reserve()).toMatchObject({ outcome: "claimed", expiredTokens: 100 });
		expect(await at).toEqual({ status: "expired" });
		// 30 settled, 100 charged whole; the two claims since hold 100 each.
		expect(await redisCommand("HMGET", window, "used", "held")).toEqual([Buffer.from("130"), Buffer.from("200")]);
	});

	it("a settle, carried or alone, leaves a window that is gone as it is: never made again with a hold taken out of it", async () => {
		const prefix = `lim:${crypto.randomUUID()}:`;
		const limits = new RedisLimitStore(client, { prefix, leaseMs: LEASE_MS, rideWaitMs: 60_000, now: () => T0 });
		const budgeted = policy({ budget: { daily: 1_000, monthly: 10_000, hold: 100 } });
		let n = 0;
		const reserve = () =>
			limits.claim({ key: `${prefix}g${++n}`, value: `svc:g:${n}`, ttlMs: 300_000, clientId: "svc", policy: budgeted, budget: { hold: 100, nonce: String(n).padStart(32, "0") } });
		const [first, second] = [await reserve(), await reserve()];
		if (first.outcome !== "claimed" || second.outcome !== "claimed") throw new Error("not claimed");
		const day = `${prefix}limit:svc:tokens:day:${DAY0_KEY}`;
		const month = `${prefix}limit:svc:tokens:month:${DAY0_KEY.slice(0, 7)}`;

		await redisCommand("DEL", day);
		expect(await limits.settle(first.reservation!.id, 30)).toEqual({ status: "settled", hold: 100, counted: 30 });
		expect(await redisCommand("EXISTS", day)).toBe(0);
		const carried = rideOn(limits, second.reservation!.id, 40);
		await reserve();
		expect(await carried).toEqual({ status: "settled", hold: 100, counted: 40 });
		// The day's window holds only the hold of the claim that carried the settle; the month's saw it all.
		expect(await redisCommand("HMGET", day, "used", "held")).toEqual([null, Buffer.from("100")]);
		expect(await redisCommand("HMGET", month, "used", "held")).toEqual([Buffer.from("70"), Buffer.from("100")]);
	});

	it("a hold made in the last minute of a month, never reported, is charged whole to that day's and that month's windows by the first claim after", async () => {
		const { limits, prefix, clock } = store();
		const nextMonth = Date.UTC(new Date(DAY0).getUTCFullYear(), new Date(DAY0).getUTCMonth() + 1, 1);
		const lastDay = utcDay(nextMonth - 60_000);
		clock.now = nextMonth - 60_000;
		const budgeted = policy({ budget: { daily: 1_000, monthly: 1_000, hold: 100 } });
		let n = 0;
		const reserve = () =>
			limits.claim({ key: `${prefix}e${++n}`, value: `svc:e:${n}`, ttlMs: 300_000, clientId: "svc", policy: budgeted, budget: { hold: 40, nonce: String(n).padStart(32, "0") } });
		expect(await reserve()).toMatchObject({ outcome: "claimed", reservation: { hold: 40 } });
		clock.now = nextMonth + LEASE_MS;
		// A new day and a new month: both full, and the old hold charged where it was held.
		expect(await reserve()).toMatchObject({ outcome: "claimed", expiredTokens: 40, state: { dailyTokens: { remaining: 960 }, monthlyTokens: { remaining: 960 } } });
		const base = `${prefix}limit:svc:tokens:`;
		expect(await redisCommand("HMGET", `${base}day:${lastDay}`, "used", "held")).toEqual([Buffer.from("40"), Buffer.from("0")]);
		expect(await redisCommand("HMGET", `${base}month:${lastDay.slice(0, 7)}`, "used", "held")).toEqual([Buffer.from("40"), Buffer.from("0")]);
	});

	it("the ACL users docs/deploy.md gives run every script: the limits', the write-back's, and with budgets the settle's", async () => {
		const deploy = readFileSync(resolve(import.meta.dirname, "../../docs/deploy.md"), "utf8");
		const lines = [...deploy.matchAll(/^ {3}ACL SETUSER gateway on >a-long-random-password (.+)$/gm)].map((match) => match[1]!.split(" "));
		expect(lines).toHaveLength(3);
		const budget = policy({ rpm: 5, rpd: 5, concurrent: 2, budget: { daily: 1_000, monthly: 10_000, hold: 10 } });
		for (const [index, rules] of lines.entries()) {
			const user = `acl-${index}-${crypto.randomUUID().slice(0, 8)}`;
			await redisCommand("ACL", "SETUSER", user, "on", ">pw", ...rules.map((rule) => rule.replace("hmac:replay:*", "acl:*")));
			const connection = await RespConnection.connect(redisServer.port);
			const as = { evalsha: async () => Promise.reject(new Error("NOSCRIPT")), zrem: async (key: string, member: string) => (await connection.send([["ZREM", key, member]]))[0] } as unknown as LimitRedis;
			as.eval = async (script: string, keys: string[], args: (string | number)[]) => {
				const [reply] = await connection.send([["EVAL", script, String(keys.length), ...keys, ...args.map(String)]]);
				if (reply instanceof RespError) throw new Error(reply.message);
				return reply;
			};
			try {
				expect(await connection.send([["AUTH", user, "pw"]])).toEqual(["OK"]);
				const limits = new RedisLimitStore(as, { prefix: `acl:${user}:`, leaseMs: LEASE_MS, rideWaitMs: 60_000, now: () => T0 });
				const claim = (n: number, limitsOf: LimitPolicy) =>
					limits.claim({ key: `acl:${user}:k${n}`, value: `v${n}`, ttlMs: 300_000, clientId: "svc", policy: limitsOf, budget: { hold: 10, nonce: String(n).padStart(32, "0") } });
				if (index === 0) {
					// SET alone: the plain claim; the script is refused, a store failure.
					await expect(claim(1, policy({ rpm: 5 }))).rejects.toThrow();
					continue;
				}
				expect((await claim(1, policy({ rpm: 5, rpd: 5, concurrent: 2 }))).outcome).toBe("claimed");
				expect(await limits.writeBack({ key: `acl:${user}:w`, value: "w", ttlMs: 1_000, clientId: "svc", spend: { at: T0, rpm: true, rpd: true } })).toBeNull();
				if (index === 1) {
					await expect(claim(2, budget)).rejects.toThrow();
					continue;
				}
				const claimed = await claim(2, budget);
				if (claimed.outcome !== "claimed") throw new Error("not claimed");
				expect(await limits.settle(claimed.reservation!.id, 3)).toEqual({ status: "settled", hold: 10, counted: 3 });
				// A settle carried by the next claim runs the same commands inside the limits script.
				const budgetOnly = policy({ budget: { daily: 1_000, monthly: 10_000, hold: 10 } });
				const third = await claim(3, budgetOnly);
				if (third.outcome !== "claimed") throw new Error("not claimed");
				const carried = rideOn(limits, third.reservation!.id, 4);
				expect((await claim(4, budgetOnly)).outcome).toBe("claimed");
				expect(await carried).toEqual({ status: "settled", hold: 10, counted: 4 });
			} finally {
				connection.close();
			}
		}
	});

	it("each key's expiry: a claimed or refused key the claim's, the rpm log a minute, the in-flight set a lease, a token window its end and a lease and an hour, the reservations a lease and an hour", async () => {
		const { limits, prefix } = store();
		/** A reservation's lease: the slot's and a minute (the store's default). */
		const reservationLeaseMs = LEASE_MS + 60_000;
		const limited = policy({ rpm: 1, concurrent: 5, budget: { daily: 1_000, monthly: 5_000, hold: 100 } });
		const claim = (key: string, n: number) =>
			limits.claim({ key: `${prefix}${key}`, value: `svc:${T0}:iso:${n}`, ttlMs: 300_000, clientId: "svc", policy: limited, budget: { hold: 100, nonce: String(n).padStart(32, "0") } });
		expect((await claim("a", 1)).outcome).toBe("claimed");
		expect(await claim("b", 2)).toMatchObject({ outcome: "limited", limit: "rpm" });
		/** The time to live Redis gives `key`, within the few seconds this test may take. */
		const ttl = async (key: string) => (await redisCommand("PTTL", `${prefix}${key}`)) as number;
		const near = (value: number, expected: number) => {
			expect(value, `${expected}`).toBeGreaterThan(expected - 10_000);
			expect(value, `${expected}`).toBeLessThanOrEqual(expected);
		};
		near(await ttl("a"), 300_000);
		near(await ttl("b"), 300_000);
		near(await ttl("limit:rpm:svc"), 60_000);
		near(await ttl("limit:inflight:svc"), LEASE_MS);
		near(await ttl("limit:svc:tokens:leases"), reservationLeaseMs + 3_600_000);
		near(await ttl("limit:svc:tokens:holds"), reservationLeaseMs + 3_600_000);
		const expiresAt = async (key: string) => (await redisCommand("PEXPIRETIME", `${prefix}${key}`)) as number;
		const day0 = new Date(DAY0);
		expect(await expiresAt(`limit:svc:tokens:day:${DAY0_KEY}`)).toBe(DAY0 + DAY_MS + reservationLeaseMs + 3_600_000);
		expect(await expiresAt(`limit:svc:tokens:month:${DAY0_KEY.slice(0, 7)}`)).toBe(Date.UTC(day0.getUTCFullYear(), day0.getUTCMonth() + 1, 1) + reservationLeaseMs + 3_600_000);
	});

	it("rpm is a sliding 60 s window, to the millisecond", async () => {
		const { claim, clock } = store();
		const rpm2 = policy({ rpm: 2 });
		expect((await claim(rpm2)).outcome).toBe("claimed");
		clock.now = T0 + 1;
		expect((await claim(rpm2)).outcome).toBe("claimed");
		clock.now = T0 + 59_999;
		expect(await claim(rpm2)).toMatchObject({ outcome: "limited", limit: "rpm", retryAfterMs: 1 });
		clock.now = T0 + 60_000;
		expect(await claim(rpm2)).toMatchObject({ outcome: "claimed", state: { rpm: { remaining: 0, resetMs: 1 } } });
		expect(await claim(rpm2)).toMatchObject({ outcome: "limited", retryAfterMs: 1 });
	});

	it("rpd counts per UTC day, its counter expiring an hour after the day ends", async () => {
		const { claim, clock, prefix } = store();
		const rpd1 = policy({ rpd: 1 });
		clock.now = DAY0 + DAY_MS - 1;
		expect((await claim(rpd1)).outcome).toBe("claimed");
		expect(await claim(rpd1)).toMatchObject({ outcome: "limited", limit: "rpd", retryAfterMs: 1 });
		const expiry = (await redisCommand("PEXPIRETIME", `${prefix}limit:rpd:svc:${DAY0_KEY}`)) as number;
		expect(expiry).toBe(DAY0 + DAY_MS + 3_600_000);
		clock.now = DAY0 + DAY_MS;
		expect(await claim(rpd1)).toMatchObject({ outcome: "claimed", state: { rpd: { remaining: 0, resetMs: 86_400_000 } } });
	});

	it("a slot is held until released, and without a release until its lease ends (a dead isolate)", async () => {
		const { claim, clock, limits } = store();
		const one = policy({ concurrent: 1 });
		const first = await claim(one);
		expect(await claim(one)).toMatchObject({ outcome: "limited", limit: "concurrent", retryAfterMs: 1_000 });
		if (first.outcome !== "claimed" || first.slot === null) throw new Error("no slot");
		await limits.release(first.slot);
		const second = await claim(one);
		expect(second.outcome).toBe("claimed");
		// Never released: refused until the lease ends, to the millisecond.
		clock.now = T0 + LEASE_MS - 1;
		expect((await claim(one)).outcome).toBe("limited");
		clock.now = T0 + LEASE_MS;
		expect((await claim(one)).outcome).toBe("claimed");
	});

	it("exact under concurrency: 200 distinct requests at once, rpm 50: exactly 50 claimed", async () => {
		const { claim } = store();
		const results = await Promise.all(Array.from({ length: 200 }, () => claim(policy({ rpm: 50 }))));
		const outcomes = results.map((result) => (result.outcome === "limited" ? result.limit : result.outcome));
		expect(outcomes.filter((outcome) => outcome === "claimed")).toHaveLength(50);
		expect(outcomes.filter((outcome) => outcome === "rpm")).toHaveLength(150);
	});

	it("the JavaScript model the workerd tests use answers as the script does, over 600 random steps", async () => {
		const random = seededRandom(21);
		const prefix = `model:${crypto.randomUUID()}:`;
		const model = new LimitScriptModel(new Map());
		model.loaded = true;
		let now = T0;
		const verdicts = new Set<unknown>();
		for (let step = 0; step < 600; step++) {
			now += random.pick([0, 1, 250, 5_000, 30_000, 59_999, 60_000]);
			const who = random.pick(["a", "b"]);
			const keys = [`${prefix}r${random.int(200)}`, `${prefix}limit:rpm:${who}`, `${prefix}limit:rpd:${who}:d`, `${prefix}limit:inflight:${who}`];
			if (random.int(6) === 0) {
				const member = `m${random.int(step + 1)}`;
				expect(model.zrem(keys[3]!, member), `step ${step}`).toBe(await client.zrem(keys[3]!, member));
				continue;
			}
			const args = [`m${step}`, 300_000, now, random.pick([0, 3, 5]), random.pick([0, 20]), random.pick([0, 1, 2]), now + 86_400_000, 90_000];
			const real = (await client.evalsha(LIMITED_CLAIM_SHA1, keys, args)) as unknown[];
			expect(model.evalsha(LIMITED_CLAIM_SHA1, keys, args), `step ${step}`).toEqual(real);
			verdicts.add(real[0]);
		}
		// Every verdict came up: claimed, replay, and each of the three limits.
		expect([...verdicts].sort()).toEqual([0, 1, 2, 3, 4]);
	});
});
