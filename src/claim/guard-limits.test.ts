import { describe, expect, it } from "vitest";
import type { LimitPolicy } from "../limits/policy.ts";
import { EPOCH, recordingEvents, ScriptedStore, silent, ts } from "../../test/fixtures/replay-guard.ts";
import { CircuitBreaker } from "./breaker.ts";
import { ReplayGuard } from "./guard.ts";
import { MemoryLimitedStore } from "./memory-limited.ts";
import { MemoryLimiter } from "./memory-limiter.ts";
import { MemoryReplayStore } from "./memory.ts";
import { ReplayStoreError, type HeldSlot, type LimitedClaim, type LimitedClaimRequest, type LimitedClaimStore, type SettleResult, type SpentClaim } from "./store.ts";

const RPM2: LimitPolicy = { rpm: 2, rpd: null, concurrent: null, label: "" };
const NONE = { rpm: null, rpd: null, concurrent: null };

/** A scripted limits script: `next` answers each run; every request is recorded. */
class ScriptedLimits implements LimitedClaimStore {
	readonly name = "upstash" as const;
	readonly requests: LimitedClaimRequest[] = [];
	/** Whether each run was a confirmation. */
	readonly confirming: boolean[] = [];
	readonly released: HeldSlot[] = [];
	/** Each settle: the reservation and the tokens reported. */
	readonly settled: [string, number][] = [];
	next: (request: LimitedClaimRequest) => Promise<LimitedClaim> = async () => ({ outcome: "claimed", state: NONE, slot: null });

	claim(request: LimitedClaimRequest, confirming = false): Promise<LimitedClaim> {
		this.requests.push(request);
		this.confirming.push(confirming);
		return this.next(request);
	}

	async release(slot: HeldSlot): Promise<void> {
		this.released.push(slot);
	}

	/** The memory claims written back with the quota they spent. */
	readonly writtenBack: SpentClaim[] = [];
	async writeBack(claim: SpentClaim): Promise<string | null> {
		this.writtenBack.push(claim);
		return null;
	}

	async settle(reservation: string, tokens: number): Promise<SettleResult> {
		this.settled.push([reservation, tokens]);
		return { status: "unknown" };
	}
}

function setup(failMode: "memory" | "closed" = "memory") {
	const clock = { now: EPOCH };
	const plain = new ScriptedStore(async () => "claimed");
	const limited = new ScriptedLimits();
	const memory = new MemoryReplayStore(100, () => clock.now);
	const recorded = recordingEvents();
	const replay = new ReplayGuard({
		primary: plain,
		memoryOnlyIsNormal: false,
		memory,
		breaker: new CircuitBreaker({ failureThreshold: 100, cooldownMs: 5000, now: () => clock.now }),
		failMode,
		prefix: "p:",
		ttlSeconds: 300,
		maxSkewMs: 300_000,
		events: recorded.events,
		log: silent,
		now: () => clock.now,
		isolateId: "iso-1",
		limits: { primary: limited, memory: new MemoryLimitedStore(memory, new MemoryLimiter({ leaseMs: 60_000 }), () => clock.now) },
	});
	return { replay, plain, limited, clock, ...recorded };
}

