import { describe, expect, it } from "vitest";
import { EPOCH, guard, recordingLog, ScriptedStore, ts } from "../../test/fixtures/replay-guard.ts";
import { ReplayStoreError, type ClaimOutcome } from "./store.ts";

describe("ReplayGuard: the claim", () => {
	it("uses the memory store when Upstash is not configured", async () => {
		const { replay, calls } = guard(null);
		expect(await replay.claim("sig", "c", ts)).toEqual({ status: "claimed", store: "memory", fallback: null });
		expect(await replay.claim("sig", "c", ts)).toEqual({ status: "replay", store: "memory" });
		expect(calls).toEqual(["memory:claimed", "memory:duplicate", "replay_attempt"]);
		// Nothing to write back: there is no Upstash.
		expect(replay.pendingReconciliation).toBe(0);
	});

	it("falls back to memory when Upstash fails, and still catches a replay within the isolate without a call", async () => {
		const store = ScriptedStore.down();
		const { replay, fallbacks } = guard(store);
		expect(await replay.claim("sig", "c", ts)).toEqual({ status: "claimed", store: "memory", fallback: "error" });
		expect(await replay.claim("sig", "c", ts)).toEqual({ status: "replay", store: "memory", cached: true });
		expect(store.calls).toBe(1);
		expect(fallbacks).toEqual(["error"]);
		expect(replay.degraded).toBe(true);
	});

	it("is degraded for 10 s after one failure, the breaker still closed, and no longer at 10 s", async () => {
		const { replay, clock } = guard(ScriptedStore.down());
		clock.now = EPOCH;
		await replay.claim("sig", "c", ts);
		expect(replay.breakerState).toBe("closed");
		clock.now = EPOCH + 9_999;
		expect(replay.degraded).toBe(true);
		clock.now = EPOCH + 10_000;
		expect(replay.degraded).toBe(false);
	});

	it("is degraded while the breaker is not closed, however long since the last failure: half-open too", async () => {
		const { replay, clock } = guard(ScriptedStore.down());
		for (let i = 0; i < 3; i++) await replay.claim(`k${i}`, "c", ts);
		expect(replay.breakerState).toBe("open");
		clock.now = EPOCH + 60_000;
		expect(replay.breakerState).toBe("half_open");
		expect(replay.degraded).toBe(true);
	});

	it("logs Redis replay cache connected on the first success, and again only on the first success after a failure", async () => {
		const { log, lines } = recordingLog();
		const store = new ScriptedStore(() => Promise.resolve("claimed"));
		const { replay } = guard(store, { log });
		await replay.claim("a", "c", ts);
		await replay.claim("b", "c", ts);
		store.next = () => Promise.reject(new ReplayStoreError("error", "down"));
		await replay.claim("c", "c", ts);
		store.up();
		await replay.claim("d", "c", ts);
		await replay.claim("e", "c", ts);
		expect(lines.filter((line) => line.message === "Redis replay cache connected")).toHaveLength(2);
	});

	it("fails closed with REPLAY_FAIL_MODE=closed: never a claim, never a replay, and says Upstash could not tell", async () => {
		const { replay, fallbacks } = guard(ScriptedStore.down("timeout"), { failMode: "closed" });
		expect(await replay.claim("sig", "c", ts)).toEqual({ status: "unavailable", store: "upstash", reason: "timeout" });
		expect(await replay.claim("sig", "c", ts)).toEqual({ status: "unavailable", store: "upstash", reason: "timeout" });
		expect(fallbacks).toEqual([]);
		expect(replay.pendingReconciliation).toBe(0);
	});

	it("stops calling Upstash after repeated failures (cool-down), probes once after it, and recovers", async () => {
		const store = ScriptedStore.down("timeout");
		const { replay, clock, fallbacks, opened } = guard(store);
		for (let i = 0; i < 20; i++) await replay.claim(`sig-${i}`, "c", ts);
		// Three claims, each confirmed once (and failing again), then the breaker kept Upstash out.
		expect(store.sets.map((set) => set.read)).toEqual([false, true, false, true, false, true]);
		expect(opened()).toBe(1);
		expect(fallbacks.filter((reason) => reason === "breaker_open")).toHaveLength(17);
		expect(replay.breakerState).toBe("open");

		store.up();
		clock.now = EPOCH + 5000;
		expect(await replay.claim("sig-after", "c", ts)).toEqual({ status: "claimed", store: "upstash", fallback: null });
		expect(replay.breakerState).toBe("closed");
		clock.now = EPOCH + 20_000;
		expect(replay.degraded).toBe(false);
	});

	it("a burst of claims in flight when Upstash fails opens the breaker once: agent_replay_breaker_opened_total counts outages, not failures", async () => {
		let failAll: () => void = () => {};
		const failed = new Promise<void>((resolve) => (failAll = resolve));
		const store = new ScriptedStore(() => failed.then(() => Promise.reject(new ReplayStoreError("error", "down"))));
		store.readFails = new ReplayStoreError("error", "down");
		const { replay, clock, opened } = guard(store);
		const burst = Array.from({ length: 30 }, (_, i) => replay.claim(`burst-${i}`, "c", ts));
		failAll();
		expect((await Promise.all(burst)).every((decision) => decision.status === "claimed" && decision.store === "memory")).toBe(true);
		expect(store.calls).toBe(30);
		expect(opened()).toBe(1);
		// The cool-down runs from the opening, not from the last of the 30 failures: a failed probe after it opens nothing new.
		clock.now = EPOCH + 5_000;
		await replay.claim("probe", "c", ts);
		expect(store.calls).toBe(31);
		expect(opened()).toBe(1);
		expect(replay.breakerState).toBe("open");
	});

	it("names each claim in its value: client id, timestamp, isolate id and a counter", async () => {
		const store = new ScriptedStore(() => Promise.resolve("claimed"));
		const { replay } = guard(store);
		await replay.claim("a", "svc", ts);
		await replay.claim("b", "svc", ts);
		expect(store.sets.map((set) => set.value)).toEqual([`svc:${ts}:iso-1:1`, `svc:${ts}:iso-1:2`]);
	});

	it("a request accepted in Upstash before an outage is a replay during it, answered without a call", async () => {
		const store = new ScriptedStore(() => Promise.resolve("claimed"));
		const { replay } = guard(store);
		expect(await replay.claim("A", "c", ts)).toEqual({ status: "claimed", store: "upstash", fallback: null });
		store.next = () => Promise.reject(new ReplayStoreError("error", "down"));
		expect(await replay.claim("A", "c", ts)).toEqual({ status: "replay", store: "upstash", cached: true });
		expect(store.calls).toBe(1);
		// A key Upstash said was taken is remembered too.
		store.up("duplicate");
		expect(await replay.claim("X", "c", ts)).toEqual({ status: "replay", store: "upstash" });
		expect(await replay.claim("X", "c", ts)).toEqual({ status: "replay", store: "upstash", cached: true });
		expect(store.calls).toBe(2);
	});

	it("a key Upstash took is known for its whole life: a copy at its last millisecond, during an outage, is a replay without a call", async () => {
		const store = new ScriptedStore(() => Promise.resolve("claimed"));
		const { replay, clock } = guard(store);
		expect(await replay.claim("A", "c", ts)).toMatchObject({ status: "claimed", store: "upstash" });
		store.next = () => Promise.reject(new ReplayStoreError("error", "down"));
		// The key lives 300 001 ms (the window's far edge and one): at 300 000 it is still Upstash's.
		clock.now = EPOCH + 300_000;
		expect(await replay.claim("A", "c", ts)).toEqual({ status: "replay", store: "upstash", cached: true });
		expect(store.calls).toBe(1);
	});

	it("a claim made in memory stays a replay after Upstash recovers, however many decisions the isolate makes before its write-back", async () => {
		const store = ScriptedStore.down();
		const { replay } = guard(store, { decisionsMaxKeys: 2 });
		expect(await replay.claim("X", "c", ts)).toMatchObject({ status: "claimed", store: "memory" });
		store.up();
		// A busy isolate: more Upstash decisions than its bound, none of them writing X back.
		for (const other of ["a", "b", "c", "d"]) expect(await replay.claim(other, "c", ts)).toMatchObject({ status: "claimed", store: "upstash" });
		expect(replay.pendingReconciliation).toBe(1);
		expect(await replay.claim("X", "c", ts)).toEqual({ status: "replay", store: "memory", cached: true });
		// X's replay cost no Upstash call: Upstash does not hold X yet, and would have said OK.
		expect(store.sets.filter((set) => set.key === "p:X")).toHaveLength(1);
	});

	it("the decisions' bound drops what Upstash holds: the oldest is asked again, a recent one is not", async () => {
		const store = new ScriptedStore(() => Promise.resolve("claimed"));
		const { replay } = guard(store, { decisionsMaxKeys: 2 });
		await replay.claim("one", "c", ts);
		await replay.claim("two", "c", ts);
		await replay.claim("three", "c", ts);
		store.up("duplicate");
		expect(await replay.claim("three", "c", ts)).toEqual({ status: "replay", store: "upstash", cached: true });
		expect(await replay.claim("one", "c", ts)).toEqual({ status: "replay", store: "upstash" });
		expect(store.calls).toBe(4);
	});

	it("rate limits the log line of a memory store that refuses claims", async () => {
		const { log, lines } = recordingLog();
		const { replay } = guard(null, { log });
		// The memory store holds 100 keys, one client at most 50.
		for (let i = 0; i < 60; i++) await replay.claim(`k${i}`, "flood", String(EPOCH + 3_000_000));
		expect(await replay.claim("other", "flood", ts)).toEqual({ status: "unavailable", store: "memory", reason: "full" });
		expect(await replay.claim("other", "someone-else", ts)).toMatchObject({ status: "claimed" });
		expect(lines.filter((line) => line.message === "memory replay store refused a claim")).toEqual([
			{ level: "error", message: "memory replay store refused a claim", fields: { reason: "full", suppressed: 0 } },
		]);
	});
});

