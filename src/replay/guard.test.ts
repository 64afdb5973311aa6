import { describe, expect, it } from "vitest";
import type { Logger } from "../log.ts";
import { CircuitBreaker } from "./breaker.ts";
import type { ReplayEvents } from "../events.ts";
import { ReplayGuard } from "./guard.ts";
import { MemoryReplayStore } from "./memory.ts";
import { ReplayStoreError, type ClaimOutcome, type ReplayStore } from "./store.ts";
import { UpstashReplayStore, type ReplayRedis } from "./upstash.ts";

const silent: Logger = { info() {}, warn() {}, error() {} };

function recordingEvents() {
	const calls: string[] = [];
	const fallbacks: string[] = [];
	let opened = 0;
	const events: ReplayEvents = {
		storeCall: (store, outcome) => calls.push(`${store}:${outcome}`),
		fallback: (reason) => fallbacks.push(reason),
		breakerOpened: () => opened++,
		replayAttempt: () => calls.push("replay_attempt"),
	};
	return { events, calls, fallbacks, opened: () => opened };
}

class ScriptedStore implements ReplayStore {
	readonly name = "upstash";
	calls = 0;
	next: () => Promise<ClaimOutcome>;
	constructor(next: () => Promise<ClaimOutcome>) {
		this.next = next;
	}
	claim(): Promise<ClaimOutcome> {
		this.calls++;
		return this.next();
	}
}

function guard(primary: ReplayStore | null, failMode: "memory" | "closed" = "memory", clock = { now: 0 }) {
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
		log: silent,
		now: () => clock.now,
	});
	return { replay, ...recorded };
}

describe("ReplayGuard", () => {
	it("uses the memory store when Upstash is not configured", async () => {
		const { replay, calls } = guard(null);
		expect(await replay.claim("sig", "c", "1")).toEqual({ status: "claimed", store: "memory", fallback: null });
		expect(await replay.claim("sig", "c", "1")).toEqual({ status: "replay", store: "memory" });
		expect(calls).toEqual(["memory:claimed", "memory:duplicate", "replay_attempt"]);
	});

	it("falls back to memory when Upstash fails, and still catches a replay within the isolate", async () => {
		const store = new ScriptedStore(() => Promise.reject(new ReplayStoreError("error", "down")));
		const { replay, fallbacks } = guard(store);
		expect(await replay.claim("sig", "c", "1")).toEqual({ status: "claimed", store: "memory", fallback: "error" });
		expect(await replay.claim("sig", "c", "1")).toEqual({ status: "replay", store: "memory" });
		expect(fallbacks).toEqual(["error", "error"]);
		expect(replay.degraded).toBe(true);
	});

	it("fails closed with REPLAY_FAIL_MODE=closed: never a claim, never a replay", async () => {
		const store = new ScriptedStore(() => Promise.reject(new ReplayStoreError("timeout", "slow")));
		const { replay, fallbacks } = guard(store, "closed");
		expect(await replay.claim("sig", "c", "1")).toEqual({ status: "unavailable", reason: "timeout" });
		expect(await replay.claim("sig", "c", "1")).toEqual({ status: "unavailable", reason: "timeout" });
		expect(fallbacks).toEqual([]);
	});

	it("stops calling Upstash after repeated failures (cool-down), probes once after it, and recovers", async () => {
		const clock = { now: 0 };
		let up = false;
		const store = new ScriptedStore(() => (up ? Promise.resolve("claimed") : Promise.reject(new ReplayStoreError("timeout", "slow"))));
		const { replay, fallbacks, opened } = guard(store, "memory", clock);
		for (let i = 0; i < 20; i++) await replay.claim(`sig-${i}`, "c", "1");
		expect(store.calls).toBe(3);
		expect(opened()).toBe(1);
		expect(fallbacks.filter((reason) => reason === "breaker_open")).toHaveLength(17);
		expect(replay.breakerState).toBe("open");

		up = true;
		clock.now = 5000;
		expect(await replay.claim("sig-after", "c", "1")).toEqual({ status: "claimed", store: "upstash", fallback: null });
		expect(store.calls).toBe(4);
		expect(replay.breakerState).toBe("closed");
		clock.now = 20_000;
		expect(replay.degraded).toBe(false);
	});

	it("computes an expiry that outlives the skew window and is never under the TTL", () => {
		const { replay } = guard(null);
		expect(replay.ttlMs(1_000_000 + 299_000, 1_000_000)).toBe(599_000);
		expect(replay.ttlMs(1_000_000 - 299_000, 1_000_000)).toBe(300_000);
	});
});

describe("UpstashReplayStore", () => {
	const store = (result: () => Promise<unknown>) => new UpstashReplayStore({ set: result } satisfies ReplayRedis);

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
		const refused = store(async () => {
			throw new TypeError("fetch failed");
		});
		await expect(refused.claim("k", "v", 1)).rejects.toSatisfy((e) => e instanceof ReplayStoreError && e.reason === "error");
	});
});
