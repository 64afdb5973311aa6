// The gateway exactly as it ships, with an aggregator that can also be seeded with many
// isolates at once and timed from inside, for the aggregator-scale scenario. Never deployed.
import { consoleLogger } from "../../src/log.ts";
import { LIVE_WINDOW_MS, FORGET_AFTER_MS, MetricsAggregator as ShippedAggregator } from "../../src/metrics/aggregator.ts";
import { INGEST_VERSION, type DeltaBatch } from "../../src/metrics/ingest.ts";
import { createWorker } from "../../src/worker.ts";

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

export default createWorker({ log: consoleLogger });
