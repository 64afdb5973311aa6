import { describe, expect, it, vi } from "vitest";
import { freshKey, RecordedEvents, recordingLogger, sealedRecord } from "../../test/fixtures/keyring.ts";
import { KeyringLookup, type KeyringLookupOptions } from "./lookup.ts";
import { recordKey } from "./record.ts";
import { KeyringStoreError, MemoryKeyringStore, type KeyringStore, type StoreRead } from "./store.ts";

/** A Map-backed store that counts reads per id and can be made to fail. */
class CountingStore implements KeyringStore {
	readonly inner = new MemoryKeyringStore();
	readonly reads: string[] = [];
	failing: "error" | "timeout" | null = null;
	/** Held reads resolve when released (to test concurrent lookups). */
	hold: Promise<void> | null = null;

	async read(clientId: string): Promise<StoreRead> {
		this.reads.push(clientId);
		if (this.hold !== null) await this.hold;
		if (this.failing !== null) throw new KeyringStoreError(this.failing, "injected");
		return this.inner.read(clientId);
	}
}

async function setup(overrides: Partial<KeyringLookupOptions> = {}) {
	const key = await freshKey();
	const store = new CountingStore();
	const events = new RecordedEvents();
	const log = recordingLogger();
	const clock = { now: 1_763_000_000_000 };
	const lookup = new KeyringLookup({ store, keys: [key], cacheMs: 30_000, maxEntries: 100, events, log, now: () => clock.now, ...overrides });
	return { key, store, events, log, clock, lookup };
}

