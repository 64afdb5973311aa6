import { describe, expect, it } from "vitest";
import { ReplayStoreError } from "./store.ts";
import type { LimitPolicy } from "../limits/policy.ts";
import { RedisLimitStore, type LimitRedis, type Patience } from "./redis-limits.ts";
import { LIMITED_CLAIM_SCRIPT, LIMITED_CLAIM_SHA1 } from "./script.ts";
import { SETTLE_SCRIPT } from "./settle-script.ts";
import type { RideOutcome } from "./ride.ts";

const NOW = Date.UTC(2026, 11, 2, 23, 59, 0);
const POLICY: LimitPolicy = { rpm: 60, rpd: 1000, concurrent: 4, label: "" };

/** A fake that records every call and answers each from `answer` (or throws what it returns as an Error). */
class FakeLimitRedis implements LimitRedis {
	readonly calls: { command: string; first: string; keys?: string[]; args?: (string | number)[] }[] = [];
	/** The time budget each script command asked for. */
	readonly patience: (string | undefined)[] = [];
	answer: (command: string) => unknown = () => [0, 0, 59, 60_000, 999, 3];

	private reply(command: string): Promise<unknown> {
		const result = this.answer(command);
		return result instanceof Error ? Promise.reject(result) : Promise.resolve(result);
	}

	evalsha(sha1: string, keys: string[], args: (string | number)[], patience?: Patience) {
		this.calls.push({ command: "evalsha", first: sha1, keys, args });
		this.patience.push(patience);
		return this.reply("evalsha");
	}

	eval(script: string, keys: string[], args: (string | number)[], patience?: Patience) {
		this.calls.push({ command: "eval", first: script, keys, args });
		this.patience.push(patience);
		return this.reply("eval");
	}

	zrem(key: string, member: string) {
		this.calls.push({ command: "zrem", first: key, args: [member] });
		return this.reply("zrem");
	}
}

function setup() {
	const redis = new FakeLimitRedis();
	const store = new RedisLimitStore(redis, { prefix: "p:", leaseMs: 660_000, now: () => NOW });
	const claim = (policy = POLICY, confirming = false) => store.claim({ key: "p:abc", value: "svc:1:iso:7", ttlMs: 300_000, clientId: "svc", policy }, confirming);
	return { redis, store, claim };
}

