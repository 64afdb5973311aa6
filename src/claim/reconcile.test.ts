import { describe, expect, it } from "vitest";
import { EPOCH, guard, recordingLog, ScriptedStore, silent, ts } from "../../test/fixtures/replay-guard.ts";
import { claimValue } from "./guard.ts";
import { MemoryReplayStore } from "./memory.ts";
import { WriteBacks } from "./reconcile.ts";

/**
 * Runs the write-backs while Upstash is down for the limits (one kept for the next run), then a
 * second later, with it back (`comeBack`), again.
 */
async function runDownThenUp(writeBacks: WriteBacks, limits: Parameters<WriteBacks["run"]>[1], clock: { now: number }, comeBack: () => void): Promise<void> {
	const store = new ScriptedStore(() => Promise.resolve("claimed"));
	await writeBacks.run(store, limits);
	expect(writeBacks.size).toBe(1);
	clock.now += 1_000;
	comeBack();
	await writeBacks.run(store, limits);
}

describe("write-backs of the claims made in memory during an outage", () => {
	it("a claim made in memory is written to Upstash once it answers, with SET NX GET and the same expiry", async () => {
		const store = ScriptedStore.down();
		const { replay, clock, outageReplays } = guard(store);
		expect(await replay.claim("B", "c", String(EPOCH + 100_000))).toMatchObject({ status: "claimed", store: "memory" });
		expect(replay.pendingReconciliation).toBe(1);
		// Nothing is written while Upstash has not answered since it failed.
		await replay.reconcile();
		expect(store.sets.filter((set) => set.read)).toEqual([]);

		store.up();
		clock.now = EPOCH + 2_000;
		await replay.claim("probe", "c", String(clock.now));
		await replay.reconcile();
		// Expiry: the claim's own (timestamp + skew window from its claim time), not a fresh TTL.
		expect(store.sets.filter((set) => set.read)).toEqual([{ key: "p:B", value: `c:${EPOCH + 100_000}:iso-1:1`, ttlMs: 400_001 - 2_000, read: true }]);
		expect(replay.pendingReconciliation).toBe(0);
		expect(outageReplays()).toBe(0);
	});

	it("one that finds another's claim counts and logs a replay that got through; its own late SET does not", async () => {
		const { log, lines } = recordingLog();
		const store = ScriptedStore.down("error");
		const { replay, outageReplays, clock } = guard(store, { log });
		await replay.claim("mine", "c", ts);
		await replay.claim("theirs", "c", ts);
		await replay.claim("refused", "c", ts);
		// Three failures opened the breaker: the probe below goes out once its cool-down has passed.
		clock.now += 5_000;
		// The first claim's own SET landed after all; the second key was claimed by another isolate;
		// the third's own limits script ran after all and refused it (its own refusal: nothing got through).
		store.existing.set("p:mine", `c:${ts}:iso-1:1`);
		store.existing.set("p:theirs", `c:${ts}:iso-2:7`);
		store.existing.set("p:refused", `c:${ts}:iso-1:3:refused:rpm`);
		store.up();
		await replay.claim("probe", "c", ts);
		await replay.reconcile();
		expect(outageReplays()).toBe(1);
		expect(lines.filter((line) => line.message.startsWith("replay accepted during the Upstash outage"))).toEqual([
			{ level: "warn", message: "replay accepted during the Upstash outage: the key was already claimed", fields: { client_id: "c", timestamp: ts, suppressed: 0 } },
		]);
		expect(replay.pendingReconciliation).toBe(0);
	});

	it("a failed write-back keeps its claims for a later run; a run writes a bounded number", async () => {
		const store = ScriptedStore.down();
		const { replay, clock } = guard(store);
		for (let i = 0; i < 40; i++) await replay.claim(`k${i}`, `c${i % 4}`, ts);
		store.up();
		clock.now += 5_000;
		expect(await replay.claim("probe", "c", ts)).toMatchObject({ status: "claimed", store: "upstash" });
		store.readFails = new Error("down") as never;
		await replay.reconcile();
		expect(replay.pendingReconciliation).toBe(40);
		store.readFails = null;
		// Within the pause after a failure, nothing is tried.
		await replay.reconcile();
		expect(replay.pendingReconciliation).toBe(40);
		clock.now += 1_000;
		await replay.reconcile();
		expect(replay.pendingReconciliation).toBe(8);
		await replay.reconcile();
		expect(replay.pendingReconciliation).toBe(0);
		expect(new Set(store.sets.filter((set) => set.read).map((set) => set.key)).size).toBe(40);
	});

	it("expired claims are dropped, never written, and do not pile up during a long outage", async () => {
		const clock = { now: EPOCH };
		const memory = new MemoryReplayStore(10, () => clock.now);
		const writeBacks = new WriteBacks({ memory, prefix: "p:", valueOf: (claim) => claimValue(claim, "iso"), events: { outageReplay() {} }, log: silent, now: () => clock.now });
		const claimInMemory = async (n: number, ttlMs: number) => {
			await memory.claim(`id-${n}`, "", ttlMs, "c");
			writeBacks.add(`id-${n}`, { key: `p:${n}`, clientId: "c", timestamp: ts, counter: n });
		};
		await claimInMemory(1, 1_000);
		await claimInMemory(2, 2_000);
		clock.now = EPOCH + 1_500;
		await claimInMemory(3, 7_500);
		expect(writeBacks.pending.size).toBe(2);
		clock.now = EPOCH + 5_000;
		const store = new ScriptedStore(() => Promise.resolve("claimed"));
		await writeBacks.run(store);
		// The claim's value names its client and timestamp; its expiry is what it has left.
		expect(store.sets).toEqual([{ key: "p:3", value: `c:${ts}:iso:3`, ttlMs: 4_000, read: true }]);
		expect(writeBacks.pending.size).toBe(0);
	});

	it("expired claims do not take the places of a run: the live one behind 32 of them is written in the same run", async () => {
		const clock = { now: EPOCH };
		const live = new Set<string>();
		// A memory that says which claims still live; the test expires them at once.
		const memory = { expiresAt: (id: string) => (live.has(id) ? EPOCH + 60_000 : undefined) };
		const writeBacks = new WriteBacks({ memory, prefix: "p:", valueOf: (claim) => claimValue(claim, "iso"), events: { outageReplay() {} }, log: silent, now: () => clock.now });
		for (let n = 0; n <= 32; n++) {
			live.add(`id-${n}`);
			writeBacks.add(`id-${n}`, { key: `p:${n}`, clientId: "c", timestamp: ts, counter: n });
		}
		for (let n = 0; n < 32; n++) live.delete(`id-${n}`);
		const store = new ScriptedStore(() => Promise.resolve("claimed"));
		await writeBacks.run(store);
		expect(store.sets.map((set) => set.key)).toEqual(["p:32"]);
		expect(writeBacks.pending.size).toBe(0);
	});

	it("a v2 claim's value names the client its key names; another's client id is kept whole", async () => {
		const store = ScriptedStore.down();
		const { replay, clock } = guard(store);
		const keyid = "k".repeat(64);
		await replay.claim(`v2:${keyid}:nonce`, keyid, ts);
		await replay.claim("f".repeat(64), "v1-client", ts);
		await replay.claim("v2:other:nonce", "not-other", ts);
		store.up();
		// Three failures opened the breaker: the probe comes after its cool-down.
		clock.now += 5_000;
		expect(await replay.claim("probe", "c", ts)).toMatchObject({ status: "claimed", store: "upstash" });
		await replay.reconcile();
		expect(store.sets.filter((set) => set.read).map(({ key, value }) => [key, value])).toEqual([
			[`p:v2:${keyid}:nonce`, `${keyid}:${ts}:iso-1:1`],
			[`p:${"f".repeat(64)}`, `v1-client:${ts}:iso-1:2`],
			["p:v2:other:nonce", `not-other:${ts}:iso-1:3`],
		]);
	});

	it("keeps a timestamp that is not a plain number as it was sent", async () => {
		const memory = new MemoryReplayStore(10, () => EPOCH);
		const writeBacks = new WriteBacks({ memory, prefix: "p:", valueOf: (claim) => claimValue(claim, "iso"), events: { outageReplay() {} }, log: silent, now: () => EPOCH });
		await memory.claim("id", "", 1_000, "c");
		writeBacks.add("id", { key: "p:k", clientId: "c", timestamp: "0001764000000000", counter: 1 });
		const store = new ScriptedStore(() => Promise.resolve("claimed"));
		await writeBacks.run(store);
		expect(store.sets.map((set) => set.value)).toEqual(["c:0001764000000000:iso:1"]);
	});

	it("a write-back whose key a twin's Upstash OK settled while the run was on its way is not sent, and counts no replay (no false alert)", async () => {
		const clock = { now: EPOCH };
		const memory = new MemoryReplayStore(10, () => clock.now);
		let outageReplays = 0;
		const { log, lines } = recordingLog();
		const writeBacks = new WriteBacks({ memory, prefix: "p:", valueOf: (claim) => claimValue(claim, "iso"), events: { outageReplay: () => outageReplays++ }, log, now: () => clock.now });
		for (let n = 1; n <= 6; n++) {
			await memory.claim(`id-${n}`, "", 60_000, `c${n}`);
			writeBacks.add(`id-${n}`, { key: `p:${n}`, clientId: "c", timestamp: ts, counter: n });
		}
		// The first four writes wait; meanwhile a twin of claim 6 was claimed in Upstash by this isolate.
		let release: () => void = () => {};
		const held = new Promise<void>((resolve) => (release = resolve));
		const store = new ScriptedStore(() => Promise.resolve("claimed"));
		store.existing.set("p:6", `c:${ts}:iso:99`);
		const claimOrRead = store.claimOrRead.bind(store);
		store.claimOrRead = async (claim) => {
			if (store.sets.length < 4) await held;
			return claimOrRead(claim);
		};
		const run = writeBacks.run(store);
		writeBacks.settled("id-6");
		release();
		await run;
		expect(store.sets.map((set) => set.key)).toEqual(["p:1", "p:2", "p:3", "p:4", "p:5"]);
		expect(outageReplays).toBe(0);
		expect(lines).toEqual([]);
		expect(writeBacks.size).toBe(0);
	});

	it("a release that failed waits with the claims and is sent first; a failed run keeps it", async () => {
		const clock = { now: EPOCH };
		const memory = new MemoryReplayStore(10, () => clock.now);
		const writeBacks = new WriteBacks({ memory, prefix: "p:", valueOf: (claim) => claimValue(claim, "iso"), events: { outageReplay() {} }, log: silent, now: () => clock.now });
		await memory.claim("id-1", "", 60_000, "c");
		writeBacks.add("id-1", { key: "p:1", clientId: "c", timestamp: ts, counter: 1 });
		const slot = { clientId: "c", id: `c:${ts}:iso:7`, store: "upstash" as const };
		writeBacks.addRelease(slot);
		expect(writeBacks.size).toBe(2);
		const sent: string[] = [];
		let up = false;
		const limits = {
			release: async (held: typeof slot) => {
				sent.push(`release ${held.id}`);
				if (!up) throw new Error("down");
			},
		};
		await runDownThenUp(writeBacks, limits, clock, () => (up = true));
		expect(sent).toEqual([`release c:${ts}:iso:7`, `release c:${ts}:iso:7`]);
		expect(writeBacks.size).toBe(0);
	});

	it("a lost claim's slot is released and its reservation settled at 0 once Upstash answers; a failed settle is kept", async () => {
		const clock = { now: EPOCH };
		const memory = new MemoryReplayStore(10, () => clock.now);
		const writeBacks = new WriteBacks({ memory, prefix: "p:", valueOf: (claim) => claimValue(claim, "iso"), events: { outageReplay() {} }, log: silent, now: () => clock.now });
		writeBacks.addLost({ slot: { clientId: "c", id: "c:1:iso:1", store: "upstash" }, reservation: "c:2025-11-24:-:r1" });
		writeBacks.addLost({ slot: null, reservation: null });
		expect(writeBacks.size).toBe(2);
		const sent: string[] = [];
		let up = false;
		const limits = {
			release: async (held: { id: string }) => void sent.push(`release ${held.id}`),
			settle: async (reservation: string, tokens: number) => {
				sent.push(`settle ${reservation} ${tokens}`);
				if (!up) throw new Error("down");
				return { status: "settled" as const, hold: 10, counted: 0 };
			},
		};
		await runDownThenUp(writeBacks, limits, clock, () => (up = true));
		expect(sent).toEqual(["release c:1:iso:1", "settle c:2025-11-24:-:r1 0", "settle c:2025-11-24:-:r1 0"]);
		expect(writeBacks.size).toBe(0);
	});
});
