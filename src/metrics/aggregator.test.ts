import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../env.ts";
import { FORGET_AFTER_MS, LIVE_WINDOW_MS, type MetricsAggregator } from "./aggregator.ts";
import { INGEST_VERSION, type IngestPayload } from "./delivery.ts";

const namespace = (env as Env).METRICS_AGGREGATOR!;

function payload(isolate: string, batches: [seq: number, count: number][], gauges: Record<string, number> = { g: 1 }): IngestPayload {
	return {
		v: INGEST_VERSION,
		isolate,
		batches: batches.map(([seq, count]) => ({ seq, samples: { c_total: { "[]": count } }, gauges })),
	};
}

/** A fresh object of its own for each test. */
function fresh(): DurableObjectStub<MetricsAggregator> {
	return namespace.get(namespace.idFromName(crypto.randomUUID()));
}

/** Replaces the object's clock; returns a setter for it. */
async function fixClock(stub: DurableObjectStub<MetricsAggregator>, start: number): Promise<(at: number) => Promise<void>> {
	const set = (at: number) =>
		runInDurableObject(stub, (instance: MetricsAggregator) => {
			instance.now = () => at;
		});
	await set(start);
	return set;
}

function rowsWritten(stub: DurableObjectStub<MetricsAggregator>): Promise<number> {
	return runInDurableObject(stub, (instance: MetricsAggregator) => instance.rowsWritten);
}

function tableRows(stub: DurableObjectStub<MetricsAggregator>, table: "isolates" | "totals"): Promise<number> {
	return runInDurableObject(stub, (_instance: MetricsAggregator, state) => state.storage.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n);
}

