import { describe, expect, it } from "vitest";
import type { Logger } from "../log.ts";
import { CircuitBreaker } from "./breaker.ts";
import type { ReplayEvents } from "../events.ts";
import { ReplayGuard } from "./guard.ts";
import { MemoryReplayStore } from "./memory.ts";
import { ReplayStoreError, type ClaimOutcome, type ReplayStore, type WriteBack } from "./store.ts";
import { UpstashReplayStore, type ReplayRedis } from "./upstash.ts";

const silent: Logger = { info() {}, warn() {}, error() {} };
/** A realistic clock: epoch milliseconds (a clock at 0 hides bugs that compare with a 0 default). */
const EPOCH = 1_764_000_000_000;

function recordingEvents() {
	const calls: string[] = [];
	const fallbacks: string[] = [];
	let opened = 0;
	let outageReplays = 0;
	const events: ReplayEvents = {
		storeCall: (store, outcome) => calls.push(`${store}:${outcome}`),
		fallback: (reason) => fallbacks.push(reason),
		breakerOpened: () => opened++,
		replayAttempt: () => calls.push("replay_attempt"),
		outageReplay: () => outageReplays++,
	};
	return { events, calls, fallbacks, opened: () => opened, outageReplays: () => outageReplays };
}

function recordingLog() {
	const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
	const log: Logger = {
		info: (message, fields = {}) => lines.push({ level: "info", message, fields }),
		warn: (message, fields = {}) => lines.push({ level: "warn", message, fields }),
		error: (message, fields = {}) => lines.push({ level: "error", message, fields }),
	};
	return { log, lines };
}

class ScriptedStore implements ReplayStore {
	readonly name = "upstash";
	calls = 0;
	/** Every SET that reached the store: claims and write-backs. */
	sets: { key: string; value: string; ttlMs: number; writeBack: boolean }[] = [];
	next: () => Promise<ClaimOutcome>;
	/** The value already under a key, as a write-back finds it; null means the key was free. */
	existing = new Map<string, string>();
	writeBackFails = false;
	constructor(next: () => Promise<ClaimOutcome>) {
		this.next = next;
	}
	claim(key: string, value: string, ttlMs: number): Promise<ClaimOutcome> {
		this.calls++;
		this.sets.push({ key, value, ttlMs, writeBack: false });
		return this.next();
	}
	async writeBack(claim: WriteBack): Promise<string | null> {
		this.calls++;
		this.sets.push({ ...claim, writeBack: true });
		if (this.writeBackFails) throw new ReplayStoreError("error", "down");
		const found = this.existing.get(claim.key) ?? null;
		if (found === null) this.existing.set(claim.key, claim.value);
		return found;
	}
}

function guard(primary: ReplayStore | null, failMode: "memory" | "closed" = "memory", clock = { now: EPOCH }, log: Logger = silent) {
	const recorded = recordingEvents();
	const replay = new ReplayGuard({
		primary,
		memoryOnlyIsNormal: false,
		memory: new MemoryReplayStore(100, () => clock.now),
		breaker: new CircuitBreaker({ failureThreshold: 3, cooldownMs: 5000, now: () => clock.now }),
		failMode,
		prefix: "p:",
		ttlSeconds: 300,
		maxSkewMs: 300_000,
		events: recorded.events,
		log,
		now: () => clock.now,
		isolateId: "iso-1",
	});
	return { replay, ...recorded };
}

const ts = String(EPOCH);
const fail = (reason: "error" | "timeout" = "error") => () => Promise.reject(new ReplayStoreError(reason, "down"));

