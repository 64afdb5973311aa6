import { describe, expect, it } from "vitest";
import { ReplayStoreError } from "./store.ts";
import { MemoryLimiter } from "./memory-limiter.ts";
import type { LimitPolicy } from "../limits/policy.ts";

const T0 = Date.UTC(2026, 11, 2, 12, 0, 0);
const policy = (p: Partial<LimitPolicy>): LimitPolicy => ({ rpm: null, rpd: null, concurrent: null, label: "", ...p });

function outcomes(limiter: MemoryLimiter, clientId: string, limits: LimitPolicy, times: number[]): string[] {
	return times.map((at) => {
		const { claim } = limiter.take(clientId, limits, at);
		return claim.outcome === "limited" ? claim.limit : claim.outcome;
	});
}

describe("MemoryLimiter", () => {
	it("rpm: at most N in any 60 s window; a request leaves it exactly 60 s after it was accepted", () => {
		const limiter = new MemoryLimiter({ leaseMs: 1_000 });
		const rpm3 = policy({ rpm: 3 });
		expect(outcomes(limiter, "svc", rpm3, [T0, T0 + 10, T0 + 20, T0 + 30])).toEqual(["claimed", "claimed", "claimed", "rpm"]);
		const refused = limiter.take("svc", rpm3, T0 + 59_999).claim;
		expect(refused).toEqual({ outcome: "limited", limit: "rpm", retryAfterMs: 1, state: { rpm: { remaining: 0, resetMs: 1 }, rpd: null, concurrent: null } });
		// At T0 + 60 s the first leaves: one more fits, then the second leaves 10 ms later.
		expect(outcomes(limiter, "svc", rpm3, [T0 + 60_000, T0 + 60_001, T0 + 60_010])).toEqual(["claimed", "rpm", "claimed"]);
	});

	it("rpm: the state says what is left and when the oldest leaves", () => {
		const limiter = new MemoryLimiter({ leaseMs: 1_000 });
		expect(limiter.take("svc", policy({ rpm: 3 }), T0).claim).toMatchObject({ state: { rpm: { remaining: 2, resetMs: 60_000 } } });
		expect(limiter.take("svc", policy({ rpm: 3 }), T0 + 15_000).claim).toMatchObject({ state: { rpm: { remaining: 1, resetMs: 45_000 } } });
	});

	it("rpd: per UTC day, refused until midnight, then a new day", () => {
		const limiter = new MemoryLimiter({ leaseMs: 1_000 });
		const rpd2 = policy({ rpd: 2 });
		const midnight = Date.UTC(2026, 11, 3);
		expect(outcomes(limiter, "svc", rpd2, [T0, T0 + 1])).toEqual(["claimed", "claimed"]);
		expect(limiter.take("svc", rpd2, midnight - 1_000).claim).toMatchObject({ outcome: "limited", limit: "rpd", retryAfterMs: 1_000 });
		expect(limiter.take("svc", rpd2, midnight).claim).toMatchObject({ outcome: "claimed", state: { rpd: { remaining: 1, resetMs: 86_400_000 } } });
	});

	it("concurrent: a slot per request until released, or until its lease ends", () => {
		const limiter = new MemoryLimiter({ leaseMs: 10_000 });
		const two = policy({ concurrent: 2 });
		const first = limiter.take("svc", two, T0).claim;
		const second = limiter.take("svc", two, T0).claim;
		expect(second).toMatchObject({ outcome: "claimed", state: { concurrent: { remaining: 0 } } });
		expect(limiter.take("svc", two, T0).claim).toMatchObject({ outcome: "limited", limit: "concurrent", retryAfterMs: 1_000 });
		if (first.outcome !== "claimed" || first.slot === null) throw new Error("no slot");
		expect(first.slot).toMatchObject({ clientId: "svc", store: "memory" });
		limiter.release("svc", first.slot.id);
		expect(limiter.take("svc", two, T0 + 1).claim.outcome).toBe("claimed");
		expect(limiter.take("svc", two, T0 + 9_999).claim.outcome).toBe("limited");
		// Nobody released the other two: their leases end at T0 + 10 s and T0 + 10.001 s.
		expect(outcomes(limiter, "svc", two, [T0 + 10_000, T0 + 10_000, T0 + 10_001])).toEqual(["claimed", "concurrent", "claimed"]);
	});

	it("each client has its own quota; a policy without concurrent holds no slot", () => {
		const limiter = new MemoryLimiter({ leaseMs: 1_000 });
		expect(outcomes(limiter, "a", policy({ rpm: 1 }), [T0, T0])).toEqual(["claimed", "rpm"]);
		expect(limiter.take("b", policy({ rpm: 1 }), T0).claim).toMatchObject({ outcome: "claimed", slot: null });
	});

	it("reports the day before the minute, and the minute before the slots, when several are reached", () => {
		const limiter = new MemoryLimiter({ leaseMs: 60_000 });
		const all = policy({ rpm: 1, rpd: 1, concurrent: 1 });
		expect(outcomes(limiter, "svc", all, [T0, T0])).toEqual(["claimed", "rpd"]);
		const minute = policy({ rpm: 1, concurrent: 1 });
		expect(outcomes(limiter, "other", minute, [T0, T0])).toEqual(["claimed", "rpm"]);
	});

	it("a refund undoes a take: its minute entry, its day count and its slot", () => {
		const limiter = new MemoryLimiter({ leaseMs: 60_000 });
		const all = policy({ rpm: 1, rpd: 1, concurrent: 1 });
		const { take } = limiter.take("svc", all, T0);
		limiter.refund(take!);
		expect(limiter.take("svc", all, T0 + 1).claim.outcome).toBe("claimed");
	});

	it("is bounded in clients: full, it drops the clients whose counters hold nothing live, and refuses rather than forget a live one", () => {
		const limiter = new MemoryLimiter({ leaseMs: 1_000, maxClients: 2 });
		limiter.take("a", policy({ rpm: 1 }), T0);
		limiter.take("b", policy({ rpm: 1 }), T0 + 10);
		expect(() => limiter.take("c", policy({ rpm: 1 }), T0 + 59_999)).toThrow(ReplayStoreError);
		expect(limiter.size).toBe(2);
		// "a" and "b" are refused still: nothing of theirs was forgotten.
		expect(limiter.take("a", policy({ rpm: 1 }), T0 + 59_999).claim.outcome).toBe("limited");
		// At T0 + 60 s "a"'s minute ended: it is dropped, "c" takes its place; "b" is still live.
		expect(limiter.take("c", policy({ rpm: 1 }), T0 + 60_000).claim.outcome).toBe("claimed");
		expect(limiter.take("b", policy({ rpm: 1 }), T0 + 60_000).claim.outcome).toBe("limited");
		expect(limiter.size).toBe(2);
	});

	it("full, it keeps a client idle for a minute whose day's count is live: carol's rpd does not start again", () => {
		const limiter = new MemoryLimiter({ leaseMs: 1_000, maxClients: 3 });
		const rpd5 = policy({ rpd: 5 });
		expect(outcomes(limiter, "carol", rpd5, [T0, T0, T0, T0, T0, T0])).toEqual(["claimed", "claimed", "claimed", "claimed", "claimed", "rpd"]);
		limiter.take("x1", policy({ rpm: 1 }), T0);
		limiter.take("x2", policy({ rpm: 1 }), T0);
		// An hour later: x1 and x2 are idle (their minutes ended), carol is not (her day has not).
		const later = T0 + 3_600_000;
		for (let i = 0; i < 20; i++) limiter.take(`other-${i}`, policy({ rpm: 1 }), later + i * 61_000);
		expect(limiter.take("carol", rpd5, later + 20 * 61_000).claim).toMatchObject({ outcome: "limited", limit: "rpd" });
		// A new day: carol's count ends with it, and her place can be taken.
		const nextDay = Date.UTC(2026, 11, 3, 0, 1, 0);
		expect(outcomes(limiter, "y", policy({ rpm: 3 }), [nextDay, nextDay])).toEqual(["claimed", "claimed"]);
		expect(limiter.take("z1", policy({ rpm: 1 }), nextDay).claim.outcome).toBe("claimed");
		expect(limiter.take("z2", policy({ rpm: 1 }), nextDay).claim.outcome).toBe("claimed");
		expect(limiter.size).toBe(3);
		expect(() => limiter.take("z3", policy({ rpm: 1 }), nextDay)).toThrow(ReplayStoreError);
	});

	it("full of clients whose slots are in flight, it refuses; a release or a lease's end makes room", () => {
		const limiter = new MemoryLimiter({ leaseMs: 10_000, maxClients: 2 });
		const one = policy({ concurrent: 1 });
		const a = limiter.take("a", one, T0).claim;
		limiter.take("b", one, T0);
		expect(() => limiter.take("c", one, T0 + 1)).toThrow(ReplayStoreError);
		if (a.outcome !== "claimed" || a.slot === null) throw new Error("no slot");
		limiter.release("a", a.slot.id);
		expect(limiter.take("c", one, T0 + 2).claim.outcome).toBe("claimed");
		expect(() => limiter.take("d", one, T0 + 9_999)).toThrow(ReplayStoreError);
		// "b"'s slot was never released: its lease ends at T0 + 10 s.
		expect(limiter.take("d", one, T0 + 10_000).claim.outcome).toBe("claimed");
	});

	it("refuses bad options when built", () => {
		expect(() => new MemoryLimiter({ leaseMs: 0 })).toThrow("leaseMs must be positive");
		expect(() => new MemoryLimiter({ leaseMs: 1, maxClients: 0 })).toThrow("maxClients must be a positive integer");
	});

	it("a budget in memory: each hold charged whole, the hold cut to what is left, then refused until the window ends; a client with tokens spent this month stays live", () => {
		const limiter = new MemoryLimiter({ leaseMs: 1_000, maxClients: 2 });
		const budgeted = policy({ budget: { daily: null, monthly: 250, hold: 100 } });
		const holds = [0, 1, 2].map(() => limiter.take("svc", budgeted, T0, 100)).map(({ take }) => take?.hold);
		expect(holds).toEqual([100, 100, 50]);
		const monthEnds = Date.UTC(2027, 0, 1) - T0;
		expect(limiter.take("svc", budgeted, T0, 100).claim).toMatchObject({ outcome: "limited", limit: "monthly_tokens", retryAfterMs: monthEnds, state: { monthlyTokens: { remaining: 0 } } });
		// Idle for days, still live: forgetting it would give it its month again.
		limiter.take("other", policy({ rpm: 1 }), T0);
		const later = T0 + 5 * 86_400_000;
		expect(() => limiter.take("third", policy({ rpm: 1 }), later)).not.toThrow();
		expect(() => limiter.take("fourth", policy({ rpm: 1 }), later)).toThrow(ReplayStoreError);
		expect(limiter.take("svc", budgeted, later, 100).claim.outcome).toBe("limited");
		// A refund gives the hold back.
		const daily = policy({ budget: { daily: 100, monthly: null, hold: 100 } });
		const fresh = new MemoryLimiter({ leaseMs: 1_000 });
		const { take } = fresh.take("svc", daily, T0, 100);
		fresh.refund(take!);
		expect(fresh.take("svc", daily, T0, 100).take?.hold).toBe(100);
	});
	it("gives back an unspent hold to the windows it was held in: the month still, not a day that has ended", () => {
		const limiter = new MemoryLimiter({ leaseMs: 1_000 });
		const budgeted = policy({ budget: { daily: 100, monthly: 150, hold: 100 } });
		const { take } = limiter.take("svc", budgeted, T0, 100);
		const nextDay = T0 + 86_400_000;
		// The next day in the same month: a new day, where a hold of 30 leaves 70; the month holds 130 of 150.
		expect(limiter.take("svc", budgeted, nextDay, 30).claim).toMatchObject({ state: { dailyTokens: { remaining: 70 }, monthlyTokens: { remaining: 20 } } });
		limiter.giveBack("svc", { day: take!.day, month: take!.month }, 80);
		expect(limiter.take("svc", budgeted, nextDay, 0).claim).toMatchObject({ state: { dailyTokens: { remaining: 70 }, monthlyTokens: { remaining: 100 } } });
	});
});
