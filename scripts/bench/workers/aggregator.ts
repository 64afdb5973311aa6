// The gateway exactly as it ships, with an aggregator that can also be seeded with many
// isolates at once and timed from inside, for the aggregator-scale scenario. Never deployed.
import { consoleLogger } from "../../../src/log.ts";
import { LIVE_WINDOW_MS, FORGET_AFTER_MS, MetricsAggregator as ShippedAggregator } from "../../../src/metrics/aggregator.ts";
import { INGEST_VERSION, type DeltaBatch, type IngestResult } from "../../../src/metrics/delivery.ts";
import type { Env } from "../../../src/env.ts";
import { createWorker } from "../../../src/worker.ts";

export class MetricsAggregator extends ShippedAggregator {
	/**
	 * Adds `count` isolates with random 36-character ids, last seen between one minute and
	 * 23 hours ago (known for dedupe, no longer live), with one statement.
	 */
	seed(count: number): { isolates: number } {
		const spreadMs = FORGET_AFTER_MS - 60 * 60 * 1000;
		this.ctx.storage.sql.exec(
			`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
			INSERT INTO isolates (id, seq, seen_at, gauges)
			SELECT lower(hex(randomblob(18))), 1 + i % 5000, ? - (i * 7919) % ?, '{"agent_replay_store_degraded":0}' FROM n`,
			count,
			this.now() - LIVE_WINDOW_MS - 1,
			spreadMs,
		);
		this.load();
		return this.ping();
	}

	/** Rows written by ingests so far. */
	stats(): { rowsWritten: number; isolates: number } {
		return { rowsWritten: this.rowsWritten, isolates: this.ping().isolates };
	}

	/**
	 * Runs the real `ingest` `rounds` times for each given isolate (sequence numbers from its
	 * `seq` on), inside the object, so one call from outside times many; says how many applied.
	 */
	async ingestMany(isolates: { id: string; seq: number }[], rounds: number, batch: Omit<DeltaBatch, "seq">): Promise<number> {
		let applied = 0;
		for (let round = 0; round < rounds; round++) {
			for (const { id, seq } of isolates) {
				applied += (await this.ingest({ v: INGEST_VERSION, isolate: id, batches: [{ ...batch, seq: seq + round }] })).applied;
			}
		}
		return applied;
	}
}

const gateway = createWorker({ log: consoleLogger });

/** What the driver route takes: busy isolates calling one object at once, until the deadline. */
interface DriveRequest {
	object: string;
	isolates: { id: string; seq: number }[];
	durationMs: number;
	batch: Omit<DeltaBatch, "seq">;
}

export default {
	/**
	 * `POST /__bench/ingest` drives ingests from inside workerd, as the gateway's isolates
	 * call the object (Worker to Durable Object RPC); anything else is the gateway.
	 */
	async fetch(request, env, ctx) {
		if (new URL(request.url).pathname !== "/__bench/ingest") return gateway.fetch!(request, env, ctx);
		const { object, isolates, durationMs, batch } = (await request.json()) as DriveRequest;
		const namespace = env.METRICS_AGGREGATOR!;
		const stub = namespace.get(namespace.idFromName(object));
		// Date.now() moves on across I/O in workerd, so it bounds a loop of RPC calls.
		const deadline = Date.now() + durationMs;
		let count = 0;
		let applied = 0;
		/** The first ingest that applied nothing, and why: the harness refuses such a run. */
		let skipped: { result: IngestResult; isolate: string; seq: number } | null = null;
		await Promise.all(
			isolates.map(async (isolate) => {
				while (Date.now() < deadline) {
					const seq = isolate.seq++;
					const result = await stub.ingest({ v: INGEST_VERSION, isolate: isolate.id, batches: [{ ...batch, seq }] });
					applied += result.applied;
					if (result.applied !== 1) skipped ??= { result, isolate: isolate.id, seq };
					count++;
				}
			}),
		);
		return Response.json({ count, applied, skipped, isolates });
	},
} satisfies ExportedHandler<Env>;