describe("ReplayGuard with a limit policy", () => {
	it("without a policy a claim is the plain SET NX, limits configured or not", async () => {
		const { replay, plain, limited } = setup();
		expect(await replay.claim("a", "svc", ts)).toEqual({ status: "claimed", store: "upstash", fallback: null });
		expect(plain.calls).toBe(1);
		expect(limited.requests).toHaveLength(0);
	});

	it("with one, the script instead: the replay key, this claim's value and expiry, the client and its policy", async () => {
		const { replay, plain, limited, calls } = setup();
		limited.next = async () => ({ outcome: "claimed", state: { ...NONE, rpm: { remaining: 1, resetMs: 60_000 } }, slot: null });
		expect(await replay.claim("a", "svc", ts, RPM2)).toEqual({
			status: "claimed",
			store: "upstash",
			fallback: null,
			limits: { state: { ...NONE, rpm: { remaining: 1, resetMs: 60_000 } }, slot: null },
		});
		expect(plain.calls).toBe(0);
		expect(limited.requests).toEqual([{ key: "p:a", value: `svc:${ts}:iso-1:1`, ttlMs: 300_001, clientId: "svc", policy: RPM2, at: EPOCH }]);
		expect(calls).toEqual(["upstash:claimed"]);
	});

	it("a refusal claims the key in Upstash: the same request is a replay afterwards, known to this isolate without a call", async () => {
		const { replay, limited, calls } = setup();
		limited.next = async () => ({ outcome: "limited", limit: "rpm", retryAfterMs: 500, state: NONE });
		const refusal = { outcome: "limited", limit: "rpm", retryAfterMs: 500, state: NONE };
		expect(await replay.claim("a", "svc", ts, RPM2)).toEqual({ status: "limited", store: "upstash", refusal });
		limited.next = async () => ({ outcome: "claimed", state: NONE, slot: null });
		expect(await replay.claim("a", "svc", ts, RPM2)).toEqual({ status: "replay", store: "upstash", cached: true });
		expect(limited.requests).toHaveLength(1);
		expect(calls).toEqual(["upstash:limited", "replay_attempt"]);
	});

	it("a refusal in memory during an outage claims the key there, and it is written back with the claims", async () => {
		const { replay, limited, plain } = setup();
		limited.next = () => Promise.reject(new ReplayStoreError("error", "down"));
		plain.readFails = new ReplayStoreError("error", "down");
		for (const key of ["a", "b"]) expect((await replay.claim(key, "svc", ts, RPM2)).status).toBe("claimed");
		expect(await replay.claim("c", "svc", ts, RPM2)).toMatchObject({ status: "limited", store: "memory", refusal: { limit: "rpm" } });
		expect(await replay.claim("c", "svc", ts, RPM2)).toEqual({ status: "replay", store: "memory", cached: true });
		expect(replay.pendingReconciliation).toBe(3);
		// Upstash back: the two claims are written back with the quota they spent, the refusal (which spent none) as a plain claim.
		limited.next = async () => ({ outcome: "claimed", state: NONE, slot: null });
		plain.readFails = null;
		expect((await replay.claim("d", "svc", ts, RPM2)).store).toBe("upstash");
		await replay.reconcile();
		expect(limited.writtenBack.map((claim) => [claim.key, claim.spend.rpm])).toEqual([
			["p:a", true],
			["p:b", true],
		]);
		expect(plain.sets.filter((set) => set.read).map((set) => set.key)).toEqual(["p:c"]);
		expect(replay.pendingReconciliation).toBe(0);
	});

	it("a run that timed out is run again as a confirmation (its budget, its reading of its own value), and that answer decides", async () => {
		const { replay, limited, fallbacks } = setup();
		const concurrent: LimitPolicy = { ...RPM2, concurrent: 1 };
		const slot = { clientId: "svc", id: `svc:${ts}:iso-1:1`, store: "upstash" as const };
		let runs = 0;
		limited.next = async () => {
			if (++runs === 1) throw new ReplayStoreError("timeout", "slow");
			return { outcome: "claimed", state: NONE, slot };
		};
		expect(await replay.claim("a", "svc", ts, concurrent)).toEqual({ status: "claimed", store: "upstash", fallback: null, limits: { state: NONE, slot } });
		expect(limited.confirming).toEqual([false, true]);
		runs = 0;
		limited.next = async () => {
			if (++runs === 1) throw new ReplayStoreError("timeout", "slow");
			return { outcome: "limited", limit: "rpm", retryAfterMs: 60_000, state: NONE };
		};
		expect(await replay.claim("b", "svc", ts, concurrent)).toMatchObject({ status: "limited", store: "upstash", refusal: { limit: "rpm" } });
		runs = 0;
		limited.next = async () => {
			if (++runs === 1) throw new ReplayStoreError("timeout", "slow");
			return { outcome: "duplicate", found: "someone-else" };
		};
		expect((await replay.claim("c", "svc", ts, concurrent)).status).toBe("replay");
		expect(limited.confirming).toEqual([false, true, false, true, false, true]);
		expect(fallbacks).toEqual([]);
	});

	it("a run whose answer was lost (an error, or a timeout not confirmed) gives back its slot and its hold once Upstash answers again", async () => {
		const { replay, limited, clock } = setup();
		const policy: LimitPolicy = { ...RPM2, concurrent: 1, budget: { daily: 100, monthly: null, hold: 10 } };
		// The run may have landed in Redis (a connection reset after it ran): the request is refused all the same.
		limited.next = () => Promise.reject(new ReplayStoreError("error", "answer lost"));
		expect(await replay.claim("a", "svc", ts, policy, 10)).toMatchObject({ status: "unavailable", budget: true });
		limited.next = () => Promise.reject(new ReplayStoreError("timeout", "slow"));
		expect(await replay.claim("b", "svc", ts, policy, 10)).toMatchObject({ status: "unavailable", budget: true });
		expect(limited.confirming).toEqual([false, false, true]);
		// The confirming run names the same reservation, sent at the same instant, as the first.
		expect(limited.requests[2]).toBe(limited.requests[1]);
		expect(replay.pendingReconciliation).toBe(4);
		// Nothing is sent while Upstash has not answered.
		await replay.reconcile();
		expect(limited.released).toEqual([]);

		clock.now += 1_000;
		limited.next = async () => ({ outcome: "claimed", state: NONE, slot: null });
		expect((await replay.claim("c", "svc", ts, RPM2)).status).toBe("claimed");
		await replay.reconcile();
		expect(limited.released).toEqual([1, 2].map((n) => ({ clientId: "svc", id: `svc:${ts}:iso-1:${n}`, store: "upstash" })));
		const day = new Date(EPOCH).toISOString().slice(0, 10);
		expect(limited.settled).toEqual([0, 1].map((i) => [`svc:${day}:-:${limited.requests[i]!.budget!.nonce}`, 0]));
		expect(replay.pendingReconciliation).toBe(0);
	});

	it("a run that answered, or a lost run of a client without a slot or a budget, leaves nothing to give back", async () => {
		const { replay, limited } = setup();
		const policy: LimitPolicy = { ...RPM2, concurrent: 1, budget: { daily: 100, monthly: null, hold: 10 } };
		limited.next = async () => ({ outcome: "limited", limit: "rpm", retryAfterMs: 500, state: NONE });
		await replay.claim("a", "svc", ts, policy, 10);
		limited.next = () => Promise.reject(new ReplayStoreError("error", "answer lost"));
		// RPM2's claim falls back to memory: its write-back is the one thing pending.
		await replay.claim("b", "svc", ts, RPM2);
		expect(replay.pendingReconciliation).toBe(1);
	});

	it("Upstash failing: the limits are this isolate's (memory mode), or 503 (closed)", async () => {
		const { replay, limited, fallbacks } = setup();
		limited.next = () => Promise.reject(new ReplayStoreError("error", "down"));
		expect((await replay.claim("a", "svc", ts, RPM2)).status).toBe("claimed");
		expect(await replay.claim("b", "svc", ts, RPM2)).toMatchObject({ status: "claimed", store: "memory", fallback: "error" });
		expect(await replay.claim("c", "svc", ts, RPM2)).toMatchObject({ status: "limited", store: "memory", refusal: { limit: "rpm" } });
		expect(fallbacks).toEqual(["error", "error", "error"]);

		const closed = setup("closed");
		closed.limited.next = () => Promise.reject(new ReplayStoreError("timeout", "down"));
		expect(await closed.replay.claim("a", "svc", ts, RPM2)).toEqual({ status: "unavailable", store: "upstash", reason: "timeout" });
	});
});