describe("ReplayGuard", () => {
	it("uses the memory store when Upstash is not configured", async () => {
		const { replay, calls } = guard(null);
		expect(await replay.claim("sig", "c", ts)).toEqual({ status: "claimed", store: "memory", fallback: null });
		expect(await replay.claim("sig", "c", ts)).toEqual({ status: "replay", store: "memory" });
		expect(calls).toEqual(["memory:claimed", "memory:duplicate", "replay_attempt"]);
		// Nothing to write back: there is no Upstash.
		expect(replay.pendingReconciliation).toBe(0);
	});

	it("falls back to memory when Upstash fails, and still catches a replay within the isolate", async () => {
		const store = new ScriptedStore(fail());
		const { replay, fallbacks } = guard(store);
		expect(await replay.claim("sig", "c", ts)).toEqual({ status: "claimed", store: "memory", fallback: "error" });
		// Found among this isolate's own decisions: no Upstash call, no fallback.
		expect(await replay.claim("sig", "c", ts)).toEqual({ status: "replay", store: "memory", cached: true });
		expect(store.calls).toBe(1);
		expect(fallbacks).toEqual(["error"]);
		expect(replay.degraded).toBe(true);
	});

	it("fails closed with REPLAY_FAIL_MODE=closed: never a claim, never a replay", async () => {
		const store = new ScriptedStore(fail("timeout"));
		const { replay, fallbacks } = guard(store, "closed");
		expect(await replay.claim("sig", "c", ts)).toEqual({ status: "unavailable", reason: "timeout" });
		expect(await replay.claim("sig", "c", ts)).toEqual({ status: "unavailable", reason: "timeout" });
		expect(fallbacks).toEqual([]);
		expect(replay.pendingReconciliation).toBe(0);
	});

	it("stops calling Upstash after repeated failures (cool-down), probes once after it, and recovers", async () => {
		const clock = { now: EPOCH };
		let up = false;
		const store = new ScriptedStore(() => (up ? Promise.resolve("claimed") : Promise.reject(new ReplayStoreError("timeout", "slow"))));
		const { replay, fallbacks, opened } = guard(store, "memory", clock);
		for (let i = 0; i < 20; i++) await replay.claim(`sig-${i}`, "c", ts);
		expect(store.calls).toBe(3);
		expect(opened()).toBe(1);
		expect(fallbacks.filter((reason) => reason === "breaker_open")).toHaveLength(17);
		expect(replay.breakerState).toBe("open");

		up = true;
		clock.now = EPOCH + 5000;
		expect(await replay.claim("sig-after", "c", ts)).toEqual({ status: "claimed", store: "upstash", fallback: null });
		expect(store.calls).toBe(4);
		expect(replay.breakerState).toBe("closed");
		clock.now = EPOCH + 20_000;
		expect(replay.degraded).toBe(false);
	});

	it("names each claim in its value: client id, timestamp, isolate id and a counter", async () => {
		const store = new ScriptedStore(() => Promise.resolve("claimed"));
		const { replay } = guard(store);
		await replay.claim("a", "svc", ts);
		await replay.claim("b", "svc", ts);
		expect(store.sets.map((set) => set.value)).toEqual([`svc:${ts}:iso-1:1`, `svc:${ts}:iso-1:2`]);
	});

	it("a request accepted in Upstash before an outage is a replay during it, answered without a call", async () => {
		let up = true;
		const store = new ScriptedStore(() => (up ? Promise.resolve("claimed") : Promise.reject(new ReplayStoreError("error", "down"))));
		const { replay } = guard(store);
		expect(await replay.claim("A", "c", ts)).toEqual({ status: "claimed", store: "upstash", fallback: null });
		up = false;
		expect(await replay.claim("A", "c", ts)).toEqual({ status: "replay", store: "upstash", cached: true });
		expect(store.calls).toBe(1);
		// A key Upstash said was taken is remembered too.
		up = true;
		store.next = () => Promise.resolve("duplicate");
		expect(await replay.claim("X", "c", ts)).toEqual({ status: "replay", store: "upstash" });
		expect(await replay.claim("X", "c", ts)).toEqual({ status: "replay", store: "upstash", cached: true });
		expect(store.calls).toBe(2);
	});

	it("a claim made in memory during an outage is written to Upstash after it, with SET NX and the same expiry", async () => {
		const clock = { now: EPOCH };
		let up = false;
		const store = new ScriptedStore(() => (up ? Promise.resolve("claimed") : Promise.reject(new ReplayStoreError("error", "down"))));
		const { replay, outageReplays } = guard(store, "memory", clock);
		expect(await replay.claim("B", "c", String(EPOCH + 100_000))).toMatchObject({ status: "claimed", store: "memory" });
		expect(replay.pendingReconciliation).toBe(1);
		// Nothing is written while Upstash has not answered since it failed.
		await replay.reconcile();
		expect(store.sets.filter((set) => set.writeBack)).toEqual([]);

		up = true;
		clock.now = EPOCH + 2_000;
		await replay.claim("probe", "c", String(clock.now));
		await replay.reconcile();
		// Expiry: the claim's own (timestamp + skew window from its claim time), not a fresh TTL.
		expect(store.sets.filter((set) => set.writeBack)).toEqual([
			{ key: "p:B", value: `c:${EPOCH + 100_000}:iso-1:1`, ttlMs: 400_000 - 2_000, writeBack: true },
		]);
		expect(replay.pendingReconciliation).toBe(0);
		expect(outageReplays()).toBe(0);
	});

	it("a write-back that finds another's claim counts and logs a replay that got through; its own late SET does not", async () => {
		const clock = { now: EPOCH };
		const { log, lines } = recordingLog();
		let up = false;
		const store = new ScriptedStore(() => (up ? Promise.resolve("claimed") : Promise.reject(new ReplayStoreError("timeout", "slow"))));
		const { replay, outageReplays } = guard(store, "memory", clock, log);
		await replay.claim("mine", "c", ts);
		await replay.claim("theirs", "c", ts);
		// The first claim's own SET landed after its timeout; the second key was claimed by another isolate.
		store.existing.set("p:mine", `c:${ts}:iso-1:1`);
		store.existing.set("p:theirs", `c:${ts}:iso-2:7`);
		up = true;
		await replay.claim("probe", "c", ts);
		await replay.reconcile();
		expect(outageReplays()).toBe(1);
		expect(lines.filter((line) => line.message.startsWith("replay accepted during the Upstash outage"))).toEqual([
			{ level: "warn", message: "replay accepted during the Upstash outage: the key was already claimed", fields: { client_id: "c", timestamp: ts, suppressed: 0 } },
		]);
		expect(replay.pendingReconciliation).toBe(0);
	});

	it("a failed write-back keeps its claims for a later run; a run writes a bounded number", async () => {
		const clock = { now: EPOCH };
		let up = false;
		const store = new ScriptedStore(() => (up ? Promise.resolve("claimed") : Promise.reject(new ReplayStoreError("error", "down"))));
		const { replay } = guard(store, "memory", clock);
		for (let i = 0; i < 40; i++) await replay.claim(`k${i}`, `c${i % 4}`, ts);
		up = true;
		clock.now += 5_000;
		expect(await replay.claim("probe", "c", ts)).toMatchObject({ status: "claimed", store: "upstash" });
		store.writeBackFails = true;
		await replay.reconcile();
		expect(replay.pendingReconciliation).toBe(40);
		store.writeBackFails = false;
		clock.now += 1_000;
		await replay.reconcile();
		expect(replay.pendingReconciliation).toBe(8);
		await replay.reconcile();
		expect(replay.pendingReconciliation).toBe(0);
		expect(new Set(store.sets.filter((set) => set.writeBack).map((set) => set.key)).size).toBe(40);
	});

	it("two copies in one isolate: one SET times out and claims in memory, its twin's SET answers OK: one claim", async () => {
		let answerTwin: (outcome: ClaimOutcome) => void = () => {};
		let n = 0;
		const store = new ScriptedStore(() => {
			n++;
			if (n === 1) return new Promise<ClaimOutcome>((resolve) => (answerTwin = resolve));
			return Promise.reject(new ReplayStoreError("timeout", "slow"));
		});
		const { replay } = guard(store);
		const twin = replay.claim("sig", "c", ts);
		const timedOut = await replay.claim("sig", "c", ts);
		expect(timedOut).toMatchObject({ status: "claimed", store: "memory" });
		answerTwin("claimed");
		expect(await twin).toEqual({ status: "replay", store: "upstash" });
		// Upstash holds the key now (the twin's SET): nothing to write back.
		expect(replay.pendingReconciliation).toBe(0);
	});

	it("two copies in one isolate: the twin's OK lands first, then the other's SET times out: one claim", async () => {
		let n = 0;
		let failSlow: (error: Error) => void = () => {};
		const store = new ScriptedStore(() => {
			n++;
			if (n === 1) return new Promise<ClaimOutcome>((_, reject) => (failSlow = reject));
			return Promise.resolve("claimed");
		});
		const { replay } = guard(store);
		const slow = replay.claim("sig", "c", ts);
		expect(await replay.claim("sig", "c", ts)).toEqual({ status: "claimed", store: "upstash", fallback: null });
		failSlow(new ReplayStoreError("timeout", "slow"));
		expect(await slow).toEqual({ status: "replay", store: "upstash", cached: true });
	});

	it("rate limits the log line of a memory store that refuses claims", async () => {
		const { log, lines } = recordingLog();
		const { replay } = guard(null, "memory", { now: EPOCH }, log);
		// The memory store holds 100 keys, one client at most 50.
		for (let i = 0; i < 60; i++) await replay.claim(`k${i}`, "flood", String(EPOCH + 3_000_000));
		expect(await replay.claim("other", "flood", ts)).toEqual({ status: "unavailable", reason: "full" });
		expect(await replay.claim("other", "someone-else", ts)).toMatchObject({ status: "claimed" });
		expect(lines.filter((line) => line.message === "memory replay store refused a claim")).toEqual([
			{ level: "error", message: "memory replay store refused a claim", fields: { reason: "full", suppressed: 0 } },
		]);
	});

	it("keeps a bounded decisions cache that evicts the oldest (Upstash holds the truth)", async () => {
		const store = new ScriptedStore(() => Promise.resolve("claimed"));
		const recorded = recordingEvents();
		const replay = new ReplayGuard({
			primary: store,
			memoryOnlyIsNormal: false,
			memory: new MemoryReplayStore(100, () => EPOCH),
			breaker: new CircuitBreaker({ failureThreshold: 3, cooldownMs: 5000, now: () => EPOCH }),
			failMode: "memory",
			prefix: "p:",
			ttlSeconds: 300,
			maxSkewMs: 300_000,
			events: recorded.events,
			log: silent,
			now: () => EPOCH,
			decisionsMaxKeys: 2,
		});
		await replay.claim("one", "c", ts);
		await replay.claim("two", "c", ts);
		await replay.claim("three", "c", ts);
		store.next = () => Promise.resolve("duplicate");
		expect(await replay.claim("three", "c", ts)).toEqual({ status: "replay", store: "upstash", cached: true });
		expect(await replay.claim("one", "c", ts)).toEqual({ status: "replay", store: "upstash" });
		expect(store.calls).toBe(4);
	});

	it("computes an expiry that outlives the skew window and is never under the TTL", () => {
		const { replay } = guard(null);
		expect(replay.ttlMs(EPOCH + 299_000, EPOCH)).toBe(599_000);
		expect(replay.ttlMs(EPOCH - 299_000, EPOCH)).toBe(300_000);
	});
});

