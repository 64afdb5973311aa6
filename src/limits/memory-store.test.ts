import { describe, expect, it } from "vitest";
import { MemoryReplayStore } from "../replay/memory.ts";
import { ReplayStoreError } from "../replay/store.ts";
import { MemoryLimiter } from "./memory-limiter.ts";
import { MemoryLimitedStore } from "./memory-store.ts";
import type { LimitPolicy } from "./policy.ts";

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

	it("a refused request claims nothing: the same key is accepted once the window has room", async () => {
		const { claim, clock, replay } = setup();
		expect((await claim("a")).outcome).toBe("claimed");
		expect(await claim("b")).toMatchObject({ outcome: "limited", limit: "rpm", retryAfterMs: 60_000 });
		expect(replay.has("b")).toBe(false);
		clock.now += 60_000;
		expect((await claim("b")).outcome).toBe("claimed");
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
		expect((await claim("b", one)).outcome).toBe("claimed");
	});
});