describe("RedisLimitStore", () => {
	it("one command per claim: EVAL until Redis ran the script once, then EVALSHA, with the keys and arguments the script reads", async () => {
		const { redis, claim } = setup();
		await claim({ rpm: 60, rpd: null, concurrent: null, label: "" });
		await claim({ rpm: 60, rpd: null, concurrent: null, label: "" });
		expect(redis.calls.map((call) => call.command)).toEqual(["eval", "evalsha"]);
		expect(redis.calls[0]!.first).toBe(LIMITED_CLAIM_SCRIPT);
		expect(redis.calls.slice(1)).toEqual([
			{
				command: "evalsha",
				first: LIMITED_CLAIM_SHA1,
				keys: ["p:abc", "p:limit:rpm:svc", "p:limit:rpd:svc:2026-12-02", "p:limit:inflight:svc"],
				// value (the entry's id too), ttl, now, rpm, rpd, concurrent, the day counter's expiry (midnight + 1 h), lease
				args: ["svc:1:iso:7", 300_000, NOW, 60, 0, 0, Date.UTC(2026, 11, 3, 1), 660_000],
			},
		]);
	});

	it("NOSCRIPT (Redis flushed, a new primary): the script itself with EVAL, once, then EVALSHA again", async () => {
		const { redis, claim } = setup();
		await claim();
		let flushed = true;
		redis.answer = (command) => {
			if (command !== "evalsha" || !flushed) return [0, 0, 59, 60_000, 999, 3];
			flushed = false;
			return new Error("NOSCRIPT No matching script. Please use EVAL.");
		};
		expect((await claim()).outcome).toBe("claimed");
		expect((await claim()).outcome).toBe("claimed");
		expect(redis.calls.map((call) => call.command)).toEqual(["eval", "evalsha", "eval", "evalsha"]);
		expect(redis.calls[2]!.args).toEqual(redis.calls[1]!.args);
	});

	it("an error that is not NOSCRIPT is not retried, and a failed EVAL leaves the next claim on EVAL", async () => {
		const { redis, claim } = setup();
		await claim();
		redis.answer = () => new Error("ERR something else");
		await expect(claim()).rejects.toMatchObject({ name: "ReplayStoreError", reason: "error" });
		expect(redis.calls.map((call) => call.command)).toEqual(["eval", "evalsha"]);

		const fresh = setup();
		fresh.redis.answer = () => new Error("ERR down");
		await expect(fresh.claim()).rejects.toMatchObject({ reason: "error" });
		fresh.redis.answer = () => [0, 0, 59, 60_000, 999, 3];
		await fresh.claim();
		expect(fresh.redis.calls.map((call) => call.command)).toEqual(["eval", "eval"]);
	});

	it("NOSCRIPT then a failed EVAL: Redis has no script, so the next claim sends EVAL, not EVALSHA", async () => {
		const { redis, claim } = setup();
		await claim();
		redis.answer = (command) => (command === "evalsha" ? new Error("NOSCRIPT No matching script. Please use EVAL.") : new Error("ERR down"));
		await expect(claim()).rejects.toMatchObject({ reason: "error" });
		redis.answer = () => [0, 0, 59, 60_000, 999, 3];
		expect((await claim()).outcome).toBe("claimed");
		expect(redis.calls.map((call) => call.command)).toEqual(["eval", "evalsha", "eval", "eval"]);
	});

	it("a timeout or abort is a store failure of kind timeout, never a verdict", async () => {
		for (const name of ["TimeoutError", "AbortError"]) {
			const { redis, claim } = setup();
			redis.answer = () => Object.assign(new Error("took too long"), { name });
			await expect(claim()).rejects.toMatchObject({ reason: "timeout" });
		}
	});

	it.each([
		["null", null],
		["a string", "OK"],
		["five numbers", [0, 0, 1, 1, 1]],
		["a fraction", [0, 0.5, 1, 1, 1, 1]],
		["an unknown verdict", [7, 0, 1, 1, 1, 1]],
		["a replay without the value found", [1, 0, -1, 0, -1, -1]],
		["a claim with a seventh element", [0, 0, 1, 1, 1, 1, "x"]],
		["a replay whose value found is a number", [1, 0, -1, 0, -1, -1, 7]],
		["a replay with a ninth element", [1, 0, -1, 0, -1, -1, "svc:1:iso:7", 60, 60]],
		["a sixth element that is not a number", [0, 0, 1, 1, 1, "1"]],
		["a replay whose hold is a fraction", [1, 0, -1, 0, -1, -1, "svc:1:iso:7", 0.5]],
		["a budgeted claim with a fraction among its tokens", [0, 0, 1, 1, 1, 1, 60, 0.5, 100, 0]],
	])("an unexpected reply (%s) is a store failure", async (_, reply) => {
		const { redis, claim } = setup();
		redis.answer = () => reply;
		await expect(claim()).rejects.toBeInstanceOf(ReplayStoreError);
	});

	it("claimed: the state of each limit set, and a slot named by the claim's value", async () => {
		const { claim } = setup();
		expect(await claim()).toEqual({
			outcome: "claimed",
			state: { rpm: { remaining: 59, resetMs: 60_000 }, rpd: { remaining: 999, resetMs: 60_000 }, concurrent: { remaining: 3 } },
			slot: { clientId: "svc", id: "svc:1:iso:7", store: "upstash" },
		});
	});

	it("claimed without concurrent: no slot, and null for the limits not set", async () => {
		const { redis, claim } = setup();
		redis.answer = () => [0, 0, 4, 30_000, -1, -1];
		expect(await claim({ rpm: 5, rpd: null, concurrent: null, label: "" })).toEqual({
			outcome: "claimed",
			state: { rpm: { remaining: 4, resetMs: 30_000 }, rpd: null, concurrent: null },
			slot: null,
		});
	});

	it("claimed with nothing left: 0 left is a state (the RateLimit header says 0), not a limit unset", async () => {
		const { redis, claim } = setup();
		redis.answer = () => [0, 0, 0, 30_000, 0, 0];
		expect(await claim()).toMatchObject({ outcome: "claimed", state: { rpm: { remaining: 0, resetMs: 30_000 }, rpd: { remaining: 0, resetMs: 60_000 }, concurrent: { remaining: 0 } } });
	});

	it("a replay returns the value found, so a claim whose answer was lost can tell its own", async () => {
		const { redis, claim } = setup();
		redis.answer = () => [1, 0, -1, 0, -1, -1, "svc:1:iso:7"];
		expect(await claim()).toEqual({ outcome: "duplicate", found: "svc:1:iso:7" });
	});

	it.each([
		// rpd: until the UTC day ends (60 s here); rpm: when the oldest leaves the window; concurrent: 1 s.
		[2, "rpd", 60_000],
		[3, "rpm", 12_345],
		[4, "concurrent", 1_000],
	] as const)("verdict %i: limited by %s, retry after %i ms", async (verdict, limit, retryAfterMs) => {
		const { redis, claim } = setup();
		redis.answer = () => [verdict, 12_345, 0, 12_345, 0, 0];
		expect(await claim()).toMatchObject({ outcome: "limited", limit, retryAfterMs });
	});

	it("a claim asks for a claim's budget; a confirming run for a confirmation's (at least a second, like the plain claim's SET NX GET)", async () => {
		const { redis, claim } = setup();
		await claim();
		await claim(POLICY, true);
		await claim();
		expect(redis.patience).toEqual(["claim", "confirm", "claim"]);
	});

	it("a confirming run: its own value is the claim (its slot held), its own refusal the refusal, another's value a replay", async () => {
		const { redis, claim } = setup();
		const found = (value: string) => () => [1, 0, -1, 0, -1, -1, value];
		redis.answer = found("svc:1:iso:7");
		const unknown = { rpm: null, rpd: null, concurrent: null };
		expect(await claim(POLICY, true)).toEqual({ outcome: "claimed", state: unknown, slot: { clientId: "svc", id: "svc:1:iso:7", store: "upstash" } });
		expect(await claim({ ...POLICY, concurrent: null }, true)).toEqual({ outcome: "claimed", state: unknown, slot: null });
		// What was left is not known: the longest wait of that limit (rpd: the day's end, 60 s here).
		// (NOW is 23:59 on the 2nd of December: the day ends in 60 s, the month 29 days later.)
		const monthEnds = Date.UTC(2027, 0, 1) - NOW;
		for (const [limit, retryAfterMs] of [["rpd", 60_000], ["rpm", 60_000], ["concurrent", 1_000], ["daily_tokens", 60_000], ["monthly_tokens", monthEnds]] as const) {
			redis.answer = found(`svc:1:iso:7:refused:${limit}`);
			expect(await claim(POLICY, true)).toEqual({ outcome: "limited", limit, retryAfterMs, state: unknown });
		}
		for (const another of ["svc:1:iso:77", "svc:1:iso:7:refused:", "svc:1:iso:7:refused:rpd:x", "svc:1:iso-b:7"]) {
			redis.answer = found(another);
			expect(await claim(POLICY, true)).toEqual({ outcome: "duplicate", found: another });
		}
		// A first run never takes the value found for its own: it cannot have run before.
		redis.answer = found("svc:1:iso:7");
		expect(await claim()).toEqual({ outcome: "duplicate", found: "svc:1:iso:7" });
	});

	it("with a budget: its keys and arguments after the limits'; the reply's hold and what is left; a confirming run that finds its own value keeps its reservation", async () => {
		const { redis, store } = setup();
		const budgeted: LimitPolicy = { rpm: null, rpd: null, concurrent: null, label: "", budget: { daily: 1_000, monthly: 5_000, hold: 100 } };
		const nonce = "a".repeat(32);
		const request = { key: "p:abc", value: "svc:1:iso:7", ttlMs: 300_000, clientId: "svc", policy: budgeted, budget: { hold: 60, nonce } };
		const id = `svc:2026-12-02:2026-12:${nonce}`;
		redis.answer = () => [0, 0, -1, 60_000, -1, -1, 60, 940, 4_940, 250];
		expect(await store.claim(request)).toEqual({
			outcome: "claimed",
			state: { rpm: null, rpd: null, concurrent: null, dailyTokens: { remaining: 940, resetMs: 60_000 }, monthlyTokens: { remaining: 4_940, resetMs: Date.UTC(2027, 0, 1) - NOW } },
			slot: null,
			reservation: { id, hold: 60, store: "upstash" },
			expiredTokens: 250,
		});
		const [call] = redis.calls;
		expect(call!.keys!.slice(4)).toEqual([
			"p:limit:svc:tokens:day:2026-12-02",
			"p:limit:svc:tokens:day:2026-12-01",
			"p:limit:svc:tokens:month:2026-12",
			"p:limit:svc:tokens:month:2026-11",
			"p:limit:svc:tokens:leases",
			"p:limit:svc:tokens:holds",
		]);
		// Each window outlives its end by the reservation's lease and an hour, so a day's budget is
		// not forgotten (and spent again) an hour after a claim: the day's window lives to midnight and past.
		const slack = 720_000 + 3_600_000;
		expect(call!.args!.slice(8)).toEqual([
			1_000,
			5_000,
			60,
			id,
			NOW + 720_000,
			"2026-12-02",
			"2026-12-01",
			"2026-12",
			"2026-11",
			Date.UTC(2026, 11, 3) + slack,
			Date.UTC(2027, 0, 1) + slack,
			slack,
		]);
		redis.answer = () => [1, 0, -1, 0, -1, -1, "svc:1:iso:7", 60];
		expect(await store.claim(request, true)).toMatchObject({ outcome: "claimed", reservation: { id, hold: 60 } });
		// A replay of another: no reservation of its own.
		redis.answer = () => [1, 0, -1, 0, -1, -1, "svc:1:iso:8", -1];
		expect(await store.claim(request, true)).toEqual({ outcome: "duplicate", found: "svc:1:iso:8" });
	});

	it.each([
		["monthly only", { daily: null, monthly: 5_000, hold: 100 }, [0, 5_000], "svc:-:2026-12:"],
		["daily only", { daily: 1_000, monthly: null, hold: 100 }, [1_000, 0], "svc:2026-12-02:-:"],
	] as const)("a budget %s: 0 (no limit) for the window it does not have, and `-` for it in the reservation's id", async (_, budget, limits, idStart) => {
		const { redis, store } = setup();
		const nonce = "a".repeat(32);
		redis.answer = () => [0, 0, -1, 60_000, -1, -1, 60, 940, 4_940, 0];
		await store.claim({ key: "p:abc", value: "svc:1:iso:7", ttlMs: 300_000, clientId: "svc", policy: { rpm: null, rpd: null, concurrent: null, label: "", budget }, budget: { hold: 60, nonce } });
		expect(redis.calls[0]!.args!.slice(8, 12)).toEqual([...limits, 60, `${idStart}${nonce}`]);
	});

	it("a request sent at `at` is run as of then: a confirmation after midnight names the day and the reservation of its first run", async () => {
		const { redis, store } = setup();
		const budgeted: LimitPolicy = { rpm: null, rpd: 10, concurrent: null, label: "", budget: { daily: 1_000, monthly: null, hold: 100 } };
		const nonce = "b".repeat(32);
		// The store's clock reads 23:59 on the 2nd; the first run was sent the day before, and its instant decides.
		const at = Date.UTC(2026, 11, 1, 23, 59, 59);
		redis.answer = () => [1, 0, -1, 0, -1, -1, "svc:1:iso:7", 60];
		const confirmed = await store.claim({ key: "p:abc", value: "svc:1:iso:7", ttlMs: 300_000, clientId: "svc", policy: budgeted, budget: { hold: 60, nonce }, at }, true);
		expect(confirmed).toMatchObject({ outcome: "claimed", reservation: { id: `svc:2026-12-01:-:${nonce}`, hold: 60 } });
		const [call] = redis.calls;
		expect(call!.args![2]).toBe(at);
		expect(call!.keys!.slice(2, 3)).toEqual(["p:limit:rpd:svc:2026-12-01"]);
		expect(call!.keys!.slice(4, 5)).toEqual(["p:limit:svc:tokens:day:2026-12-01"]);
	});

	it("release: one ZREM of the slot from the client's in-flight set", async () => {
		const { redis, store } = setup();
		redis.answer = () => 1;
		await store.release({ clientId: "svc", id: "svc:1:iso:7", store: "upstash" });
		expect(redis.calls).toEqual([{ command: "zrem", first: "p:limit:inflight:svc", args: ["svc:1:iso:7"] }]);
		redis.answer = () => new Error("down");
		await expect(store.release({ clientId: "svc", id: "x", store: "upstash" })).rejects.toMatchObject({ reason: "error" });
	});

	it("refuses a lease that is not positive when built", () => {
		expect(() => new RedisLimitStore(new FakeLimitRedis(), { prefix: "p:", leaseMs: 0 })).toThrow("leaseMs must be positive");
	});
});