describe("MetricsAggregator", () => {
	it("sums deltas from several isolates and ignores a batch it already applied", async () => {
		const stub = fresh();
		const [a, b] = [crypto.randomUUID(), crypto.randomUUID()];
		expect(await stub.ingest(payload(a, [[1, 2]]))).toEqual({ applied: 1, refused: null });
		expect(await stub.ingest(payload(b, [[1, 5]]))).toEqual({ applied: 1, refused: null });
		// A retry of a-1 (its answer was lost) together with a-2: only a-2 counts.
		expect(await stub.ingest(payload(a, [[1, 2], [2, 3]]))).toEqual({ applied: 1, refused: null });
		// A retry alone applies nothing.
		expect(await stub.ingest(payload(a, [[2, 3]]))).toEqual({ applied: 0, refused: null });
		const snapshot = await stub.snapshot();
		expect(snapshot.totals).toEqual({ c_total: { "[]": 10 } });
		expect(snapshot.gauges).toEqual({ g: 2 });
		expect(await stub.ping()).toEqual({ isolates: 2 });
	});

	it("keeps its totals and each isolate's dedupe state across eviction", async () => {
		const stub = fresh();
		const a = crypto.randomUUID();
		await stub.ingest(payload(a, [[1, 7]]));
		await stub.ingest(payload(a, [[2, 1]]));
		await evictDurableObject(stub);
		const after = await stub.snapshot(payload(a, [[2, 1], [3, 1]]));
		expect(after.ingest).toEqual({ applied: 1, refused: null });
		expect(after.totals).toEqual({ c_total: { "[]": 9 } });
		// The isolate reported within the last minute: its gauges still count after the restart.
		expect(after.gauges).toEqual({ g: 1 });
		expect(await stub.ping()).toEqual({ isolates: 1 });
	});

	it("writes the isolate's row and the totals row per ingest, however many isolates it has seen", async () => {
		const stub = fresh();
		const written = async (body: IngestPayload) => {
			const before = await rowsWritten(stub);
			await stub.ingest(body);
			return (await rowsWritten(stub)) - before;
		};
		const first = crypto.randomUUID();
		expect(await written(payload(first, [[1, 1]]))).toBe(2);
		// A retry changes no total: only the isolate's row (its last-seen time).
		expect(await written(payload(first, [[1, 1]]))).toBe(1);
		// 2,000 more isolates, ingested inside the object (quicker than as many calls).
		await runInDurableObject(stub, async (instance: MetricsAggregator) => {
			for (let i = 0; i < 2000; i++) await instance.ingest(payload(`seed-${i}`, [[1, 1]]));
		});
		expect(await tableRows(stub, "isolates")).toBe(2001);
		expect(await tableRows(stub, "totals")).toBe(1);
		expect(await written(payload(first, [[2, 1]]))).toBe(2);
		expect(await written(payload(crypto.randomUUID(), [[1, 1]]))).toBe(2);
		expect(await written(payload(first, [[2, 1]]))).toBe(1);
		expect((await stub.snapshot()).totals).toEqual({ c_total: { "[]": 2003 } });
	});

	it("drops the gauges of an isolate silent for more than a minute from the sum", async () => {
		const stub = fresh();
		const start = Date.now();
		const setClock = await fixClock(stub, start);
		const [a, b] = [crypto.randomUUID(), crypto.randomUUID()];
		await stub.ingest(payload(a, [[1, 0]], { g: 1 }));
		await setClock(start + 30_000);
		await stub.ingest(payload(b, [[1, 0]], { g: 2 }));
		await setClock(start + LIVE_WINDOW_MS);
		expect((await stub.snapshot()).gauges).toEqual({ g: 3 });
		await setClock(start + LIVE_WINDOW_MS + 1);
		expect((await stub.snapshot()).gauges).toEqual({ g: 2 });
		await setClock(start + 30_000 + LIVE_WINDOW_MS + 1);
		expect((await stub.snapshot()).gauges).toEqual({});
		// A silent isolate speaks again: its new gauges count; one that only resends a batch
		// already applied is live again with the gauges of its last applied batch.
		await stub.ingest(payload(a, [[2, 0]], { g: 5 }));
		expect(await stub.ingest(payload(b, [[1, 0]], { g: 99 }))).toEqual({ applied: 0, refused: null });
		expect((await stub.snapshot()).gauges).toEqual({ g: 7 });
		// Silence drops gauges only: every isolate is still known, for dedupe.
		expect(await stub.ping()).toEqual({ isolates: 2 });
	});

	it("an alarm forgets the isolates not seen for 24 hours, with their dedupe state, and keeps the totals", async () => {
		const stub = fresh();
		const start = Date.now();
		const setClock = await fixClock(stub, start);
		const [old, recent] = [crypto.randomUUID(), crypto.randomUUID()];
		await stub.ingest(payload(old, [[1, 1]]));
		await setClock(start + 1000);
		await stub.ingest(payload(recent, [[1, 1]]));
		const scheduled = await runInDurableObject(stub, (_instance: MetricsAggregator, state) => state.storage.getAlarm());
		expect(scheduled).not.toBeNull();

		await setClock(start + FORGET_AFTER_MS);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(await stub.ping()).toEqual({ isolates: 2 });
		await setClock(start + FORGET_AFTER_MS + 1);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(await stub.ping()).toEqual({ isolates: 1 });
		expect(await tableRows(stub, "isolates")).toBe(1);
		expect((await stub.snapshot()).totals).toEqual({ c_total: { "[]": 2 } });
		// The forgotten isolate's state is gone (a batch 1 would count again); the other's is not.
		expect(await stub.ingest(payload(recent, [[1, 1]]))).toEqual({ applied: 0, refused: null });
		expect(await stub.ingest(payload(old, [[1, 1]]))).toEqual({ applied: 1, refused: null });
		// The alarm keeps itself going while isolates are known.
		expect(await runInDurableObject(stub, (_instance: MetricsAggregator, state) => state.storage.getAlarm())).not.toBeNull();
	});

	it("moves the single JSON row of the first release into its tables once, totals and dedupe state unchanged", async () => {
		const stub = fresh();
		const [a, b] = [crypto.randomUUID().slice(0, 8), crypto.randomUUID().slice(0, 8)];
		const now = Date.now();
		const legacyTotals = {
			c_total: { "[]": 41 },
			h: { '["x"]': { b: [1, 2, 0], s: 12.5, c: 3 } },
		};
		const legacy = {
			v: 1,
			totals: legacyTotals,
			isolates: {
				[a]: { seq: 5, seenAt: now, gauges: { g: 1 } },
				[b]: { seq: 2, seenAt: now - 2 * LIVE_WINDOW_MS, gauges: { g: 7 } },
			},
		};
		await runInDurableObject(stub, (_instance: MetricsAggregator, state) => {
			const { sql } = state.storage;
			sql.exec("DELETE FROM totals");
			sql.exec("DELETE FROM isolates");
			sql.exec("CREATE TABLE aggregate (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL)");
			sql.exec("INSERT INTO aggregate (id, body) VALUES (1, ?)", JSON.stringify(legacy));
		});
		await evictDurableObject(stub);

		const after = await stub.snapshot();
		expect(after.totals).toEqual(legacyTotals);
		// a was seen just now, b two minutes ago: only a's gauges count.
		expect(after.gauges).toEqual({ g: 1 });
		expect(await stub.ping()).toEqual({ isolates: 2 });
		// Each isolate's last seq came along: retries are still ignored, the next batch counts.
		expect(await stub.ingest(payload(a, [[5, 100]]))).toEqual({ applied: 0, refused: null });
		expect(await stub.ingest(payload(b, [[3, 1]]))).toEqual({ applied: 1, refused: null });
		const tables = await runInDurableObject(stub, (_instance: MetricsAggregator, state) =>
			state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'aggregate'").toArray(),
		);
		expect(tables).toEqual([]);
		// Once only: another restart does not add the old totals again.
		await evictDurableObject(stub);
		expect((await stub.snapshot()).totals).toEqual({ ...legacyTotals, c_total: { "[]": 42 } });
	});

	it("refuses an ingest format it does not know, or a malformed payload, and changes nothing", async () => {
		const stub = fresh();
		expect(await stub.ingest({ ...payload("a", [[1, 1]]), v: 2 } as unknown as IngestPayload)).toEqual({ applied: 0, refused: "unsupported_version" });
		const malformed = [
			{ ...payload("", [[1, 1]]) },
			{ ...payload("x".repeat(65), [[1, 1]]) },
			{ ...payload("a", [[0, 1]]) },
			{ ...payload("a", [[1.5, 1]]) },
			{ v: INGEST_VERSION, isolate: "a" },
			{ v: INGEST_VERSION, isolate: "a", batches: [{ seq: 1, samples: null, gauges: {} }] },
			{ v: INGEST_VERSION, isolate: "a", batches: [{ seq: 1, samples: {} }] },
		];
		for (const body of malformed) {
			expect(await stub.ingest(body as unknown as IngestPayload), JSON.stringify(body)).toEqual({ applied: 0, refused: "malformed" });
		}
		expect((await stub.snapshot()).totals).toEqual({});
		expect(await stub.ping()).toEqual({ isolates: 0 });
		// The longest isolate id taken: 64 characters.
		expect(await stub.ingest(payload("x".repeat(64), [[1, 1]]))).toEqual({ applied: 1, refused: null });
	});
});