describe("ReplayGuard: two copies in one isolate", () => {
	it("one SET times out and claims in memory, its twin's SET answers OK: one claim, nothing to write back", async () => {
		let answerTwin: (outcome: ClaimOutcome) => void = () => {};
		let n = 0;
		const store = new ScriptedStore(() => {
			n++;
			if (n === 1) return new Promise<ClaimOutcome>((resolve) => (answerTwin = resolve));
			return Promise.reject(new ReplayStoreError("timeout", "slow"));
		});
		store.readFails = new ReplayStoreError("timeout", "slow");
		const { replay } = guard(store);
		const twin = replay.claim("sig", "c", ts);
		const timedOut = await replay.claim("sig", "c", ts);
		expect(timedOut).toMatchObject({ status: "claimed", store: "memory" });
		answerTwin("claimed");
		expect(await twin).toEqual({ status: "replay", store: "upstash" });
		expect(replay.pendingReconciliation).toBe(0);
	});

	it("the twin's OK lands first, then the other's SET fails: one claim", async () => {
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
		failSlow(new ReplayStoreError("error", "reset"));
		expect(await slow).toEqual({ status: "replay", store: "upstash", cached: true });
	});
});

describe("ReplayGuard: two copies in one isolate, their answers landing together", () => {
	it("the other's SET fails just before the twin's OK lands: one claim in memory, the twin a replay, nothing to write back", async () => {
		let answerTwin: (outcome: ClaimOutcome) => void = () => {};
		let failOther: (error: Error) => void = () => {};
		let n = 0;
		const store = new ScriptedStore(() => {
			n++;
			if (n === 1) return new Promise<ClaimOutcome>((resolve) => (answerTwin = resolve));
			return new Promise<ClaimOutcome>((_, reject) => (failOther = reject));
		});
		const { replay } = guard(store);
		const twin = replay.claim("sig", "c", ts);
		const other = replay.claim("sig", "c", ts);
		// Both SETs on their way (each claim digests its key first).
		while (n < 2) await new Promise((resolve) => setTimeout(resolve, 0));
		failOther(new ReplayStoreError("error", "reset"));
		answerTwin("claimed");
		expect([await twin, await other]).toEqual([
			{ status: "replay", store: "upstash" },
			{ status: "claimed", store: "memory", fallback: "error" },
		]);
		// Upstash holds the key (the twin's OK) and the memory claim knows it: no write-back to send.
		expect(replay.pendingReconciliation).toBe(0);
	});
});