describe("UpstashReplayStore", () => {
	const store = (result: () => Promise<unknown>) => new UpstashReplayStore({ set: result } satisfies ReplayRedis);

	it("writes back with one SET NX PX GET: null when written, else the value found", async () => {
		const calls: unknown[][] = [];
		const redis = { set: async (...args: unknown[]) => (calls.push(args), calls.length === 1 ? null : "c:1:iso:1") };
		const upstash = new UpstashReplayStore(redis satisfies ReplayRedis);
		expect(await upstash.writeBack({ key: "k", value: "v", ttlMs: 1234 })).toBeNull();
		expect(await upstash.writeBack({ key: "k", value: "v", ttlMs: 1234 })).toBe("c:1:iso:1");
		expect(calls[0]).toEqual(["k", "v", { nx: true, px: 1234, get: true }]);
		await expect(store(async () => 1).writeBack({ key: "k", value: "v", ttlMs: 1 })).rejects.toBeInstanceOf(ReplayStoreError);
	});

	it("maps exactly OK to claimed and null to duplicate", async () => {
		expect(await store(async () => "OK").claim("k", "v", 1)).toBe("claimed");
		expect(await store(async () => null).claim("k", "v", 1)).toBe("duplicate");
	});

	it.each([["ok"], ["QUEUED"], [1], [undefined], [{ result: "OK" }], ["T0s="]])("treats %j as a store failure, never a claim", async (result) => {
		await expect(store(async () => result).claim("k", "v", 1)).rejects.toSatisfy((e) => e instanceof ReplayStoreError && e.reason === "error");
	});

	it("tells a timeout (an aborted call) from other failures", async () => {
		const aborted = store(async () => {
			throw new DOMException("The operation was aborted due to timeout", "TimeoutError");
		});
		await expect(aborted.claim("k", "v", 1)).rejects.toSatisfy((e) => e instanceof ReplayStoreError && e.reason === "timeout");
		// The SDK can also surface the abort of its signal as an AbortError.
		const abortError = store(async () => {
			throw new DOMException("This operation was aborted", "AbortError");
		});
		await expect(abortError.claim("k", "v", 1)).rejects.toSatisfy((e) => e instanceof ReplayStoreError && e.reason === "timeout");
		await expect(abortError.writeBack({ key: "k", value: "v", ttlMs: 1 })).rejects.toSatisfy((e) => e instanceof ReplayStoreError && e.reason === "timeout");
		const refused = store(async () => {
			throw new TypeError("fetch failed");
		});
		await expect(refused.claim("k", "v", 1)).rejects.toSatisfy((e) => e instanceof ReplayStoreError && e.reason === "error");
	});
});
