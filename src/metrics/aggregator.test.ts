import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../env.ts";
import type { MetricsAggregator } from "./aggregator.ts";
import { INGEST_VERSION, type IngestPayload } from "./ingest.ts";

const namespace = (env as Env).METRICS_AGGREGATOR!;

function payload(isolate: string, batches: [seq: number, count: number][]): IngestPayload {
	return {
		v: INGEST_VERSION,
		isolate,
		batches: batches.map(([seq, count]) => ({ seq, samples: { c_total: { "[]": count } }, gauges: { g: 1 } })),
	};
}

describe("MetricsAggregator", () => {
	it("sums deltas from several isolates and ignores a batch it already applied", async () => {
		const stub = namespace.get(namespace.idFromName("sum-test"));
		expect(await stub.ingest(payload("a", [[1, 2]]))).toEqual({ applied: 1, refused: null });
		expect(await stub.ingest(payload("b", [[1, 5]]))).toEqual({ applied: 1, refused: null });
		// A retry of a-1 (its answer was lost) together with a-2: only a-2 counts.
		expect(await stub.ingest(payload("a", [[1, 2], [2, 3]]))).toEqual({ applied: 1, refused: null });
		const snapshot = await stub.snapshot();
		expect(snapshot.totals).toEqual({ c_total: { "[]": 10 } });
		expect(snapshot.gauges).toEqual({ g: 2 });
	});

	it("writes one row per ingest, and keeps its totals across eviction", async () => {
		const stub = namespace.get(namespace.idFromName("evict-test"));
		await stub.ingest(payload("a", [[1, 7]]));
		await stub.ingest(payload("a", [[2, 1]]));
		const rows = await runInDurableObject(stub, (_instance: MetricsAggregator, state) =>
			state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM aggregate").one().n,
		);
		expect(rows).toBe(1);
		await evictDurableObject(stub);
		const after = await stub.snapshot(payload("a", [[2, 1], [3, 1]]));
		expect(after.totals).toEqual({ c_total: { "[]": 9 } });
	});

	it("refuses an ingest format it does not know, and changes nothing", async () => {
		const stub = namespace.get(namespace.idFromName("version-test"));
		expect(await stub.ingest({ ...payload("a", [[1, 1]]), v: 2 } as unknown as IngestPayload)).toEqual({ applied: 0, refused: "unsupported_version" });
		expect((await stub.snapshot()).totals).toEqual({});
	});
});