describe("RedisLimitStore: settles carried by a budgeted claim", () => {
	const BUDGETED: LimitPolicy = { rpm: null, rpd: null, concurrent: null, label: "", budget: { daily: 1_000, monthly: null, hold: 100 } };
	/** A reservation of svc's held in NOW's day. */
	const idOf = (n: number) => `svc:2026-12-02:-:${String(n).padStart(32, "0")}`;
	/** A claimed reply with a budget, and the answers to the settles it carried. */
	const claimed = (...answers: unknown[]) => [0, 0, -1, 60_000, -1, -1, 100, 900, -1, 0, answers];
	function ridesSetup(replies: unknown[]) {
		const redis = new FakeLimitRedis();
		redis.answer = () => {
			if (replies.length === 0) throw new Error("no reply left");
			return replies.shift();
		};
		const store = new RedisLimitStore(redis, { prefix: "p:", leaseMs: 660_000, rideWaitMs: 60_000, now: () => NOW });
		const rides = store.rides!;
		const claim = () => store.claim({ key: "p:abc", value: "svc:1:iso:7", ttlMs: 300_000, clientId: "svc", policy: BUDGETED, budget: { hold: 100, nonce: "c".repeat(32) } });
		/** Settle `n` of `tokens` handed over to ride: what a claim's script found for it, or, sent alone, the settle script. */
		const ride = (n: number, tokens: number) =>
			new Promise<RideOutcome>((told) => {
				rides.offer({ clientId: "svc", reservation: idOf(n), tokens, report: `report-${n}`, day: "2026-12-02", month: "-", settled: told }, { waitUntil: () => {} });
			});
		return { redis, rides, store, claim, ride };
	}

	it("a claim carries at most 8 waiting settles, oldest first, as a count then each id, its tokens and its report's id after the budget's arguments; the rest keep waiting", async () => {
		const answers = Array.from({ length: 8 }, (_, i) => [3, 100, i + 1]).flat();
		const { redis, rides, claim, ride } = ridesSetup([claimed(...answers)]);
		const reports = Array.from({ length: 9 }, (_, i) => ride(i + 1, i + 1));
		expect(rides.waitingCount).toBe(9);
		expect((await claim()).outcome).toBe("claimed");
		expect(redis.calls[0]!.args!.slice(20)).toEqual([8, ...Array.from({ length: 8 }, (_, i) => [idOf(i + 1), i + 1, `report-${i + 1}`]).flat()]);
		expect(await Promise.all(reports.slice(0, 8))).toEqual(Array.from({ length: 8 }, (_, i) => ({ status: "settled", hold: 100, counted: i + 1 })));
		expect(rides.waitingCount).toBe(1);
		expect(rides.take("svc", () => true, 8).map((ride) => ride.reservation)).toEqual([idOf(9)]);
	});

	it("a claim run as of an earlier day (a confirmation sent before midnight) leaves a settle of a later day's reservation waiting: its window is not among the claim's keys", async () => {
		const { redis, rides, store, ride } = ridesSetup([[1, 0, -1, 0, -1, -1, "svc:1:iso:7", 60]]);
		void ride(1, 5);
		const at = Date.UTC(2026, 11, 1, 12);
		const request = { key: "p:abc", value: "svc:1:iso:7", ttlMs: 300_000, clientId: "svc", policy: BUDGETED, budget: { hold: 100, nonce: "c".repeat(32) }, at };
		expect(await store.claim(request, true)).toMatchObject({ outcome: "claimed" });
		expect(redis.calls[0]!.args).toHaveLength(20);
		expect(rides.waitingCount).toBe(1);
	});

	it("a settle is its own command at once: riding is the claim's (from rides), never the settle's", async () => {
		const { redis, rides, store } = ridesSetup([[3, 100, 5]]);
		const report = store.settle(idOf(1), 5);
		expect(rides.waitingCount).toBe(0);
		expect(await report).toEqual({ status: "settled", hold: 100, counted: 5 });
		expect(redis.calls.map((call) => call.first)).toEqual([SETTLE_SCRIPT]);
		// A settle runs in the background: a confirmation's patience, not a claim's.
		expect(redis.patience).toEqual(["confirm"]);
	});

	it.each([
		["status 4", [4, 0, 0]],
		["status -1", [-1, 0, 0]],
		["two numbers", [3, 100]],
		["a fraction", [3, 100, 0.5]],
		["answers for two settles", [3, 100, 5, 3, 100, 5]],
		["none", []],
	])("a settle alone answered %s is a store failure", async (_, reply) => {
		const { store } = ridesSetup([reply]);
		await expect(store.settle(idOf(1), 5)).rejects.toMatchObject({ name: "ReplayStoreError", reason: "error" });
	});

	it("settles of several clients go in one command: each one's reservations, holds and windows as keys, and its id, tokens, report's id and key count as arguments after now", async () => {
		const { redis, store } = ridesSetup([[3, 100, 5, 1, 0, 0]]);
		const other = `other:2026-12-02:2026-12:${"e".repeat(32)}`;
		const found = await store.settleAll([
			{ reservation: idOf(1), tokens: 5, report: "r1" },
			{ reservation: "not-an-id", tokens: 1, report: "r2" },
			{ reservation: other, tokens: 7, report: "r3" },
		]);
		expect(found).toEqual([{ status: "settled", hold: 100, counted: 5 }, { status: "unknown" }, { status: "already_settled" }]);
		expect(redis.calls).toHaveLength(1);
		expect(redis.calls[0]!.keys).toEqual([
			"p:limit:svc:tokens:leases",
			"p:limit:svc:tokens:holds",
			"p:limit:svc:tokens:day:2026-12-02",
			"p:limit:other:tokens:leases",
			"p:limit:other:tokens:holds",
			"p:limit:other:tokens:day:2026-12-02",
			"p:limit:other:tokens:month:2026-12",
		]);
		expect(redis.calls[0]!.args).toEqual([NOW, idOf(1), 5, "r1", 3, other, 7, "r3", 4]);
	});

	it("ids that name no windows are unknown without a command", async () => {
		const { redis, store } = ridesSetup([]);
		expect(await store.settleAll([{ reservation: "svc:nope", tokens: 1, report: "r" }])).toEqual([{ status: "unknown" }]);
		expect(await store.settle("x".repeat(300), 1)).toEqual({ status: "unknown" });
		expect(redis.calls).toEqual([]);
	});

	it("answers that do not match the settles carried (one answer for two): neither takes another's, both are sent alone, in one command", async () => {
		const { redis, claim, ride } = ridesSetup([claimed(3, 100, 30), [1, 0, 0, 3, 100, 40]]);
		const first = ride(1, 30);
		const second = ride(2, 40);
		expect((await claim()).outcome).toBe("claimed");
		expect([await first, await second]).toEqual([{ status: "already_settled" }, { status: "settled", hold: 100, counted: 40 }]);
		expect(redis.calls.map((call) => call.first)).toEqual([LIMITED_CLAIM_SCRIPT, SETTLE_SCRIPT]);
		expect(redis.calls[1]!.args!.slice(1)).toEqual([idOf(1), 30, "report-1", 3, idOf(2), 40, "report-2", 3]);
	});

	it("answers for more settles than the claim carried (two for one): none is taken, the settle is sent alone", async () => {
		const { redis, claim, ride } = ridesSetup([claimed(3, 100, 30, 3, 100, 40), [3, 100, 30]]);
		const report = ride(1, 30);
		expect((await claim()).outcome).toBe("claimed");
		expect(await report).toEqual({ status: "settled", hold: 100, counted: 30 });
		expect(redis.calls.map((call) => call.first)).toEqual([LIMITED_CLAIM_SCRIPT, SETTLE_SCRIPT]);
	});

	it.each([
		["not in threes", [3, 100]],
		["a string among them", [3, 100, "30"]],
		["a fraction among them", [3, 100, 0.5]],
		["a status above 3", [4, 100, 30]],
		["a status below 0", [-1, 100, 30]],
	])("carried answers %s are an unexpected reply: a store failure, and the settle is sent alone", async (_, answers) => {
		const { redis, claim, ride } = ridesSetup([claimed(...answers), [3, 100, 30]]);
		const report = ride(1, 30);
		await expect(claim()).rejects.toMatchObject({ name: "ReplayStoreError", reason: "error" });
		expect(await report).toEqual({ status: "settled", hold: 100, counted: 30 });
		expect(redis.calls.map((call) => call.first)).toEqual([LIMITED_CLAIM_SCRIPT, SETTLE_SCRIPT]);
	});
});
