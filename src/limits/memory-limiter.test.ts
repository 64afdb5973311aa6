import { describe, expect, it } from "vitest";
import { MemoryLimiter } from "./memory-limiter.ts";
import type { LimitPolicy } from "./policy.ts";

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

	it("is bounded in clients: idle ones go first, then the oldest", () => {
		const limiter = new MemoryLimiter({ leaseMs: 1_000, maxClients: 2 });
		limiter.take("a", policy({ rpm: 1 }), T0);
		limiter.take("b", policy({ rpm: 1 }), T0);
		limiter.take("c", policy({ rpm: 1 }), T0);
		expect(limiter.size).toBe(2);
		// "a", the oldest, was dropped: it starts afresh.
		expect(limiter.take("a", policy({ rpm: 1 }), T0).claim.outcome).toBe("claimed");
		expect(limiter.take("c", policy({ rpm: 1 }), T0).claim.outcome).toBe("limited");
	});

	it("refuses bad options when built", () => {
		expect(() => new MemoryLimiter({ leaseMs: 0 })).toThrow("leaseMs must be positive");
		expect(() => new MemoryLimiter({ leaseMs: 1, maxClients: 0 })).toThrow("maxClients must be a positive integer");
	});
});
