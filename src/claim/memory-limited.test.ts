import { describe, expect, it } from "vitest";
import { MemoryReplayStore } from "./memory.ts";
import { ReplayStoreError } from "./store.ts";
import { MemoryLimiter } from "./memory-limiter.ts";
import { MemoryLimitedStore } from "./memory-limited.ts";
import type { LimitPolicy } from "../limits/policy.ts";

const T0 = Date.UTC(2026, 11, 2, 12, 0, 0);
const RPM1: LimitPolicy = { rpm: 1, rpd: null, concurrent: null, label: "" };

function setup(maxKeys = 100) {
	const clock = { now: T0 };
	const replay = new MemoryReplayStore(maxKeys, () => clock.now);
	const store = new MemoryLimitedStore(replay, new MemoryLimiter({ leaseMs: 1_000 }), () => clock.now);
	const claim = (key: string, policy = RPM1, clientId = "svc") => store.claim({ key, value: "v", ttlMs: 300_000, clientId, policy });
	return { clock, replay, store, claim };
}

describe("MemoryLimitedStore: the replay claim and the limits in one isolate", () => {
	it("a replay spends no quota: after it, the client's one request a minute is still there", async () => {
		const { claim } = setup();
		const two = { ...RPM1, rpm: 2 };
		expect((await claim("a", two)).outcome).toBe("claimed");
		expect(await claim("a", two)).toEqual({ outcome: "duplicate" });
		expect((await claim("b", two)).outcome).toBe("claimed");
	});

	it("a refused request spends nothing and claims its key all the same: once the window has room, the same key is a replay", async () => {
		const { claim, clock, replay } = setup();
		expect((await claim("a")).outcome).toBe("claimed");
		expect(await claim("b")).toMatchObject({ outcome: "limited", limit: "rpm", retryAfterMs: 60_000 });
		expect(replay.has("b")).toBe(true);
		clock.now += 60_000;
		expect(await claim("b")).toEqual({ outcome: "duplicate" });
		// The refusal spent nothing: the next minute's one request is there.
		expect((await claim("c")).outcome).toBe("claimed");
	});

	it("a refusal that finds the memory store full is a store error (503): refused either way, and its bytes never accepted later", async () => {
		const { claim, clock } = setup(1);
		expect((await claim("a")).outcome).toBe("claimed");
		await expect(claim("b")).rejects.toBeInstanceOf(ReplayStoreError);
		clock.now += 60_000;
		// "a" is still live (300 s), so "b" is refused again rather than taken in without its key.
		await expect(claim("b")).rejects.toBeInstanceOf(ReplayStoreError);
	});

	it("the limiter full of live counters is a store error (503) too, and claims nothing", async () => {
		const clock = { now: T0 };
		const replay = new MemoryReplayStore(100, () => clock.now);
		const store = new MemoryLimitedStore(replay, new MemoryLimiter({ leaseMs: 1_000, maxClients: 1 }), () => clock.now);
		expect((await store.claim({ key: "a", value: "v", ttlMs: 300_000, clientId: "carol", policy: RPM1 })).outcome).toBe("claimed");
		await expect(store.claim({ key: "b", value: "v", ttlMs: 300_000, clientId: "dave", policy: RPM1 })).rejects.toMatchObject({ reason: "full" });
		expect(replay.has("b")).toBe(false);
	});

	it("a full memory store refunds the spend and says so (a store error: 503, not 429)", async () => {
		const { claim, clock } = setup(1);
		const daily: LimitPolicy = { rpm: null, rpd: 1, concurrent: null, label: "" };
		expect((await claim("a", daily, "one")).outcome).toBe("claimed");
		await expect(claim("b", daily, "two")).rejects.toBeInstanceOf(ReplayStoreError);
		// Once "a" expired there is room; "two" still has its one request of the day.
		clock.now += 300_000;
		expect((await claim("c", daily, "two")).outcome).toBe("claimed");
	});

	it("concurrent copies of one request in one isolate: exactly one is accepted, and only it spends", async () => {
		const { claim } = setup();
		const results = await Promise.all(Array.from({ length: 10 }, () => claim("same", { ...RPM1, rpm: 2 })));
		expect(results.filter((r) => r.outcome === "claimed")).toHaveLength(1);
		expect(results.filter((r) => r.outcome === "duplicate")).toHaveLength(9);
		expect((await claim("other", { ...RPM1, rpm: 2 })).outcome).toBe("claimed");
	});

	it("release frees the slot in memory", async () => {
		const { claim, store } = setup();
		const one: LimitPolicy = { rpm: null, rpd: null, concurrent: 1, label: "" };
		const first = await claim("a", one);
		expect((await claim("b", one)).outcome).toBe("limited");
		if (first.outcome !== "claimed" || first.slot === null) throw new Error("no slot");
		await store.release(first.slot);
		expect((await claim("c", one)).outcome).toBe("claimed");
	});

	it("a token reservation is settled where it was made: the unspent part of its hold goes back, the first report wins, after its lease it is expired", async () => {
		const { clock, store } = setup();
		const budget: LimitPolicy = { rpm: null, rpd: null, concurrent: null, label: "", budget: { daily: 1_000, monthly: null, hold: 400 } };
		const reserve = async (key: string) => {
			const claim = await store.claim({ key, value: "v", ttlMs: 300_000, clientId: "svc", policy: budget, budget: { hold: 400, nonce: `nonce-${key}` } });
			if (claim.outcome !== "claimed" || claim.reservation === undefined) throw new Error(`no reservation: ${claim.outcome}`);
			return claim;
		};
		const first = await reserve("a");
		// Named as in Upstash: the day window it holds in, no month window (the budget has none), the nonce.
		expect(first.reservation).toEqual({ id: "svc:2026-12-02:-:nonce-a", hold: 400, store: "memory" });
		expect(first.state.dailyTokens?.remaining).toBe(600);
		expect(await store.settle(first.reservation!.id, 50)).toEqual({ status: "settled", hold: 400, counted: 50 });
		expect(await store.settle(first.reservation!.id, 0)).toEqual({ status: "already_settled" });
		// 1000 - 50 used: the next hold has 950 to come from, and reports above the hold count the hold.
		const second = await reserve("b");
		expect(second.state.dailyTokens?.remaining).toBe(550);
		expect(await store.settle(second.reservation!.id, 9_999)).toEqual({ status: "settled", hold: 400, counted: 400 });
		expect((await reserve("c")).state.dailyTokens?.remaining).toBe(150);
		// Unreported until its lease ended (the limiter's 1 s + 60 s): charged whole, and counted as expired by the next claim.
		const late = await reserve("d");
		expect(late.reservation!.hold).toBe(150);
		clock.now += 61_000;
		expect(await store.settle(late.reservation!.id, 1)).toEqual({ status: "expired" });
		const after = await store.claim({ key: "e", value: "v", ttlMs: 300_000, clientId: "svc", policy: budget, budget: { hold: 400, nonce: "nonce-e" } });
		// "c" was never reported either: its hold was dropped, charged whole, with "d"'s.
		expect(after).toMatchObject({ outcome: "limited", limit: "daily_tokens", expiredTokens: 400 + 150 });
		expect(await store.settle("svc:2026-12-02:-:nonce-unknown", 1)).toEqual({ status: "unknown" });
	});

	it("a report after its day ended gives nothing back to the new day (that window keeps what it counted, as in Upstash)", async () => {
		const { clock, store } = setup();
		clock.now = Date.UTC(2026, 11, 2, 23, 59, 50);
		const budget: LimitPolicy = { rpm: null, rpd: null, concurrent: null, label: "", budget: { daily: 1_000, monthly: 5_000, hold: 400 } };
		const request = (key: string) => ({ key, value: "v", ttlMs: 300_000, clientId: "svc", policy: budget, budget: { hold: 400, nonce: `nonce-${key}` } });
		const claim = await store.claim(request("a"));
		if (claim.outcome !== "claimed") throw new Error(claim.outcome);
		expect(claim.reservation!.id).toBe("svc:2026-12-02:2026-12:nonce-a");
		clock.now += 20_000;
		expect(await store.settle(claim.reservation!.id, 100)).toEqual({ status: "settled", hold: 400, counted: 100 });
		// The new day starts at 0; the month, still the same, got the unspent 300 back: 5000 - 100 - 400.
		expect(await store.claim(request("b"))).toMatchObject({ state: { dailyTokens: { remaining: 600 }, monthlyTokens: { remaining: 4_500 } } });
	});
	it("a claim the replay store answers as a duplicate (its look missed it) gives back what the limiter spent", async () => {
		const limiter = new MemoryLimiter({ leaseMs: 1_000 });
		const replay = { has: () => false, claim: async () => "duplicate" as const };
		const store = new MemoryLimitedStore(replay, limiter, () => T0);
		expect(await store.claim({ key: "a", value: "v", ttlMs: 300_000, clientId: "svc", policy: RPM1 })).toEqual({ outcome: "duplicate" });
		// The client's one request a minute is still there.
		const fresh = new MemoryLimitedStore(new MemoryReplayStore(10, () => T0), limiter, () => T0);
		expect((await fresh.claim({ key: "b", value: "v", ttlMs: 300_000, clientId: "svc", policy: RPM1 })).outcome).toBe("claimed");
	});

	it("a single expired token is counted as expired by the next claim", async () => {
		const { clock, store } = setup();
		const budget: LimitPolicy = { rpm: null, rpd: null, concurrent: null, label: "", budget: { daily: 1_000, monthly: null, hold: 1 } };
		const request = (key: string) => ({ key, value: "v", ttlMs: 300_000, clientId: "svc", policy: budget, budget: { hold: 1, nonce: `nonce-${key}` } });
		expect(await store.claim(request("a"))).toMatchObject({ outcome: "claimed", reservation: { hold: 1 } });
		clock.now += 61_000;
		expect(await store.claim(request("b"))).toMatchObject({ outcome: "claimed", expiredTokens: 1 });
	});
});