describe("KeyringLookup", () => {
	it("finds a client's secrets, newest first, with its limits, and imports verify keys once per cached record", async () => {
		const { key, store, lookup, events } = await setup();
		store.inner.put(await sealedRecord(key, "alice", ["new-secret", "old-secret"], { limits: { rpm: 5 } }));
		const first = await lookup.lookup("alice");
		expect(first).toMatchObject({ kind: "found", client: { clientId: "alice", secrets: ["new-secret", "old-secret"], limits: { rpm: 5 } } });
		const second = await lookup.lookup("alice");
		expect(second).toBe(first);
		if (first.kind !== "found") throw new Error("unreachable");
		const keys = await first.client.keys;
		expect(keys.map((k) => k.usages)).toEqual([["verify"], ["verify"]]);
		const mac = await crypto.subtle.sign("HMAC", await crypto.subtle.importKey("raw", new TextEncoder().encode("old-secret"), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]), new Uint8Array([1]));
		expect(await crypto.subtle.verify("HMAC", keys[1]!, mac, new Uint8Array([1]))).toBe(true);
		expect(store.reads).toEqual(["alice"]);
		expect([events.of("hit"), events.of("kv_read"), events.of("miss")]).toEqual([2, 1, 0]);
	});

	it("caches a miss: an unknown id costs one KV read per cache period, however many requests", async () => {
		const { store, lookup, events, clock } = await setup();
		for (let i = 0; i < 50; i++) expect(await lookup.lookup("nobody")).toEqual({ kind: "absent" });
		expect(store.reads).toEqual(["nobody"]);
		clock.now += 29_999;
		await lookup.lookup("nobody");
		expect(store.reads).toHaveLength(1);
		clock.now += 1;
		await lookup.lookup("nobody");
		expect(store.reads).toHaveLength(2);
		expect([events.of("miss"), events.of("kv_read")]).toEqual([52, 2]);
	});

	it("shares one KV read between concurrent lookups of one id, and counts each lookup", async () => {
		const { key, store, lookup, events } = await setup();
		store.inner.put(await sealedRecord(key, "alice", ["s"]));
		let release!: () => void;
		store.hold = new Promise((done) => (release = done));
		const pending = Array.from({ length: 20 }, () => lookup.lookup("alice"));
		release();
		const results = await Promise.all(pending);
		expect(new Set(results).size).toBe(1);
		expect(store.reads).toEqual(["alice"]);
		expect([events.of("hit"), events.of("kv_read")]).toEqual([20, 1]);
	});

	it("a request joining another's read that never settles (its request was cancelled) reads for itself after its own budget", async () => {
		const { key, store, lookup, clock } = await setup({ joinTimeoutMs: 20 });
		store.inner.put(await sealedRecord(key, "alice", ["s"]));
		store.hold = new Promise(() => {});
		const abandoned = lookup.lookup("alice");
		store.hold = null;
		expect(await lookup.lookup("alice")).toMatchObject({ kind: "found", client: { secrets: ["s"] } });
		expect(store.reads).toEqual(["alice", "alice"]);
		// After the cache period, two lookups at once share one new read: the abandoned one is forgotten.
		clock.now += 30_000;
		let release!: () => void;
		store.hold = new Promise((done) => (release = done));
		const pair = [lookup.lookup("alice"), lookup.lookup("alice")];
		release();
		await Promise.all(pair);
		expect(store.reads).toHaveLength(3);
		void abandoned;
	});

	it("a request joining another's read waits 1100 ms by default (a KV read's own budget and a margin) before it reads itself", async () => {
		vi.useFakeTimers();
		try {
			const { store, lookup } = await setup();
			store.hold = new Promise(() => {});
			void lookup.lookup("alice");
			void lookup.lookup("alice");
			await vi.advanceTimersByTimeAsync(1_099);
			expect(store.reads).toEqual(["alice"]);
			await vi.advanceTimersByTimeAsync(1);
			expect(store.reads).toEqual(["alice", "alice"]);
		} finally {
			vi.useRealTimers();
		}
	});

	it("lookup alone sees a new record, a revocation and a rotation only after the cache period (a failed signature reads again: below)", async () => {
		const { key, store, lookup, clock } = await setup();
		expect(await lookup.lookup("alice")).toEqual({ kind: "absent" });
		store.inner.put(await sealedRecord(key, "alice", ["one"]));
		expect(await lookup.lookup("alice")).toEqual({ kind: "absent" });
		clock.now += 30_000;
		expect(await lookup.lookup("alice")).toMatchObject({ kind: "found", client: { secrets: ["one"] } });
		store.inner.put(await sealedRecord(key, "alice", ["two", "one"]));
		clock.now += 29_000;
		expect(await lookup.lookup("alice")).toMatchObject({ client: { secrets: ["one"] } });
		clock.now += 1_000;
		expect(await lookup.lookup("alice")).toMatchObject({ client: { secrets: ["two", "one"] } });
		store.inner.records.delete(recordKey("alice"));
		expect(await lookup.lookup("alice")).toMatchObject({ kind: "found" });
		clock.now += 30_000;
		expect(await lookup.lookup("alice")).toEqual({ kind: "absent" });
	});

	it("refuses a disabled client, and another case of a registered id, without opening anything", async () => {
		const { key, store, lookup, events } = await setup();
		store.inner.put(await sealedRecord(key, "off", ["s"], { disabled: true }));
		store.inner.put(await sealedRecord(key, "alice", ["s"]));
		expect(await lookup.lookup("off")).toEqual({ kind: "refused", reason: "disabled" });
		expect(await lookup.lookup("ALICE")).toEqual({ kind: "refused", reason: "case_variant" });
		expect(await lookup.lookup("Alice")).toEqual({ kind: "refused", reason: "case_variant" });
		expect(events.of("undecryptable")).toBe(0);
	});

	it("refuses a record under another key, moved to another id, or changed: logged and counted, cached, never thrown", async () => {
		const { key, store, lookup, events, log } = await setup();
		store.inner.put(await sealedRecord(await freshKey(), "wrong-key", ["s"]));
		// Moved: bob's KV key holds alice's record, its id rewritten to bob.
		const alice = await sealedRecord(key, "alice", ["s"]);
		store.inner.records.set(recordKey("bob"), { ...alice, id: "bob" });
		// Moved without rewriting the id.
		store.inner.records.set(recordKey("carol"), alice);
		const tampered = await sealedRecord(key, "tampered", ["s"]);
		const bytes = Uint8Array.from(atob(tampered.sealed), (c) => c.charCodeAt(0));
		bytes[20]! ^= 1;
		store.inner.put({ ...tampered, sealed: btoa(String.fromCharCode(...bytes)) });
		store.inner.records.set(recordKey("junk"), { v: 2, id: "junk" });
		for (const id of ["wrong-key", "bob", "carol", "tampered", "junk"]) {
			expect(await lookup.lookup(id), id).toEqual({ kind: "refused", reason: "undecryptable" });
			expect(await lookup.lookup(id), id).toEqual({ kind: "refused", reason: "undecryptable" });
		}
		expect(store.reads).toHaveLength(5);
		expect(events.of("undecryptable")).toBe(10);
		expect(log.lines.filter((line) => line.level === "error").map((line) => line.fields.clientId)).toEqual(["wrong-key", "bob", "carol", "tampered", "junk"]);
		expect(JSON.stringify(log.lines)).not.toContain(alice.sealed);
	});

	it("serves the last known record while KV fails, and reads KV once per period, not per request", async () => {
		const { key, store, lookup, events, clock, log } = await setup();
		store.inner.put(await sealedRecord(key, "alice", ["s"]));
		await lookup.lookup("alice");
		await lookup.lookup("gone");
		clock.now += 30_000;
		store.failing = "timeout";
		for (let i = 0; i < 10; i++) {
			expect(await lookup.lookup("alice")).toMatchObject({ kind: "found", client: { secrets: ["s"] } });
			expect(await lookup.lookup("gone")).toEqual({ kind: "absent" });
		}
		expect(store.reads).toEqual(["alice", "gone", "alice", "gone"]);
		expect(events.of("kv_error")).toBe(2);
		expect(log.lines.filter((l) => l.level === "warn")).toHaveLength(1);
	});

	it("a deleted record stays deleted while KV fails later: the last known answer is the miss, not the old record", async () => {
		const { key, store, lookup, clock } = await setup();
		store.inner.put(await sealedRecord(key, "gone", ["old-secret"]));
		expect(await lookup.lookup("gone")).toMatchObject({ kind: "found" });
		store.inner.records.delete(recordKey("gone"));
		clock.now += 30_000;
		expect(await lookup.lookup("gone")).toEqual({ kind: "absent" });
		store.failing = "error";
		clock.now += 30_000;
		expect(await lookup.lookup("gone")).toEqual({ kind: "absent" });
		expect(store.reads).toEqual(["gone", "gone", "gone"]);
	});

	it("answers unavailable for an id never seen while KV fails: never absent (which would let a shared secret serve it)", async () => {
		const { store, lookup, events } = await setup();
		store.failing = "error";
		expect(await lookup.lookup("new-id")).toEqual({ kind: "unavailable", reason: "kv_error" });
		expect(await lookup.lookup("new-id")).toEqual({ kind: "unavailable", reason: "kv_error" });
		store.failing = null;
		expect(await lookup.lookup("new-id")).toEqual({ kind: "absent" });
		expect([events.of("kv_error"), events.of("hit"), events.of("miss")]).toEqual([2, 0, 1]);
		// Two at once share the failed read: the one that joined it counts no hit either.
		store.failing = "error";
		let release!: () => void;
		store.hold = new Promise((done) => (release = done));
		const pair = [lookup.lookup("other-id"), lookup.lookup("other-id")];
		release();
		expect(await Promise.all(pair)).toEqual([{ kind: "unavailable", reason: "kv_error" }, { kind: "unavailable", reason: "kv_error" }]);
		expect([events.of("kv_error"), events.of("hit")]).toEqual([3, 0]);
	});

	it("logs a failing KV once per 10 s for each kind of failure: a timeout does not hide an error", async () => {
		const { store, lookup, log } = await setup();
		store.failing = "timeout";
		await lookup.lookup("a");
		await lookup.lookup("b");
		store.failing = "error";
		await lookup.lookup("c");
		expect(log.lines.filter((l) => l.level === "warn").map((l) => l.fields.reason)).toEqual(["timeout", "error"]);
	});

	it("bounds memory: a flood of random ids keeps at most maxEntries misses, and cannot evict a client", async () => {
		const { key, store, lookup } = await setup({ maxEntries: 10, unknownReadsPerSecond: 1_000_000 });
		store.inner.put(await sealedRecord(key, "alice", ["s"]));
		await lookup.lookup("alice");
		for (let i = 0; i < 1000; i++) await lookup.lookup(`random-${i}`);
		const reads = store.reads.length;
		expect(await lookup.lookup("alice")).toMatchObject({ kind: "found" });
		expect(store.reads.length).toBe(reads);
		// The newest misses are still cached; the oldest were dropped.
		await lookup.lookup("random-999");
		expect(store.reads.length).toBe(reads);
		await lookup.lookup("random-0");
		expect(store.reads.length).toBe(reads + 1);
	});

	it("limits KV reads for ids it knows nothing of: beyond the budget, 503 for the rest of the second; known ids unaffected", async () => {
		const { key, store, lookup, events, clock } = await setup({ unknownReadsPerSecond: 5 });
		store.inner.put(await sealedRecord(key, "alice", ["s"]));
		await lookup.lookup("alice");
		const results = [];
		for (let i = 0; i < 100; i++) results.push(await lookup.lookup(`random-${i}`));
		expect(results.filter((r) => r.kind === "absent")).toHaveLength(5);
		expect(results.slice(5).every((r) => r.kind === "unavailable" && r.reason === "throttled")).toBe(true);
		expect(store.reads).toHaveLength(6);
		expect(events.of("throttled")).toBe(95);
		// Cached ids, found or missing, still answer.
		expect(await lookup.lookup("alice")).toMatchObject({ kind: "found" });
		expect(await lookup.lookup("random-0")).toEqual({ kind: "absent" });
		clock.now += 1000;
		expect(await lookup.lookup("random-50")).toEqual({ kind: "absent" });
	});

	it("throttles a flood of other cases of a registered id like unknown ids: each is a KV read that serves no client", async () => {
		const { key, store, lookup, events } = await setup({ unknownReadsPerSecond: 5 });
		store.inner.put(await sealedRecord(key, "ProductionMobileClient", ["s"]));
		// 50 spellings of the id, none of them its own (that one has bits 0, 10 and 16 set).
		const variants = Array.from({ length: 50 }, (_, i) => [..."productionmobileclient"].map((c, j) => (((i + 1) >> j) & 1 ? c.toUpperCase() : c)).join(""));
		const results = [];
		for (const id of variants) results.push(await lookup.lookup(id));
		expect(results.slice(0, 5).every((r) => r.kind === "refused" && r.reason === "case_variant")).toBe(true);
		expect(results.slice(5).every((r) => r.kind === "unavailable" && r.reason === "throttled")).toBe(true);
		expect(store.reads).toHaveLength(5);
		expect(events.of("throttled")).toBe(45);
	});

	it("counts a found record against no budget: a cold isolate may meet many clients at once", async () => {
		const { key, store, lookup } = await setup({ unknownReadsPerSecond: 1 });
		for (let i = 0; i < 20; i++) store.inner.put(await sealedRecord(key, `client-${i}`, ["s"]));
		for (let i = 0; i < 20; i++) expect(await lookup.lookup(`client-${i}`)).toMatchObject({ kind: "found" });
	});

	it("reads a known client again when its entry expired, even with the budget of unknown ids spent", async () => {
		const { key, store, lookup, clock } = await setup({ unknownReadsPerSecond: 5 });
		store.inner.put(await sealedRecord(key, "alice", ["s"]));
		store.inner.put(await sealedRecord(key, "off", ["s"], { disabled: true }));
		await lookup.lookup("alice");
		await lookup.lookup("gone");
		await lookup.lookup("off");
		clock.now += 30_000;
		for (let i = 0; i < 100; i++) await lookup.lookup(`random-${i}`);
		store.reads.length = 0;
		expect(await lookup.lookup("alice")).toMatchObject({ kind: "found" });
		expect(await lookup.lookup("gone")).toEqual({ kind: "absent" });
		expect(await lookup.lookup("off")).toEqual({ kind: "refused", reason: "disabled" });
		expect(store.reads).toEqual(["alice", "gone", "off"]);
	});

	it("throttles a flood of random ids while KV fails: a failed read spends the budget too", async () => {
		const { store, lookup, events } = await setup({ unknownReadsPerSecond: 5 });
		store.failing = "error";
		const results = [];
		for (let i = 0; i < 100; i++) results.push(await lookup.lookup(`random-${i}`));
		expect(store.reads).toHaveLength(5);
		expect(results.slice(0, 5).every((r) => r.kind === "unavailable" && r.reason === "kv_error")).toBe(true);
		expect(results.slice(5).every((r) => r.kind === "unavailable" && r.reason === "throttled")).toBe(true);
		expect([events.of("kv_error"), events.of("throttled")]).toEqual([5, 95]);
	});

	it("refuses a revoked id (a tombstone) whatever happens next, never as absent", async () => {
		const { key, store, lookup, events } = await setup();
		store.inner.put(await sealedRecord(key, "gone", [], { revoked: true }));
		expect(await lookup.lookup("gone")).toEqual({ kind: "refused", reason: "revoked" });
		expect(await lookup.lookup("Gone")).toEqual({ kind: "refused", reason: "case_variant" });
		expect(events.of("hit")).toBe(2);
	});

	it("refuses a record edited without the key: a field added, a field of the first format, a record of the first format", async () => {
		const { key, store, lookup, log } = await setup();
		const off = await sealedRecord(key, "off", ["s"], { disabled: true });
		store.inner.records.set(recordKey("off"), { ...off, disabled: false });
		store.inner.records.set(recordKey("limited"), { ...(await sealedRecord(key, "limited", ["s"], { limits: { rpm: 2 } })), limits: {} });
		store.inner.records.set(recordKey("first"), { v: 1, id: "first", secrets: off.sealed, disabled: false, createdAt: "t", updatedAt: "t" });
		for (const id of ["off", "limited", "first"]) expect(await lookup.lookup(id), id).toEqual({ kind: "refused", reason: "undecryptable" });
		expect(log.lines.map((line) => line.fields.why)).toEqual(["malformed", "malformed", "old_format"]);
		expect(log.lines[2]!.message).toContain("npm run keys -- rekey");
	});

	it("opens a record sealed under the old key while KEYRING_KEY holds two (new first)", async () => {
		const [fresh, old] = [await freshKey(), await freshKey()];
		const { store, lookup } = await setup({ keys: [fresh, old] });
		store.inner.put(await sealedRecord(old, "under-old", ["o"]));
		store.inner.put(await sealedRecord(fresh, "under-new", ["n"]));
		expect(await lookup.lookup("under-old")).toMatchObject({ kind: "found", client: { secrets: ["o"] } });
		expect(await lookup.lookup("under-new")).toMatchObject({ kind: "found", client: { secrets: ["n"] } });
	});

	describe("without KEYRING_KEY (the binding set, the key lost)", () => {
		it("refuses an id that has a record, whatever the record (503 no_key), cached; an id without one is absent", async () => {
			const { key, store, lookup, events, log, clock } = await setup({ keys: null });
			store.inner.put(await sealedRecord(key, "alice", ["s"]));
			store.inner.put(await sealedRecord(key, "off", ["s"], { disabled: true }));
			store.inner.records.set(recordKey("junk"), "junk");
			for (const id of ["alice", "off", "junk", "alice"]) expect(await lookup.lookup(id), id).toEqual({ kind: "unavailable", reason: "no_key" });
			expect(await lookup.lookup("nobody")).toEqual({ kind: "absent" });
			expect(store.reads).toEqual(["alice", "off", "junk", "nobody"]);
			expect(events.of("no_key")).toBe(4);
			// Logged as a configuration fault, at most once a minute (each cache period reads again).
			expect(log.lines.filter((l) => l.level === "error")).toHaveLength(1);
			expect(log.lines[0]!.message).toContain("KEYRING_KEY is not");
			clock.now += 30_000;
			await lookup.lookup("alice");
			expect(log.lines).toHaveLength(1);
			clock.now += 30_000;
			await lookup.lookup("alice");
			expect(log.lines).toHaveLength(2);
		});
	});

	describe("re-reading after a failed signature", () => {
		it("finds a rotated record's new secret at once, from the second after the last read", async () => {
			const { key, store, lookup, clock } = await setup();
			store.inner.put(await sealedRecord(key, "alice", ["one"]));
			const before = await lookup.lookup("alice");
			store.inner.put(await sealedRecord(key, "alice", ["two", "one"]));
			clock.now += 999;
			expect(await lookup.reread("alice")).toBeNull();
			clock.now += 1;
			expect(await lookup.reread("alice")).toMatchObject({ kind: "found", client: { secrets: ["two", "one"] } });
			expect(await lookup.lookup("alice")).toMatchObject({ client: { secrets: ["two", "one"] } });
			expect(before).toMatchObject({ client: { secrets: ["one"] } });
			// At most once a second per id.
			expect(await lookup.reread("alice")).toBeNull();
			expect(store.reads).toEqual(["alice", "alice"]);
		});

		it("finds an added client that was cached as a miss, and says null when nothing changed", async () => {
			const { key, store, lookup, clock } = await setup();
			expect(await lookup.lookup("new")).toEqual({ kind: "absent" });
			clock.now += 1_000;
			expect(await lookup.reread("new")).toBeNull();
			store.inner.put(await sealedRecord(key, "new", ["s"]));
			clock.now += 1_000;
			expect(await lookup.reread("new")).toMatchObject({ kind: "found" });
			store.inner.put(await sealedRecord(key, "unchanged", ["s"]));
			const first = await lookup.lookup("unchanged");
			clock.now += 1_000;
			expect(await lookup.reread("unchanged")).toBeNull();
			// The same record read again keeps its decision: no decryption, the same keys.
			clock.now += 30_000;
			expect(await lookup.lookup("unchanged")).toBe(first);
		});

		it("reads nothing for an id it never looked up, and spends the budget of reads that may serve no client", async () => {
			const { key, store, lookup, clock } = await setup({ unknownReadsPerSecond: 3 });
			expect(await lookup.reread("never")).toBeNull();
			store.inner.put(await sealedRecord(key, "alice", ["s"]));
			for (const id of ["a", "b", "alice"]) await lookup.lookup(id);
			clock.now += 1_000;
			expect(await lookup.reread("a")).toBeNull();
			expect(await lookup.reread("b")).toBeNull();
			expect(await lookup.reread("alice")).toBeNull();
			expect(store.reads).toEqual(["a", "b", "alice", "a", "b", "alice"]);
			// The budget of this second is spent: no fourth re-read.
			await lookup.lookup("c").catch(() => null);
			expect(await lookup.lookup("d")).toEqual({ kind: "unavailable", reason: "throttled" });
			clock.now += 1_000;
			expect(await lookup.reread("a")).toBeNull();
			expect(store.reads.at(-1)).toBe("a");
		});

		it("reads nothing again once this second's budget of reads that may serve no client is spent by unknown ids", async () => {
			const { key, store, lookup, clock } = await setup({ unknownReadsPerSecond: 2 });
			store.inner.put(await sealedRecord(key, "alice", ["one"]));
			await lookup.lookup("alice");
			store.inner.put(await sealedRecord(key, "alice", ["two", "one"]));
			clock.now += 1_000;
			// A flood of unknown ids spends the budget: a failed signature of a known id is not read again this second.
			for (const id of ["x", "y"]) expect(await lookup.lookup(id)).toEqual({ kind: "absent" });
			expect(await lookup.reread("alice")).toBeNull();
			expect(store.reads).toEqual(["alice", "x", "y"]);
			clock.now += 1_000;
			expect(await lookup.reread("alice")).toMatchObject({ kind: "found", client: { secrets: ["two", "one"] } });
		});

		it("keeps the last known answer when KV fails meanwhile: nothing new", async () => {
			const { key, store, lookup, clock } = await setup();
			store.inner.put(await sealedRecord(key, "alice", ["s"]));
			await lookup.lookup("alice");
			store.failing = "error";
			clock.now += 1_000;
			expect(await lookup.reread("alice")).toBeNull();
			expect(await lookup.lookup("alice")).toMatchObject({ kind: "found" });
		});
	});

	it("refuses options that cannot work, when built", async () => {
		const { key, store } = await setup();
		const base = { store, keys: [key], maxEntries: 10, events: new RecordedEvents(), log: recordingLogger() };
		expect(() => new KeyringLookup({ ...base, cacheMs: 0 })).toThrow(/cacheMs/);
		expect(() => new KeyringLookup({ ...base, cacheMs: 1, unknownReadsPerSecond: 0 })).toThrow(/unknownReadsPerSecond/);
		expect(() => new KeyringLookup({ ...base, cacheMs: 1, maxEntries: 0 })).toThrow(/maxEntries/);
		expect(() => new KeyringLookup({ ...base, cacheMs: 1, joinTimeoutMs: 0 })).toThrow(/joinTimeoutMs/);
	});
});
