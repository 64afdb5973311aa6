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
});