describe("ReplayGuard: a timed-out SET is confirmed before it becomes a memory claim", () => {
	const timingOut = () => new ScriptedStore(() => Promise.reject(new ReplayStoreError("timeout", "slow")));

	it("another's value under the key: a replay, no fallback, no memory claim", async () => {
		const store = timingOut();
		store.existing.set("p:sig", `c:${ts}:other-isolate:9`);
		const { replay, fallbacks, calls } = guard(store);
		expect(await replay.claim("sig", "c", ts)).toEqual({ status: "replay", store: "upstash" });
		expect(store.sets).toEqual([
			{ key: "p:sig", value: `c:${ts}:iso-1:1`, ttlMs: 300_001, read: false },
			{ key: "p:sig", value: `c:${ts}:iso-1:1`, ttlMs: 300_001, read: true },
		]);
		expect(fallbacks).toEqual([]);
		expect(calls).toEqual(["upstash:timeout", "upstash:duplicate", "replay_attempt"]);
		expect(replay.breakerState).toBe("closed");
	});

	it("the key free, or holding this claim's own value (its SET landed late): claimed in Upstash", async () => {
		const store = timingOut();
		const { replay, fallbacks } = guard(store);
		expect(await replay.claim("free", "c", ts)).toEqual({ status: "claimed", store: "upstash", fallback: null });
		store.existing.set("p:mine", `c:${ts}:iso-1:2`);
		expect(await replay.claim("mine", "c", ts)).toEqual({ status: "claimed", store: "upstash", fallback: null });
		expect(fallbacks).toEqual([]);
		expect(replay.pendingReconciliation).toBe(0);
		// Both are Upstash's now: a copy is a replay without a call.
		expect(await replay.claim("free", "c", ts)).toEqual({ status: "replay", store: "upstash", cached: true });
	});

	it("the confirmation fails too: the memory fallback (or closed), counted once against the breaker", async () => {
		const store = timingOut();
		store.readFails = new ReplayStoreError("error", "reset");
		const { replay, fallbacks } = guard(store);
		expect(await replay.claim("sig", "c", ts)).toEqual({ status: "claimed", store: "memory", fallback: "error" });
		expect(fallbacks).toEqual(["error"]);
		const closed = guard(store, { failMode: "closed" });
		expect(await closed.replay.claim("sig", "c", ts)).toEqual({ status: "unavailable", store: "upstash", reason: "error" });
	});

	it("only a timeout is confirmed: an error goes straight to the fallback, and an open breaker calls nothing", async () => {
		const store = ScriptedStore.down("error");
		const { replay } = guard(store);
		for (let i = 0; i < 3; i++) await replay.claim(`k${i}`, "c", ts);
		expect(store.sets.every((set) => !set.read)).toBe(true);
		expect(replay.breakerState).toBe("open");
		expect(await replay.claim("after", "c", ts)).toMatchObject({ status: "claimed", store: "memory", fallback: "breaker_open" });
		expect(store.sets).toHaveLength(3);
	});
});

describe("ReplayGuard: the window's last millisecond", () => {
	it("a key outlives the last instant its timestamp passes the skew check, and never lives under the TTL", () => {
		const { replay } = guard(null);
		expect(replay.ttlMs(EPOCH + 299_000, EPOCH)).toBe(599_001);
		expect(replay.ttlMs(EPOCH - 299_000, EPOCH)).toBe(300_000);
	});

	it.each([["memory only", null], ["during a fallback", "down"]] as const)("%s: a copy at exactly timestamp + window is a replay", async (_, mode) => {
		const clock = { now: EPOCH };
		const { replay } = guard(mode === null ? null : ScriptedStore.down(), { clock });
		const signedAt = EPOCH + 100_000;
		expect(await replay.claim("sig", "c", String(signedAt))).toMatchObject({ status: "claimed", store: "memory" });
		clock.now = signedAt + 300_000;
		expect(await replay.claim("sig", "c", String(signedAt))).toMatchObject({ status: "replay" });
	});
});
